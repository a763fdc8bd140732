#include "loop/loop_service.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <filesystem>

#include "loop/feedback_reader.hpp"
#include "loop/scheduler.hpp"
#include "model/engine.hpp"

namespace tuneloop::loop {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string progress_text(const IterationProgress& p) {
  if (p.phase == "train")
    return "training step " + std::to_string(p.step) + " of " + std::to_string(p.total);
  if (p.phase == "generate")
    return "generating track " + std::to_string(p.step + 1) + " of " + std::to_string(p.total);
  if (p.phase == "encode") return "training: encoding the dataset";
  if (p.phase == "evaluate") return "training: evaluating";
  if (p.phase == "save") return "training: saving the adapter";
  if (p.phase == "load") return "loading the model";
  return "starting";
}

}  // namespace

LoopService::LoopService(asio::io_context& io, store::Store& store, const config::Config& config,
                         LoopHooks hooks, LoopOptions options)
    : io_(io),
      store_(store),
      config_(config),
      hooks_(std::move(hooks)),
      options_(options),
      timer_(io),
      worker_(options.worker_nice) {}

LoopService::~LoopService() { stop(); }

model::EngineOptions LoopService::engine_options() const {
  model::EngineOptions o;
  o.weights_dir = config_.paths.weights_dir.string();
  o.device = std::string(config::to_string(config_.model.device));
  o.threads = config_.model.threads;
  o.fine_tune_threads = config_.training.threads;
  return o;
}

model::Engine& LoopService::engine(const model::EngineOptions& options) {
  if (!engine_) engine_ = model::Engine::load(options);
  return *engine_;
}

void LoopService::start() {
  const store::Id listener = hooks_.listener_id();
  std::optional<IterationPlan> resume;
  for (const auto& job : store_.unfinished_jobs()) {
    if (job.kind != kIterationJobKind || job.listener_id != listener) continue;
    try {
      IterationPlan plan = plan_from_json(job.params_json);
      plan.job_id = job.id;
      plan.fine_tune.checkpoint_path = job.checkpoint_path;
      const auto it = store_.get_iteration(plan.iteration_id);
      const bool live = it && (it->status == store::IterationStatus::training ||
                               it->status == store::IterationStatus::generating ||
                               it->status == store::IterationStatus::pending);
      if (live && !resume) {
        resume = std::move(plan);
      } else {
        fail_iteration(store_, plan, live ? "superseded by an older unfinished job"
                                          : "its iteration is no longer in progress");
      }
    } catch (const std::exception& e) {
      spdlog::error("loop: cannot resume job {}: {}", job.id, e.what());
      try {
        store_.finish_job(job.id, store::JobState::failed, std::string("cannot resume: ") + e.what());
      } catch (const std::exception&) {
      }
    }
  }
  if (resume) {
    spdlog::info("loop: resuming job {} (iteration {}) from {}", resume->job_id, resume->number,
                 resume->fine_tune.checkpoint_path.empty() ? "the start" : resume->fine_tune.checkpoint_path);
    launch(std::move(*resume));
  } else {
    probe_engine(options_.bootstrap && !latest_iteration(store_, listener));
  }
  schedule_timer();
}

// Loads the model on the worker, so `status` and `iterate` know at once whether there is
// one (and its tag vocabulary). Iteration 0 needs a model: it is created only after the
// model loads, so a missing model leaves no failed iteration behind, only a reason.
void LoopService::probe_engine(bool first_batch) {
  if (probing_) return;
  probing_ = true;
  // The options are read here, on the io thread: a SIGHUP reload replaces the config there.
  worker_.submit([this, first_batch, options = engine_options()] {
    std::string error;
    std::vector<std::string> vocabulary;
    try {
      vocabulary = engine(options).tag_vocabulary();
    } catch (const std::exception& e) {
      error = e.what();
    }
    asio::post(io_, [this, error, first_batch, vocabulary = std::move(vocabulary)] {
      probing_ = false;
      if (stopping_) return;
      engine_error_ = error;
      engine_loaded_ = error.empty();
      if (!error.empty()) {
        spdlog::warn("loop: model unavailable{}: {}", first_batch ? ", no first batch" : "", error);
        return;
      }
      vocabulary_ = vocabulary;
      if (!first_batch || config_.generation.tracks_per_iteration <= 0) return;
      if (current_ || latest_iteration(store_, hooks_.listener_id())) return;
      try {
        check_model();
        IterationPlan plan = prepare_iteration(store_, config_, hooks_.listener_id(), store::now_ms());
        spdlog::info("loop: iteration 0 (base model): generating the first {} tracks",
                     plan.generation.tracks_per_iteration);
        launch(std::move(plan));
      } catch (const std::exception& e) {
        spdlog::error("loop: cannot start iteration 0: {}", e.what());
      }
    });
  });
}

