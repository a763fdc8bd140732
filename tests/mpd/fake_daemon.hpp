#pragma once
// A small fake of the daemon's methods for the MPD command layer: the rows DaemonView
// calls, with the same JSON shapes as the daemon's own, over a state the rows read and
// change. Used by the command-layer tests and the MPD fuzz target.
#include "rpc/commands.hpp"
#include "rpc/errors.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tuneloop::mpd_testing {

using nlohmann::json;
using P = rpc::Param;
using T = rpc::JsonType;

struct FakeTrack {
  std::int64_t id;
  std::optional<std::int64_t> iteration_id;
  std::string tags;
  double duration;
};

// What the fake daemon knows; the rows below read and change it.
struct FakeDaemon {
  bool audio = false;
  std::string state = "idle";
  double volume = 1.0;
  std::optional<std::int64_t> current;
  std::vector<std::int64_t> upcoming;
  std::vector<FakeTrack> tracks;
  std::map<std::int64_t, std::vector<json>> ratings;  // track -> history rows
  std::vector<json> plays;                            // newest first
  std::vector<std::string> calls;

  void require_audio() const {
    if (!audio)
      throw rpc::RpcError(rpc::ErrorCode::no_audio_device,
                          "no audio device (audio.output is none); play the file yourself");
  }

  json track_json(const FakeTrack& t) const {
    return {{"id", t.id},
            {"iteration_id", t.iteration_id ? json(*t.iteration_id) : json(nullptr)},
            {"tags", t.tags},
            {"duration", t.duration},
            {"created_at", 1714557600000},
            {"stars", nullptr}};
  }

  void add_rows(rpc::CommandTable& t) {
    auto row = [&](std::string name, std::vector<P> params, rpc::Handler h) {
      rpc::Command c;
      c.name = std::move(name);
      c.params = std::move(params);
      c.handler = std::move(h);
      t.add(std::move(c));
    };
    row("status", {}, [this](const rpc::Params&, rpc::Session&) -> json {
      json track = nullptr, play = nullptr;
      if (state != "idle" && current) {
        for (const auto& tr : tracks)
          if (tr.id == *current) track = track_json(tr);
        play = {{"position", 2.5}, {"duration", 8.0}};
      }
      return {{"state", state}, {"track", track}, {"play", play}, {"volume", volume},
              {"audio", {{"available", audio}, {"message", audio ? "" : "audio.output is none"}}},
              {"uptime_s", 12.0}};
    });
    row("queue.list", {}, [this](const rpc::Params&, rpc::Session&) -> json {
      return {{"current", current ? json(*current) : json(nullptr)},
              {"upcoming", upcoming},
              {"history", json::array()}};
    });
    row("tracks.list", {P::opt("iteration", T::integer)},
        [this](const rpc::Params&, rpc::Session&) -> json {
          json out = json::array();
          for (auto it = tracks.rbegin(); it != tracks.rend(); ++it) out.push_back(track_json(*it));
          return out;
        });
    row("iterations.list", {}, [](const rpc::Params&, rpc::Session&) -> json {
      return json::array({{{"id", 1}, {"number", 0}, {"created_at", 1714557600000}}});
    });
    row("ratings.list", {P::opt("track_id", T::integer)},
        [this](const rpc::Params& p, rpc::Session&) -> json {
          json out = json::array();
          if (auto id = p.opt<std::int64_t>("track_id")) {
            for (const auto& r : ratings[*id]) out.push_back(r);
            return out;
          }
          for (const auto& [id, rows] : ratings)
            if (!rows.empty() && !rows.back()["stars"].is_null()) out.push_back(rows.back());
          return out;
        });
    row("plays.list", {P::opt("track_id", T::integer), P::opt("limit", T::integer)},
        [this](const rpc::Params& p, rpc::Session&) -> json {
          json out = json::array();
          for (const auto& pl : plays)
            if (!p.has("track_id") || pl["track_id"] == p.get<std::int64_t>("track_id"))
              out.push_back(pl);
          return out;
        });
    row("rate", {P::req("stars", T::number).range(1, 5).multiple_of(0.5), P::opt("track_id", T::integer)},
        [this](const rpc::Params& p, rpc::Session&) -> json {
          const auto id = p.get<std::int64_t>("track_id");
          calls.push_back("rate " + std::to_string(id) + " " + json(p.get<double>("stars")).dump());
          ratings[id].push_back({{"track_id", id}, {"stars", p.get<double>("stars")}});
          return {{"track_id", id}};
        });
    row("rating.clear", {P::opt("track_id", T::integer)},
        [this](const rpc::Params& p, rpc::Session&) -> json {
          const auto id = p.get<std::int64_t>("track_id");
          calls.push_back("clear " + std::to_string(id));
          ratings[id].push_back({{"track_id", id}, {"stars", nullptr}});
          return {{"track_id", id}};
        });
    row("player.play", {P::opt("track_id", T::integer)},
        [this](const rpc::Params& p, rpc::Session&) -> json {
          require_audio();
          if (auto id = p.opt<std::int64_t>("track_id")) current = *id;
          state = "playing";
          calls.push_back("play " + (current ? std::to_string(*current) : std::string("-")));
          return {{"state", "playing"}};
        });
    row("player.pause", {}, [this](const rpc::Params&, rpc::Session&) -> json {
      require_audio();
      state = "paused";
      return {{"state", state}};
    });
    row("player.resume", {}, [this](const rpc::Params&, rpc::Session&) -> json {
      require_audio();
      state = "playing";
      return {{"state", state}};
    });
    row("player.stop", {}, [this](const rpc::Params&, rpc::Session&) -> json {
      require_audio();
      state = "idle";
      return {{"state", state}};
    });
    row("player.next", {}, [this](const rpc::Params&, rpc::Session&) -> json {
      require_audio();
      if (!upcoming.empty()) {
        current = upcoming.front();
        upcoming.erase(upcoming.begin());
      }
      return {{"state", state}};
    });
    row("player.previous", {}, [this](const rpc::Params&, rpc::Session&) -> json {
      require_audio();
      throw rpc::RpcError(rpc::ErrorCode::not_found, "no previous track in the history");
    });
    row("player.seek", {P::req("seconds", T::number).range(0, 1e9)},
        [this](const rpc::Params& p, rpc::Session&) -> json {
          require_audio();
          if (state == "idle") throw rpc::RpcError(rpc::ErrorCode::busy, "nothing is playing");
          calls.push_back("seek " + json(p.get<double>("seconds")).dump());
          return {{"position", p.get<double>("seconds")}};
        });
    row("player.volume", {P::req("level", T::number).range(0, 1)},
        [this](const rpc::Params& p, rpc::Session&) -> json {
          volume = p.get<double>("level");
          return {{"volume", volume}};
        });
  }
};

}  // namespace tuneloop::mpd_testing
