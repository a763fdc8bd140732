#include "cli/study_commands.hpp"

#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "client/client.hpp"
#include "cli/cli_socket.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace tuneloop::cli {

namespace {

struct StudyOptions {
  CLI::App* root = nullptr;
  std::int64_t study_id = 0;
  std::string name, participant, code, out;
  std::vector<int> iterations;
  int per_iteration = 0;
  std::int64_t seed = -1;
  double stars = 0, seconds = -1;
  bool no_plots = false;
};

bool json_output(const StudyOptions& o) { return cli_json_output(*o.root); }

client::Client connect(const StudyOptions& o) {
  try {
    return client::Client::connect_unix(cli_socket_path(*o.root));
  } catch (const client::NotRunningError& e) {
    std::cerr << e.what() << "\n";
    throw CLI::RuntimeError(3);
  }
}

json call(client::Client& c, const std::string& method, const json& params) {
  try {
    return c.call(method, params);
  } catch (const client::CallError& e) {
    std::cerr << "tuneloop study: " << e.what() << " (error " << e.code() << ")\n";
    throw CLI::RuntimeError(1);
  } catch (const std::exception& e) {
    std::cerr << "tuneloop study: " << e.what() << "\n";
    throw CLI::RuntimeError(1);
  }
}

json with_study(const StudyOptions& o, json params = json::object()) {
  if (o.study_id > 0) params["study_id"] = o.study_id;
  return params;
}

std::string absolute_out(const std::string& out) {
  return fs::absolute(out).lexically_normal().string();
}

json start_params(const StudyOptions& o) {
  json p = {{"name", o.name}};
  if (!o.iterations.empty()) p["iterations"] = o.iterations;
  if (o.per_iteration > 0) p["tracks_per_iteration"] = o.per_iteration;
  if (o.seed >= 0) p["seed"] = o.seed;
  if (!o.participant.empty()) p["participant"] = o.participant;
  return p;
}

void print_item(const json& r) {
  if (r.value("done", false)) {
    std::cout << "every track is rated; `tuneloop study finish --out DIR` ends and exports the study\n";
    return;
  }
  std::cout << "track " << r.value("position", 0) + 1 << " of " << r.value("total", 0) << ": code "
            << r.value("code", "?") << "  " << r.value("path", "") << "\n";
}

// Calls one method and prints its reply (JSON with --json, else `print`).
void simple(const StudyOptions& o, const std::string& method, const json& params,
            const std::function<void(const json&)>& print) {
  auto c = connect(o);
  const json r = call(c, method, params);
  if (json_output(o))
    std::cout << r.dump(2) << "\n";
  else
    print(r);
}

void print_export(const json& e) {
  std::cout << "exported " << e.value("ratings", 0) << " ratings to " << e.value("out", "") << ":";
  for (const auto& f : e.value("files", json::array())) std::cout << " " << fs::path(f.get<std::string>()).filename().string();
  std::cout << "\n";
}

// One person, one sitting: every track of a new study in its blinded order, played
// through the daemon (or named, without a sound card), rated from the keyboard.
void session(const StudyOptions& o) {
  auto c = connect(o);
  json r = call(c, "study.start", start_params(o));
  const std::int64_t id = r.at("study_id").get<std::int64_t>();
  std::cout << "Study " << o.name << " (id " << id << ") for " << r.value("participant", "")
            << ": " << r.value("total", 0)
            << " blinded tracks. Rate each 1-5 (half steps allowed); s = skip, r = replay, q = stop "
               "for now.\n";
  json item = r.at("next");
  bool quit = false;
  while (!quit && !item.is_null() && !item.value("done", false)) {
    const std::string code = item.at("code").get<std::string>();
    std::cout << "\ntrack " << item.value("position", 0) + 1 << " of " << item.value("total", 0)
              << " (code " << code << ")\n";
    auto play = [&] {
      try {
        c.call("study.play", {{"study_id", id}, {"code", code}});
      } catch (const client::CallError&) {
        std::cout << "  the daemon has no sound output; play this file yourself: "
                  << item.value("path", "") << "\n";
      }
    };
    play();
    while (true) {
      std::cout << "  rating> " << std::flush;
      std::string line;
      if (!std::getline(std::cin, line) || line == "q") {
        quit = true;
        break;
      }
      if (line == "r") {
        play();
        continue;
      }
      json params = {{"study_id", id}, {"code", code}};
      if (line == "s") {
        params["skip"] = true;
      } else {
        try {
          const double v = std::stod(line);
          if (v < 1 || v > 5 || std::fabs(v * 2 - std::round(v * 2)) > 1e-9) throw std::invalid_argument(line);
          params["stars"] = v;
        } catch (const std::exception&) {
          std::cout << "  please type 1 to 5 (half steps allowed), s, r or q\n";
          continue;
        }
      }
      item = call(c, "study.rate", params).at("next");
      break;
    }
  }
  try {
    c.call("player.stop");
  } catch (const std::exception&) {
  }
  if (quit) {
    std::cout << "\nStopped; `tuneloop study session` is not resumable, but `tuneloop study next --study "
              << id << "` / `study rate` carry on where you left off.\n";
    return;
  }
  json fin = {{"study_id", id}};
  if (!o.out.empty()) {
    fin["out"] = absolute_out(o.out);
    fin["plots"] = !o.no_plots;
  }
  const json f = call(c, "study.finish", fin);
  std::cout << "\nStudy " << id << " finished: " << f.value("answered", 0) << " of " << f.value("total", 0)
            << " answered.\n";
  if (f.contains("export")) print_export(f["export"]);
}

}  // namespace

