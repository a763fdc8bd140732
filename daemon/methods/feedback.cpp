// Feedback: ratings and listening records. Rows of the command table (docs/protocol.md).
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

void Daemon::add_feedback_methods() {
  using P = rpc::Param;
  using T = rpc::JsonType;
  auto& t = table_;

  auto target_track = [this](const Params& p) -> store::Id {
    if (auto id = p.opt<store::Id>("track_id")) return track_or_throw(*id).id;
    if (auto cur = current_track()) return *cur;
    throw RpcError(ErrorCode::invalid_params, "parameter 'track_id' is required when nothing is playing",
                   {{"param", "track_id"}});
  };

  t.add({"rate", {P::req("stars", T::number).range(1, 5).multiple_of(0.5),
                  P::opt("track_id", T::integer).range(1, 9e15)},
         [this, target_track](const Params& p, Session&) -> json {
           const store::Id id = target_track(p);
           const double stars = p.get<double>("stars");
           const store::Id rating = store_->rate(id, stars);  // committed when it returns
           spdlog::info("rating: track={} stars={} rating={}", id, stars, rating);
           json r = {{"track_id", id}, {"stars", stars}, {"rating_id", rating}};
           publish("rating.recorded", r);
           return r;
         }, "0.1", "Rates a track (default: the current one) 1–5 stars in half steps."});

  t.add({"rating.clear", {P::opt("track_id", T::integer).range(1, 9e15)},
         [this, target_track](const Params& p, Session&) -> json {
           const store::Id id = target_track(p);
           const store::Id rating = store_->clear_rating(id);
           json r = {{"track_id", id}, {"stars", nullptr}, {"rating_id", rating}};
           publish("rating.recorded", r);
           return r;
         }, "0.1", "Clears a track's rating (the history is kept)."});

  t.add({"ratings.list", {P::opt("track_id", T::integer).range(1, 9e15)},
         [this](const Params& p, Session&) -> json {
           json out = json::array();
           auto rows = p.has("track_id") ? store_->rating_history(track_or_throw(p.get<store::Id>("track_id")).id)
                                         : store_->ratings(listener_id_);
           for (const auto& r : rows)
             out.push_back({{"id", r.id}, {"track_id", r.track_id}, {"stars", opt_json(r.stars)},
                            {"rated_at", r.rated_at}});
           return out;
         }, "0.1", "Current ratings of the listener, or one track's full history."});

  t.add({"plays.list", {P::opt("track_id", T::integer).range(1, 9e15),
                        P::opt("limit", T::integer).range(1, 100000)},
         [this](const Params& p, Session&) -> json {
           auto rows = p.has("track_id") ? store_->plays_for_track(track_or_throw(p.get<store::Id>("track_id")).id)
                                         : store_->plays_for_listener(listener_id_);
           std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.id > b.id; });
           const auto limit = static_cast<std::size_t>(p.value<std::int64_t>("limit", 100));
           json out = json::array();
           for (const auto& r : rows) {
             if (out.size() >= limit) break;
             out.push_back(play_json(r));
           }
           return out;
         }, "0.1", "Plays (listening records), newest first."});

  t.add({"listen.report", {P::req("track_id", T::integer).range(1, 9e15),
                           P::req("seconds_heard", T::number).range(0, 1e7),
                           P::req("ended", T::string).choices({"completed", "skipped", "stopped"}),
                           P::opt("duration", T::number).range(0.001, 1e7)},
         [this](const Params& p, Session& s) -> json {
           const store::Track t = track_or_throw(p.get<store::Id>("track_id"));
           const double heard = p.get<double>("seconds_heard");
           const double duration = p.value<double>("duration", t.duration_s);
           const std::string ended = p.get<std::string>("ended");
           // The same skip rule as the daemon's own player.
           const auto reason = to_store(player::classify_end(
               heard, duration, ended == "completed", config_.feedback.skip_fraction, true));
           store::ListenEvent ev;
           ev.target = store::PlayTarget::track(t.id);
           ev.source = store::PlaySource::external;
           ev.ended_at = store::now_ms();
           ev.started_at = ev.ended_at - static_cast<store::UnixMs>(heard * 1000);
           ev.seconds_heard = heard;
           ev.duration_s = duration;
           ev.end_reason = reason;
           const store::Id play = store_->record_listen(ev);
           spdlog::info("play: reported play={} track={} heard={:.2f} reason={} peer={}", play, t.id,
                        heard, store::to_string(reason), s.peer());
           json r = {{"play_id", play}, {"track_id", t.id}, {"seconds_heard", heard},
                     {"duration", duration}, {"reason", store::to_string(reason)}};
           publish("track.ended", r);
           return r;
         }, "0.1", "Records a listen of a track played outside the daemon (same skip rule)."});
}

}  // namespace tuneloop::daemon
