#pragma once
// The loop inside the daemon: owns the model Engine (loaded lazily, on the worker), the
// worker thread and the scheduler timer, and runs one iteration at a time (never two).
// Everything here except the worker's tasks runs on the daemon's io thread, which is
// the only one that touches the store.

#include <asio.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "loop/iteration_runner.hpp"
#include "loop/worker.hpp"
#include "store/store.hpp"

namespace tuneloop::model {
class Engine;
}

namespace tuneloop::loop {

/// How the loop reaches back into the daemon (all called on the io thread).
struct LoopHooks {
  std::function<store::Id()> listener_id;
  std::function<void(const std::string& event, const nlohmann::json& params)> publish;
  /// New tracks are in the store and the iteration is active: queue them for playback.
  std::function<void(const std::vector<store::Id>& track_ids)> tracks_ready;
};

struct LoopOptions {
  std::chrono::milliseconds check_every{30000};  // scheduler timer period
  int worker_nice = 10;                         // added to the worker thread's nice value
  bool bootstrap = true;  // create and generate iteration 0 when the listener has none
};

class LoopService {
 public:
  /// `config` must outlive the service (the daemon's, updated in place on SIGHUP).
  LoopService(asio::io_context& io, store::Store& store, const config::Config& config,
              LoopHooks hooks, LoopOptions options = {});
  ~LoopService();
  LoopService(const LoopService&) = delete;
  LoopService& operator=(const LoopService&) = delete;

  /// Resumes an unfinished iteration job (from its checkpoint), else bootstraps
  /// iteration 0 if the listener has none, and starts the scheduler timer.
  void start();
  /// Stops the timer and the worker; a running fine-tune checkpoints first and its job
  /// stays unfinished so the next start() resumes it. Idempotent.
  void stop();

  struct StartResult {
    bool started = false;
    std::string reason;
    std::optional<store::Id> iteration_id;
    std::optional<store::Id> job_id;
  };
  /// A manual request (`iterate`); `force` skips the minimum-feedback rule. Never two jobs
  /// at once: with one running, started is false and the reason says so.
  /// Throws model::ModelError when the model could not be loaded ("model unavailable: …")
  /// or generation.tags names a tag the model does not know; store::StoreError.
  StartResult iterate(bool force);
  /// A new rating was recorded: the scheduler looks again (after the reply goes out).
  void on_rating();
  /// Asks the running job to stop; it ends as cancelled and its iteration as failed.
  /// Returns the job's id, or empty if none runs.
  std::optional<store::Id> cancel_job();

  bool job_running() const noexcept { return current_.has_value(); }
  std::optional<store::Id> current_job() const;
  /// {"state": idle|waiting|loading|training|generating|unavailable, "text": "…",
  ///  "job": {...} or null, "worker_nice": n}.
  nlohmann::json status();
  /// One line for `status`: "idle", "waiting: …", "training step k of n", "generating track i of n".
  std::string status_text();

 private:
  struct Running {
    IterationPlan plan;
    IterationProgress progress;
    std::chrono::steady_clock::time_point started;
    bool user_cancelled = false;
  };

  void schedule_timer();
  void check_automatic();
  void launch(IterationPlan plan);
  void on_progress(const IterationProgress& p);
  void on_finished(const IterationOutcome& outcome);
  void on_failed(const std::string& error, bool cancelled);
  void probe_engine(bool first_batch);
  // Throws model::ModelError (see iterate).
  void check_model();
  // Worker side: loads the engine once. Throws model::ModelError.
  // Worker thread only; the options are taken on the io thread (engine_options()).
  model::Engine& engine(const model::EngineOptions& options);
  model::EngineOptions engine_options() const;

  asio::io_context& io_;
  store::Store& store_;
  const config::Config& config_;
  LoopHooks hooks_;
  LoopOptions options_;
  asio::steady_timer timer_;
  std::optional<Running> current_;
  std::string waiting_for_data_;  // io thread: the last "nothing to train on" reason logged
  std::string engine_error_;  // io thread's copy: why the model could not be loaded
  bool engine_loaded_ = false;
  bool probing_ = false;                  // a probe_engine task is queued on the worker
  std::vector<std::string> vocabulary_;  // the loaded model's tags (io thread's copy)
  bool stopping_ = false;
  std::unique_ptr<model::Engine> engine_;  // worker thread only
  Worker worker_;                          // last: joined first on destruction
};

}  // namespace tuneloop::loop