void add_study_commands(CLI::App& app) {
  auto o = std::make_shared<StudyOptions>();
  o->root = &app;
  auto* study = app.add_subcommand(
      "study", "human studies on the running daemon: blinded tracks from chosen iterations, rated "
               "one by one, exported like a simulated study (docs/study-guide.md §5)");
  study->require_subcommand(1);
  auto add_study_id = [&](CLI::App* cmd) {
    cmd->add_option("--study", o->study_id, "study id (default: the newest running study)");
  };
  auto add_draw = [&](CLI::App* cmd) {
    cmd->add_option("name", o->name, "the study's name")->required();
    cmd->add_option("--iterations", o->iterations, "iteration numbers to draw from, e.g. 0,2 (default: all)")
        ->delimiter(',');
    cmd->add_option("--per-iteration", o->per_iteration, "tracks from each iteration (default: all)");
    cmd->add_option("--seed", o->seed, "seed of the order and the codes (default: the time)");
    cmd->add_option("--participant", o->participant, "who rates (default: the daemon's listener)");
  };

  auto* start = study->add_subcommand("start", "start a study: a blinded, shuffled playlist");
  add_draw(start);
  start->callback([o] {
    simple(*o, "study.start", start_params(*o), [](const json& r) {
      std::cout << "study " << r.value("study_id", 0) << " (" << r.value("name", "") << ") for "
                << r.value("participant", "") << ": " << r.value("total", 0) << " tracks\n";
      print_item(r.at("next"));
    });
  });

  auto* next = study->add_subcommand("next", "the next track to rate: its code and audio file");
  add_study_id(next);
  next->callback([o] { simple(*o, "study.next", with_study(*o), print_item); });

  auto* play = study->add_subcommand("play", "play a study track through the daemon (default: the next)");
  add_study_id(play);
  play->add_option("--code", o->code, "the track's code");
  play->callback([o] {
    json p = with_study(*o);
    if (!o->code.empty()) p["code"] = o->code;
    simple(*o, "study.play", p, [](const json& r) {
      std::cout << "playing " << r.value("code", "") << "\n";
    });
  });

  auto print_rated = [](const json& r) {
    std::cout << r.value("code", "") << ": " << (r["stars"].is_number() ? r["stars"].dump() : "skipped")
              << ", " << r.value("remaining", 0) << " left\n";
    if (r["next"].is_object()) print_item(r["next"]);
  };
  auto* rate = study->add_subcommand("rate", "rate a study track (default: the next) 1-5 stars");
  add_study_id(rate);
  rate->add_option("stars", o->stars, "1 to 5 in half steps")->required();
  rate->add_option("--code", o->code, "the track's code");
  rate->add_option("--seconds", o->seconds, "seconds of it you heard");
  rate->callback([o, print_rated] {
    json p = with_study(*o, {{"stars", o->stars}});
    if (!o->code.empty()) p["code"] = o->code;
    if (o->seconds >= 0) p["seconds_heard"] = o->seconds;
    simple(*o, "study.rate", p, print_rated);
  });

  auto* skip = study->add_subcommand("skip", "skip a study track without rating it");
  add_study_id(skip);
  skip->add_option("--code", o->code, "the track's code");
  skip->callback([o, print_rated] {
    json p = with_study(*o, {{"skip", true}});
    if (!o->code.empty()) p["code"] = o->code;
    simple(*o, "study.rate", p, print_rated);
  });

  auto print_status = [](const json& r) {
    std::cout << "study " << r.value("study_id", 0) << " " << r.value("name", "") << " ("
              << r.value("participant", "") << ", " << r.value("status", "") << "): "
              << r.value("answered", 0) << " of " << r.value("total", 0) << " answered\n";
  };
  auto* status = study->add_subcommand("status", "how far a study has got");
  add_study_id(status);
  status->callback([o, print_status] { simple(*o, "study.status", with_study(*o), print_status); });

  auto* list = study->add_subcommand("list", "every study of the daemon's listener");
  list->callback([o, print_status] {
    simple(*o, "study.list", json::object(), [print_status](const json& r) {
      for (const auto& s : r) print_status(s);
    });
  });

  auto* finish = study->add_subcommand("finish", "end a study (and export it with --out)");
  add_study_id(finish);
  finish->add_option("--out", o->out, "export the results to this folder");
  finish->add_flag("--no-plots", o->no_plots, "skip rendering the plots with gnuplot");
  finish->callback([o, print_status] {
    json p = with_study(*o);
    if (!o->out.empty()) {
      p["out"] = absolute_out(o->out);
      p["plots"] = !o->no_plots;
    }
    simple(*o, "study.finish", p, [print_status](const json& r) {
      print_status(r);
      if (r.contains("export")) print_export(r["export"]);
    });
  });

  auto* exp = study->add_subcommand(
      "export", "write events.csv, summary.json, report.md and plots of a study's ratings");
  add_study_id(exp);
  exp->add_option("out", o->out, "output folder")->required();
  exp->add_flag("--no-plots", o->no_plots, "skip rendering the plots with gnuplot");
  exp->callback([o] {
    simple(*o, "study.export", with_study(*o, {{"out", absolute_out(o->out)}, {"plots", !o->no_plots}}),
           print_export);
  });

  auto* sess = study->add_subcommand(
      "session", "start a study and rate every track from the keyboard, then finish (and export)");
  add_draw(sess);
  sess->add_option("--out", o->out, "export the results to this folder when done");
  sess->add_flag("--no-plots", o->no_plots, "skip rendering the plots with gnuplot");
  sess->callback([o] { session(*o); });
}

}  // namespace tuneloop::cli
