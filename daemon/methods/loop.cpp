#include "daemon/methods/loop.hpp"

#include "rpc/errors.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <map>

namespace tuneloop::daemon {

namespace fs = std::filesystem;
using nlohmann::json;
using rpc::CommandTable;
using rpc::ErrorCode;
using rpc::Params;
using rpc::RpcError;
using rpc::Session;

namespace {

json opt_json(const std::optional<std::int64_t>& v) { return v ? json(*v) : json(nullptr); }

json parse_or_text(const std::string& text) {
  if (text.empty()) return nullptr;
  json j = json::parse(text, nullptr, false);
  return j.is_discarded() ? json(text) : j;
}

struct FeedbackSummary {
  int tracks = 0;
  int rated = 0;
  double rating_sum = 0;
  int heard = 0;
  double listen_sum = 0;
};

json iteration_json(const store::Iteration& i, const FeedbackSummary& f) {
  const json metrics = parse_or_text(i.metrics_json);
  return {{"id", i.id},
          {"number", i.number},
          {"parent_id", opt_json(i.parent_id)},
          {"status", store::to_string(i.status)},
          {"active", i.active},
          {"adapter_path", i.adapter_path},
          {"created_at", i.created_at},
          {"finished_at", opt_json(i.finished_at)},
          {"metrics", metrics.is_object() ? metrics : json::object()},
          {"tracks", f.tracks},
          {"rated_tracks", f.rated},
          {"mean_rating", f.rated ? json(f.rating_sum / f.rated) : json(nullptr)},
          {"mean_listen_fraction", f.heard ? json(f.listen_sum / f.heard) : json(nullptr)}};
}

json job_json(const store::Job& j) {
  return {{"id", j.id},
          {"kind", j.kind},
          {"iteration_id", opt_json(j.iteration_id)},
          {"state", store::to_string(j.state)},
          {"progress", j.progress},
          {"message", j.message},
          {"error", j.error},
          {"created_at", j.created_at},
          {"started_at", opt_json(j.started_at)},
          {"finished_at", opt_json(j.finished_at)}};
}

}  // namespace

void add_loop_methods(CommandTable& t, LoopMethodContext c) {
  using P = rpc::Param;
  using T = rpc::JsonType;
  auto ctx = std::make_shared<LoopMethodContext>(std::move(c));

  auto summaries = [ctx]() {
    std::map<store::Id, FeedbackSummary> by_iteration;
    for (const auto& f : ctx->store.track_feedback(ctx->listener_id())) {
      if (!f.track.iteration_id) continue;
      auto& s = by_iteration[*f.track.iteration_id];
      ++s.tracks;
      if (f.stars) {
        ++s.rated;
        s.rating_sum += *f.stars;
      }
      if (f.play_count > 0) {
        ++s.heard;
        s.listen_sum += f.best_listen_fraction;
      }
    }
    return by_iteration;
  };
  auto iteration_or_throw = [ctx](store::Id id) {
    auto i = ctx->store.get_iteration(id);
    if (!i || i->listener_id != ctx->listener_id() || i->status == store::IterationStatus::deleted)
      throw RpcError(ErrorCode::not_found, "no iteration " + std::to_string(id), {{"id", id}});
    return *i;
  };

  t.add({"iterate", {P::opt("force", T::boolean, "skip the minimum-feedback rule")},
         [ctx](const Params& p, Session&) -> json {
           const auto r = ctx->loop.iterate(p.value<bool>("force", false));
           return {{"started", r.started}, {"reason", r.reason},
                   {"iteration_id", opt_json(r.iteration_id)}, {"job_id", opt_json(r.job_id)}};
         }, "0.2", "Starts the next iteration now (unless a job runs or feedback is too little)."});

  t.add({"iterations.list", {},
         [ctx, summaries](const Params&, Session&) -> json {
           const auto s = summaries();
           json out = json::array();
           for (const auto& i : ctx->store.iterations(ctx->listener_id())) {
             if (i.status == store::IterationStatus::deleted) continue;
             auto it = s.find(i.id);
             out.push_back(iteration_json(i, it == s.end() ? FeedbackSummary{} : it->second));
           }
           return out;
         }, "0.2", "The listener's iterations, oldest first, with metrics and feedback so far."});

  t.add({"iterations.show", {P::req("id", T::integer).range(1, 9e15)},
         [ctx, summaries, iteration_or_throw](const Params& p, Session&) -> json {
           const auto i = iteration_or_throw(p.get<store::Id>("id"));
           const auto s = summaries();
           auto it = s.find(i.id);
           json out = iteration_json(i, it == s.end() ? FeedbackSummary{} : it->second);
           out["manifest"] = parse_or_text(i.dataset_manifest);
           json tracks = json::array();
           for (const auto& tr : ctx->store.tracks(ctx->listener_id(), i.id)) tracks.push_back(tr.id);
           out["track_ids"] = tracks;
           return out;
         }, "0.2", "One iteration: metrics, feedback so far, its dataset manifest and tracks."});

  t.add({"iterations.activate", {P::req("id", T::integer).range(1, 9e15)},
         [ctx, iteration_or_throw](const Params& p, Session&) -> json {
           const auto i = iteration_or_throw(p.get<store::Id>("id"));
           if (i.status != store::IterationStatus::ready)
             throw RpcError(ErrorCode::invalid_params,
                            "iteration " + std::to_string(i.id) + " is " +
                                std::string(store::to_string(i.status)) + ", only a ready one can be activated",
                            {{"id", i.id}});
           ctx->store.activate_iteration(i.id);
           spdlog::info("loop: iteration {} (#{}) activated", i.number, i.id);
           if (ctx->active_changed) ctx->active_changed();
           return {{"active", i.id}, {"number", i.number}};
         }, "0.2", "Makes an iteration the active one (rollback); its tracks are queued first."});

  t.add({"iterations.delete", {P::req("id", T::integer).range(1, 9e15)},
         [ctx, iteration_or_throw](const Params& p, Session&) -> json {
           const auto i = iteration_or_throw(p.get<store::Id>("id"));
           if (i.active)
             throw RpcError(ErrorCode::busy, "iteration " + std::to_string(i.id) +
                                                 " is active; activate another one first", {{"id", i.id}});
           if (i.status == store::IterationStatus::training || i.status == store::IterationStatus::generating ||
               i.status == store::IterationStatus::pending)
             throw RpcError(ErrorCode::busy, "iteration " + std::to_string(i.id) + " is still in progress",
                            {{"id", i.id}});
           // Its tracks and their feedback stay: feedback is never thrown away.
           ctx->store.set_iteration_status(i.id, store::IterationStatus::deleted);
           std::error_code ec;
           if (!i.adapter_path.empty()) fs::remove(i.adapter_path, ec);
           return {{"deleted", i.id}};
         }, "0.2", "Deletes an iteration that is not active (its adapter file; tracks and feedback stay)."});

  t.add({"job.status", {},
         [ctx](const Params&, Session&) -> json {
           json job = nullptr;
           if (auto id = ctx->loop.current_job()) {
             if (auto j = ctx->store.get_job(*id)) job = job_json(*j);
           } else {
             for (const auto& j : ctx->store.jobs(20))
               if (j.listener_id == ctx->listener_id()) {
                 job = job_json(j);
                 break;
               }
           }
           return {{"job", job}, {"loop", ctx->loop.status()}};
         }, "0.2", "The running job (or the latest one) and what the loop is doing."});

  t.add({"job.cancel", {},
         [ctx](const Params&, Session&) -> json {
           const auto id = ctx->loop.cancel_job();
           return {{"cancelled", id.has_value()}, {"job_id", opt_json(id)}};
         }, "0.2", "Cancels the running job; its iteration ends as failed, the previous stays active."});

  t.add({"loop.status", {},
         [ctx](const Params&, Session&) -> json { return ctx->loop.status(); },
         "0.2", "What the loop is doing or why it is waiting."});
}

}  // namespace tuneloop::daemon