void LoopService::stop() {
  if (stopping_) return;
  stopping_ = true;
  timer_.cancel();
  if (current_) spdlog::info("loop: stopping; job {} checkpoints and resumes at the next start", current_->plan.job_id);
  worker_.stop();
}

void LoopService::schedule_timer() {
  if (stopping_) return;
  timer_.expires_after(options_.check_every);
  timer_.async_wait([this](std::error_code ec) {
    if (ec || stopping_) return;
    check_automatic();
    schedule_timer();
  });
}

void LoopService::on_rating() {
  asio::post(io_, [this] {
    if (!stopping_) check_automatic();
  });
}

void LoopService::check_automatic() {
  if (current_) return;
  try {
    const store::Id listener = hooks_.listener_id();
    const ScheduleState s = read_schedule_state(store_, listener, store::now_ms(), false);
    if (!s.last_iteration_at && options_.bootstrap) return;  // iteration 0 comes first
    const Decision d = decide(s, config_.schedule, Request::automatic);
    if (!d.start) return;
    spdlog::info("loop: starting an iteration: {}", d.reason);
    launch(prepare_iteration(store_, config_, listener, store::now_ms()));
    waiting_for_data_.clear();
  } catch (const EmptyDatasetError& e) {
    // Not a failure: the listener has not liked anything yet. Say so once, not every check.
    if (waiting_for_data_ != e.what()) spdlog::info("loop: waiting for feedback: {}", e.what());
    waiting_for_data_ = e.what();
  } catch (const std::exception& e) {
    spdlog::error("loop: scheduler check failed: {}", e.what());
  }
}

void LoopService::check_model() {
  if (!engine_error_.empty()) {
    // Try again in the background: the weights may have been put in place since.
    probe_engine(false);
    throw model::ModelError("model unavailable: " + engine_error_);
  }
  if (vocabulary_.empty()) return;  // not loaded yet: the worker reports a bad tag
  for (const auto& tag : config_.generation.tags) {
    if (std::find(vocabulary_.begin(), vocabulary_.end(), tag) != vocabulary_.end()) continue;
    std::string known;
    for (const auto& v : vocabulary_) known += " " + v;
    throw model::ModelError("config generation.tags: unknown tag '" + tag + "'; the model knows:" + known);
  }
}

LoopService::StartResult LoopService::iterate(bool force) {
  if (!current_) check_model();
  StartResult r;
  const store::Id listener = hooks_.listener_id();
  const ScheduleState s = read_schedule_state(store_, listener, store::now_ms(), current_.has_value());
  const Decision d = decide(s, config_.schedule, force ? Request::forced : Request::manual);
  r.reason = d.reason;
  if (!d.start) return r;
  if (stopping_) {
    r.reason = "the daemon is shutting down";
    return r;
  }
  IterationPlan plan;
  try {
    plan = prepare_iteration(store_, config_, listener, store::now_ms());
  } catch (const EmptyDatasetError& e) {
    r.reason = e.what();
    return r;
  }
  r.started = true;
  r.iteration_id = plan.iteration_id;
  r.job_id = plan.job_id;
  spdlog::info("loop: iteration {} requested ({})", plan.number, d.reason);
  launch(std::move(plan));
  return r;
}

std::optional<store::Id> LoopService::cancel_job() {
  if (!current_) return std::nullopt;
  current_->user_cancelled = true;
  worker_.cancel_current();
  return current_->plan.job_id;
}

std::optional<store::Id> LoopService::current_job() const {
  if (!current_) return std::nullopt;
  return current_->plan.job_id;
}

void LoopService::launch(IterationPlan plan) {
  current_ = Running{plan, IterationProgress{"load", 0, 0, 0, 0, 0}, std::chrono::steady_clock::now(), false};
  hooks_.publish("job.progress", {{"job_id", plan.job_id}, {"iteration_id", plan.iteration_id},
                                  {"iteration", plan.number}, {"state", "running"},
                                  {"phase", "start"}, {"progress", 0.0}});
  worker_.submit([this, plan = std::move(plan), options = engine_options()] {
    // Throttled so a fast fixture model does not flood the io thread and the database.
    auto last_post = std::chrono::steady_clock::time_point{};
    std::string last_phase;
    auto progress = [&](const IterationProgress& p) {
      const auto now = std::chrono::steady_clock::now();
      if (p.phase == last_phase && p.step < p.total && now - last_post < std::chrono::milliseconds(200))
        return;
      last_post = now;
      last_phase = p.phase;
      asio::post(io_, [this, p] { on_progress(p); });
    };
    try {
      model::Engine& e = engine(options);
      asio::post(io_, [this, vocabulary = e.tag_vocabulary()] { vocabulary_ = vocabulary; });
      IterationOutcome outcome = run_iteration(e, plan, progress, worker_.cancel_flag());
      asio::post(io_, [this, outcome = std::move(outcome)] { on_finished(outcome); });
    } catch (const model::Cancelled& e) {
      asio::post(io_, [this, what = std::string(e.what())] { on_failed(what, true); });
    } catch (const std::exception& e) {
      asio::post(io_, [this, what = std::string(e.what())] { on_failed(what, false); });
    }
  });
}

