#include "cli/cli_commands.hpp"

#include "config/config.hpp"
#include "client/client.hpp"
#include "cli/cli_socket.hpp"

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>

namespace tuneloop::cli {

namespace fs = std::filesystem;
using client::CallError;
using client::Client;
using client::NotRunningError;
using nlohmann::json;

namespace {

struct Globals {
  bool json_output = false;
  std::string socket;
};

fs::path socket_path(const Globals& g) { return resolve_socket(g.socket); }

std::string mmss(double s) {
  if (!(s >= 0)) s = 0;
  const int t = static_cast<int>(s + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%d:%02d", t / 60, t % 60);
  return buf;
}

std::string stars_text(const json& s) {
  if (!s.is_number()) return "-";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f", s.get<double>());
  return buf;
}

using Printer = std::function<void(const json&)>;

// Connects, calls, prints; turns failures into a message and an exit status.
void run_call(const Globals& g, const std::string& method, const json& params, const Printer& print) {
  try {
    Client c = Client::connect_unix(socket_path(g));
    json result = c.call(method, params);
    if (g.json_output)
      std::cout << result.dump(2) << "\n";
    else
      print(result);
  } catch (const NotRunningError& e) {
    std::cerr << e.what() << "\n";
    throw CLI::RuntimeError(3);
  } catch (const CallError& e) {
    if (g.json_output)
      std::cout << json{{"error", {{"code", e.code()}, {"message", e.what()}, {"data", e.data()}}}}.dump(2) << "\n";
    std::cerr << "tuneloop: " << e.what() << " (error " << e.code() << ")\n";
    throw CLI::RuntimeError(1);
  } catch (const CLI::Error&) {
    throw;
  } catch (const std::exception& e) {
    std::cerr << "tuneloop: " << e.what() << "\n";
    throw CLI::RuntimeError(1);
  }
}

void print_status(const json& s) {
  const std::string state = s.value("state", "idle");
  const char* icon = state == "playing" ? "▶" : state == "paused" ? "⏸" : "■";
  std::cout << icon << " " << state;
  if (s["track"].is_object()) {
    const json& t = s["track"];
    std::cout << "  track " << t["id"];
    if (!t.value("tags", "").empty()) std::cout << " (" << t.value("tags", "") << ")";
    if (s["play"].is_object())
      std::cout << "  " << mmss(s["play"].value("position", 0.0)) << " / "
                << mmss(s["play"].value("duration", 0.0)) << "  heard "
                << mmss(s["play"].value("seconds_heard", 0.0));
    std::cout << "  rating " << stars_text(t["stars"]);
  }
  std::cout << "\n";
  const json& a = s["audio"];
  std::cout << "volume " << static_cast<int>(s.value("volume", 0.0) * 100 + 0.5) << "%  audio "
            << (a.value("available", false) ? a.value("device", std::string("?"))
                                            : "off (" + a.value("message", std::string()) + ")")
            << "\n";
  std::cout << "listener " << s["listener"].value("name", "") << "  queue "
            << s["queue"].value("upcoming", 0) << " upcoming";
  if (s["iteration"].is_object()) std::cout << "  iteration " << s["iteration"]["number"];
  std::cout << "\n";
}

void print_tracks(const json& tracks) {
  if (tracks.empty()) {
    std::cout << "no tracks\n";
    return;
  }
  std::printf("%6s  %9s  %6s  %5s  %9s  %9s  %-16s  %s\n", "id", "iteration", "length", "stars",
              "predicted", "variation", "tags", "file");
  for (const auto& t : tracks) {
    char predicted[16] = "-";
    if (t.contains("predicted_score") && t["predicted_score"].is_number())
      std::snprintf(predicted, sizeof predicted, "%.2f", t["predicted_score"].get<double>());
    // The liked track this one varies, if it is a variation.
    const std::string variation =
        t.contains("variation_of") && t["variation_of"].is_number() ? "of " + t["variation_of"].dump() : "-";
    std::printf("%6lld  %9s  %6s  %5s  %9s  %9s  %-16s  %s\n", static_cast<long long>(t["id"].get<std::int64_t>()),
                t["iteration_id"].is_null() ? "-" : t["iteration_id"].dump().c_str(),
                mmss(t.value("duration", 0.0)).c_str(), stars_text(t["stars"]).c_str(), predicted,
                variation.c_str(), t.value("tags", "").c_str(), t.value("path", "").c_str());
  }
}

void print_songs(const json& songs) {
  if (songs.empty()) {
    std::cout << "no songs\n";
    return;
  }
  std::printf("%6s  %6s  %s\n", "id", "length", "name");
  for (const auto& s : songs)
    std::printf("%6lld  %6s  %s\n", static_cast<long long>(s["id"].get<std::int64_t>()),
                mmss(s.value("duration", 0.0)).c_str(), s.value("original_name", "").c_str());
}

std::string event_line(const json& n) {
  std::time_t now = std::time(nullptr);
  char ts[16];
  std::strftime(ts, sizeof ts, "%H:%M:%S", std::localtime(&now));
  std::string line = std::string(ts) + "  " + n.value("method", "?");
  if (n.contains("params") && n["params"].is_object())
    for (const auto& [k, v] : n["params"].items())
      line += "  " + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
  return line;
}

void watch(const Globals& g) {
  try {
    Client c = Client::connect_unix(socket_path(g));
    c.call("subscribe");
    if (!g.json_output) std::cerr << "watching tuneloopd events (Ctrl-C to stop)\n";
    for (;;) {
      auto msg = c.next_message(-1);
      if (!msg) continue;
      std::cout << (g.json_output ? msg->dump() : event_line(*msg)) << std::endl;
    }
  } catch (const NotRunningError& e) {
    std::cerr << e.what() << "\n";
    throw CLI::RuntimeError(3);
  } catch (const CLI::Error&) {
    throw;
  } catch (const std::exception& e) {
    std::cerr << "tuneloop watch: " << e.what() << "\n";
    throw CLI::RuntimeError(1);
  }
}

}  // namespace

void add_client_commands(CLI::App& app) {
  auto g = std::make_shared<Globals>();
  app.add_flag("--json", g->json_output, "print the daemon's JSON reply instead of text");
  app.add_option("--socket", g->socket,
                 "daemon socket (default: $TUNELOOP_SOCKET, else paths.socket from the config, else " +
                     config::default_socket_path().string() + ")");

  auto simple = [&app, g](const std::string& name, const std::string& help, const std::string& method,
                          Printer print) {
    auto* sub = app.add_subcommand(name, help);
    sub->fallthrough();
    sub->callback([g, method, print] { run_call(*g, method, nullptr, print); });
    return sub;
  };
  auto say = [](const std::string& what) { return [what](const json&) { std::cout << what << "\n"; }; };
  auto playing = [](const json& r) {
    if (r["track_id"].is_null())
      std::cout << "stopped (nothing more queued)\n";
    else
      std::cout << "playing track " << r["track_id"] << "\n";
  };

  simple("status", "show what tuneloopd is playing and its state", "status", print_status);
  simple("pause", "pause playback", "player.pause", say("paused"));
  simple("resume", "resume playback", "player.resume", say("playing"));
  simple("stop", "stop playback", "player.stop", say("stopped"));
  simple("next", "skip to the next track", "player.next", playing);
  simple("prev", "go back to the previous track", "player.previous", playing);
  simple("unrate", "clear the current track's rating", "rating.clear",
         [](const json& r) { std::cout << "rating of track " << r["track_id"] << " cleared\n"; });

  {
    auto* sub = app.add_subcommand("play", "play a track (default: resume or start the queue)");
    sub->fallthrough();
    auto track = std::make_shared<std::int64_t>(0);
    sub->add_option("TRACK", *track, "track id");
    sub->callback([g, track, playing] {
      run_call(*g, "player.play", *track > 0 ? json{{"track_id", *track}} : json(nullptr), playing);
    });
  }
  {
    auto* sub = app.add_subcommand("seek", "jump to a position in the current track");
    sub->fallthrough();
    auto secs = std::make_shared<double>(0);
    sub->add_option("SECONDS", *secs, "position in seconds")->required()->check(CLI::NonNegativeNumber);
    sub->callback([g, secs] {
      run_call(*g, "player.seek", {{"seconds", *secs}}, [](const json& r) {
        std::cout << "at " << mmss(r.value("position", 0.0)) << "\n";
      });
    });
  }
  {
    auto* sub = app.add_subcommand("volume", "set the volume (0..1, or 0..100 %)");
    sub->fallthrough();
    auto level = std::make_shared<double>(0);
    sub->add_option("LEVEL", *level, "0..1, or a percentage above 1")->required()->check(CLI::Range(0.0, 100.0));
    sub->callback([g, level] {
      const double v = *level > 1 ? *level / 100 : *level;
      run_call(*g, "player.volume", {{"level", v}}, [](const json& r) {
        std::cout << "volume " << static_cast<int>(r.value("volume", 0.0) * 100 + 0.5) << "%\n";
      });
    });
  }
  {
    auto* sub = app.add_subcommand("rate", "rate the current (or given) track 1-5 stars, half stars allowed");
    sub->fallthrough();
    auto stars = std::make_shared<double>(0);
    auto track = std::make_shared<std::int64_t>(0);
    sub->add_option("STARS", *stars, "1 to 5 in steps of 0.5")->required()->check(CLI::Range(1.0, 5.0));
    sub->add_option("--track", *track, "track id (default: the one playing)");
    sub->callback([g, stars, track] {
      json p = {{"stars", *stars}};
      if (*track > 0) p["track_id"] = *track;
      run_call(*g, "rate", p, [](const json& r) {
        std::cout << "rated track " << r["track_id"] << " " << stars_text(r["stars"]) << " stars\n";
      });
    });
  }
  {
    auto* songs = app.add_subcommand("songs", "the listener's own songs");
    songs->fallthrough();
    songs->require_subcommand(1);
    auto* add = songs->add_subcommand("add", "add audio files (copied into the data folder)");
    add->fallthrough();
    auto files = std::make_shared<std::vector<std::string>>();
    add->add_option("FILE", *files, "audio files")->required();
    add->callback([g, files] {
      for (const auto& f : *files)
        run_call(*g, "songs.add", {{"path", fs::absolute(f).string()}}, [f](const json& r) {
          std::cout << (r.value("inserted", false) ? "added " : "already there ") << f << " as song "
                    << r["id"] << " (" << mmss(r.value("duration", 0.0)) << ")\n";
        });
    });
    auto* list = songs->add_subcommand("list", "list the songs");
    list->fallthrough();
    list->callback([g] { run_call(*g, "songs.list", nullptr, print_songs); });
    auto* rm = songs->add_subcommand("remove", "remove a song");
    rm->fallthrough();
    auto id = std::make_shared<std::int64_t>(0);
    rm->add_option("ID", *id, "song id")->required();
    rm->callback([g, id] {
      run_call(*g, "songs.remove", {{"id", *id}}, [](const json& r) { std::cout << "removed song " << r["removed"] << "\n"; });
    });
  }
  {
    auto* tracks = app.add_subcommand("tracks", "the listener's tracks");
    tracks->fallthrough();
    tracks->require_subcommand(1);
    auto* list = tracks->add_subcommand("list", "list tracks with their ratings");
    list->fallthrough();
    auto iteration = std::make_shared<std::int64_t>(0);
    list->add_option("--iteration", *iteration, "only this iteration's tracks (iteration id)");
    list->callback([g, iteration] {
      run_call(*g, "tracks.list", *iteration > 0 ? json{{"iteration", *iteration}} : json(nullptr), print_tracks);
    });
    auto* add = tracks->add_subcommand("add", "register an audio file as a track");
    add->fallthrough();
    auto file = std::make_shared<std::string>();
    auto tags = std::make_shared<std::string>();
    add->add_option("FILE", *file, "audio file")->required();
    add->add_option("--tags", *tags, "comma-separated tags");
    add->callback([g, file, tags] {
      json p = {{"path", fs::absolute(*file).string()}};
      if (!tags->empty()) p["tags"] = *tags;
      run_call(*g, "tracks.add", p, [](const json& r) { std::cout << "added track " << r["id"] << "\n"; });
    });
  }
  {
    auto* sub = app.add_subcommand("export", "export everything recorded about the listener, with the audio");
    sub->fallthrough();
    auto dir = std::make_shared<std::string>();
    auto format = std::make_shared<std::string>("json");
    sub->add_option("DIR", *dir, "folder to write into (created)")->required();
    sub->add_option("--format", *format, "json or csv (default json)")->check(CLI::IsMember({"json", "csv"}));
    sub->callback([g, dir, format] {
      run_call(*g, "listener.export", {{"dir", fs::absolute(*dir).string()}, {"format", *format}},
               [](const json& r) {
                 std::cout << "exported to " << r.value("dir", "") << ":";
                 for (const auto& [k, v] : r["counts"].items()) std::cout << " " << v << " " << k;
                 std::cout << "\n";
               });
    });
  }
  {
    auto* sub = app.add_subcommand("forget-me", "delete the listener and all their data");
    sub->fallthrough();
    auto yes = std::make_shared<bool>(false);
    sub->add_flag("--yes", *yes, "really delete everything");
    sub->callback([g, yes] {
      if (!*yes) {
        std::cerr << "tuneloop forget-me deletes all ratings, plays, songs, tracks and iterations; "
                     "run it again with --yes to confirm\n";
        throw CLI::RuntimeError(2);
      }
      run_call(*g, "listener.delete", {{"confirm", true}}, [](const json& r) {
        std::cout << "deleted:";
        for (const auto& [k, v] : r["deleted"].items()) std::cout << " " << v << " " << k;
        std::cout << "\n";
      });
    });
  }
  {
    auto* sub = app.add_subcommand("watch", "print the daemon's events until Ctrl-C");
    sub->fallthrough();
    sub->callback([g] { watch(*g); });
  }
}

}  // namespace tuneloop::cli
