// Playback: the player and the queue. Rows of the command table (docs/protocol.md).
#include "daemon/daemon.hpp"
#include "daemon/methods/loop.hpp"
#include "daemon/methods/study.hpp"
#include "rpc/errors.hpp"
#include "daemon/daemon_helpers.hpp"
#include "daemon/export_folder.hpp"
#include "audio/audio.hpp"
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <algorithm>
#include <cmath>
#include <csignal>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace tuneloop::daemon {

namespace fs = std::filesystem;
using nlohmann::json;
using rpc::ErrorCode;
using rpc::Params;
using rpc::RpcError;
using rpc::Session;
using namespace detail;

void Daemon::add_player_methods() {
  using P = rpc::Param;
  using T = rpc::JsonType;
  auto& t = table_;

  t.add({"player.play", {P::opt("track_id", T::integer).range(1, 9e15)},
         [this](const Params& p, Session&) -> json {
           require_player();
           if (auto id = p.opt<store::Id>("track_id")) return start_track(*id);
           if (current_token_ && state_ == player::State::paused) {
             player_->resume();
             return {{"track_id", opt_json(current_track())}, {"state", "playing"}};
           }
           if (current_token_) return {{"track_id", opt_json(current_track())}, {"state", "playing"}};
           auto next = queue_.current() ? queue_.current() : queue_.next();
           if (!next)
             throw RpcError(ErrorCode::not_found, "nothing to play: the queue is empty (add one with tracks.add)");
           return start_track(*next);
         }, "0.1", "Plays the given track now, or resumes, or starts the queue."});

  t.add({"player.pause", {}, [this](const Params&, Session&) -> json {
           require_player();
           player_->pause();
           return {{"state", player::to_string(player_->state())}};
         }, "0.1", "Pauses; paused time does not count as listening."});

  t.add({"player.resume", {}, [this](const Params&, Session&) -> json {
           require_player();
           player_->resume();
           return {{"state", player::to_string(player_->state())}};
         }, "0.1", "Resumes after a pause."});

  t.add({"player.stop", {}, [this](const Params&, Session&) -> json {
           require_player();
           player_->stop(player::EndReason::stopped);
           return {{"state", "idle"}};
         }, "0.1", "Stops; the play is recorded as stopped, or skipped if ended early."});

  t.add({"player.next", {}, [this](const Params&, Session&) -> json {
           require_player();
           if (auto next = queue_.next()) return start_track(*next);
           player_->stop(player::EndReason::stopped);
           return {{"track_id", nullptr}, {"state", "idle"}};
         }, "0.1", "Skips to the next queued track (the current play ends as skipped or stopped)."});

  t.add({"player.previous", {}, [this](const Params&, Session&) -> json {
           require_player();
           auto prev = queue_.previous();
           if (!prev) throw RpcError(ErrorCode::not_found, "no previous track in the history");
           return start_track(*prev);
         }, "0.1", "Goes back to the previously played track."});

  t.add({"player.seek", {P::req("seconds", T::number).range(0, 1e9)},
         [this](const Params& p, Session&) -> json {
           require_player();
           if (!current_token_) throw RpcError(ErrorCode::busy, "nothing is playing");
           player_->seek(p.get<double>("seconds"));
           return {{"position", p.get<double>("seconds")}};
         }, "0.1", "Jumps to a position; skipped-over audio does not count as heard."});

  t.add({"player.volume", {P::req("level", T::number).range(0, 1)},
         [this](const Params& p, Session&) -> json {
           player_->set_volume(p.get<double>("level"));
           return {{"volume", std::round(player_->volume() * 1000) / 1000}};
         }, "0.1", "Sets the output volume, 0..1."});

  t.add({"queue.list", {}, [this](const Params&, Session&) -> json {
           return {{"current", opt_json(queue_.current())},
                   {"upcoming", json(std::vector<std::int64_t>(queue_.upcoming().begin(), queue_.upcoming().end()))},
                   {"history", json(std::vector<std::int64_t>(queue_.history().begin(), queue_.history().end()))}};
         }, "0.1", "The play queue: current track, upcoming and history (track ids)."});
}

}  // namespace tuneloop::daemon