void LoopService::on_progress(const IterationProgress& p) {
  if (!current_ || stopping_) return;
  const bool entering_generation = p.phase == "generate" && current_->progress.phase != "generate";
  current_->progress = p;
  engine_loaded_ = true;
  engine_error_.clear();
  const auto& plan = current_->plan;
  try {
    if (entering_generation)
      store_.set_iteration_status(plan.iteration_id, store::IterationStatus::generating);
    store_.update_job_progress(plan.job_id, std::clamp(p.fraction, 0.0, 1.0), progress_text(p));
  } catch (const std::exception& e) {
    spdlog::warn("loop: cannot record progress of job {}: {}", plan.job_id, e.what());
  }
  json ev{{"job_id", plan.job_id}, {"iteration_id", plan.iteration_id}, {"iteration", plan.number},
          {"state", "running"}, {"phase", p.phase}, {"step", p.step}, {"total", p.total},
          {"progress", p.fraction}, {"eta_s", p.eta_seconds}};
  if (p.phase == "train") ev["loss"] = p.loss;
  hooks_.publish("job.progress", ev);
}

void LoopService::on_finished(const IterationOutcome& outcome) {
  if (!current_) return;
  const IterationPlan plan = current_->plan;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - current_->started).count();
  current_.reset();
  engine_loaded_ = true;
  try {
    const std::vector<store::Id> ids = finish_iteration(store_, plan, outcome, seconds);
    spdlog::info("loop: iteration {} ready: {} tracks in {:.1f} s", plan.number, ids.size(), seconds);
    if (hooks_.tracks_ready) hooks_.tracks_ready(ids);
    hooks_.publish("job.progress", {{"job_id", plan.job_id}, {"iteration_id", plan.iteration_id},
                                    {"iteration", plan.number}, {"state", "done"}, {"progress", 1.0}});
    hooks_.publish("iteration.ready", {{"id", plan.iteration_id}, {"number", plan.number},
                                       {"tracks", ids}, {"seconds", seconds}});
  } catch (const std::exception& e) {
    spdlog::error("loop: cannot record iteration {}: {}", plan.number, e.what());
    fail_iteration(store_, plan, e.what());
  }
}

void LoopService::on_failed(const std::string& error, bool cancelled) {
  if (!current_) return;
  // Shutting down: the fine-tune has checkpointed; the job stays unfinished for resume.
  if (stopping_ || (cancelled && !current_->user_cancelled)) return;
  const IterationPlan plan = current_->plan;
  current_.reset();
  if (!cancelled && !engine_) {
    engine_error_ = error;
  }
  spdlog::error("loop: iteration {} {}: {}", plan.number, cancelled ? "cancelled" : "failed", error);
  fail_iteration(store_, plan, cancelled ? "cancelled" : error, cancelled);
  hooks_.publish("job.progress", {{"job_id", plan.job_id}, {"iteration_id", plan.iteration_id},
                                  {"iteration", plan.number},
                                  {"state", cancelled ? "cancelled" : "failed"},
                                  {"error", cancelled ? "cancelled" : error}});
}

std::string LoopService::status_text() {
  if (current_) return progress_text(current_->progress);
  if (!engine_error_.empty()) return "model unavailable: " + engine_error_;
  try {
    const ScheduleState s = read_schedule_state(store_, hooks_.listener_id(), store::now_ms(), false);
    const Decision d = decide(s, config_.schedule, Request::automatic);
    if (d.start) return "due: " + d.reason;
    if (d.reason.rfind("waiting: ", 0) == 0 && d.reason.find("manual only") != std::string::npos)
      return "idle";
    return d.reason.rfind("waiting", 0) == 0 ? d.reason : "waiting: " + d.reason;
  } catch (const std::exception& e) {
    return std::string("waiting: cannot read the schedule state: ") + e.what();
  }
}

json LoopService::status() {
  std::string state = "idle";
  const std::string text = status_text();
  if (current_) {
    const auto& ph = current_->progress.phase;
    state = ph == "generate" ? "generating" : ph == "load" ? "loading" : "training";
  } else if (!engine_error_.empty()) {
    state = "unavailable";
  } else if (text.rfind("waiting", 0) == 0) {
    state = "waiting";
  }
  json job = nullptr;
  if (current_) {
    const auto& p = current_->progress;
    job = {{"id", current_->plan.job_id}, {"iteration_id", current_->plan.iteration_id},
           {"iteration", current_->plan.number}, {"phase", p.phase}, {"step", p.step},
           {"total", p.total}, {"loss", p.loss}, {"eta_s", p.eta_seconds},
           {"progress", p.fraction}};
  }
  return {{"state", state}, {"text", text}, {"job", job}, {"worker_nice", worker_.nice_value()}};
}

}  // namespace tuneloop::loop
