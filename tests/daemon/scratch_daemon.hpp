#pragma once
// Test helper: a real tuneloopd process (client::DaemonProcess) on a temporary data folder,
// socket and config.

#include "client/client.hpp"
#include "client/daemon_process.hpp"
#include "audio/audio.hpp"
#include "tests/support/temp_dir.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace tuneloop::testing {

namespace fs = std::filesystem;

inline fs::path tuneloopd_binary() { return fs::path(TUNELOOP_BINARY_DIR) / "daemon" / "tuneloopd"; }

/// A sine tone of `seconds` at `rate` Hz written as a WAV file.
inline fs::path write_tone(const fs::path& path, double seconds, double hz = 440, int rate = 16000) {
  audio::Audio a;
  a.sample_rate = rate;
  a.samples.resize(static_cast<std::size_t>(seconds * rate));
  for (std::size_t i = 0; i < a.samples.size(); ++i)
    a.samples[i] = 0.3f * static_cast<float>(std::sin(2 * M_PI * hz * static_cast<double>(i) / rate));
  audio::write_audio(path.string(), a);
  return path;
}

class ScratchDaemon {
 public:
  /// `yaml` is appended to a config that sets paths, disables HTTP and sets audio.output
  /// (so text right after it continues the `audio:` section). paths.weights_dir is an
  /// empty folder, so the daemon runs without a model (no iteration 0 at start) whatever
  /// model/weights/ holds; use_weights() points it at fixture weights instead.
  explicit ScratchDaemon(std::string audio_output = "none", std::string extra_yaml = "")
      : tmp_("tuneloop-daemon"),
        dir_(tmp_.path()),
        data_(dir_ / "data"),
        socket_(dir_ / "run" / "tuneloop.sock"),
        config_(dir_ / "config.yaml"),
        weights_(dir_ / "no-weights"),
        audio_output_(std::move(audio_output)),
        extra_yaml_(std::move(extra_yaml)),
        process_({.exe = tuneloopd_binary(),
                  .args = {"--config", config_.string(), "--log-level", "debug"},
                  .socket = socket_,
                  .log = dir_ / "daemon.log",
                  .wait_s = 30}) {
    fs::create_directories(weights_);
    write_config();
  }

  /// Rewrites the config with paths.weights_dir = `dir` (takes effect at the next start).
  void use_weights(const fs::path& dir) {
    weights_ = dir;
    write_config();
  }
  // The folder goes with tmp_, after the process is gone.
  ~ScratchDaemon() { stop(SIGKILL); }

  const fs::path& dir() const { return dir_; }
  const fs::path& data() const { return data_; }
  const fs::path& socket() const { return socket_; }
  const fs::path& config() const { return config_; }
  pid_t pid() const { return process_.pid(); }
  fs::path log() const { return dir_ / "daemon.log"; }

  /// Starts tuneloopd and waits until it answers on its socket. Throws
  /// client::LaunchError (with the log) on failure.
  void start() { process_.start(); }

  /// Sends `sig` and waits; returns the wait status.
  int stop(int sig = SIGTERM) { return process_.signal_and_wait(sig); }

  client::Client client() const { return client::Client::connect_unix(socket_); }

  const fs::path& weights_dir() const { return weights_; }

  std::string log_text() const {
    std::ifstream in(log());
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  void write_config() const {
    std::ofstream(config_) << "paths:\n  data_dir: " << data_.string() << "\n  socket: "
                           << socket_.string() << "\n  weights_dir: " << weights_.string()
                           << (extra_yaml_.find("http:") == std::string::npos ? "\nhttp:\n  enabled: false" : "")
                           << (extra_yaml_.find("mpd:") == std::string::npos ? "\nmpd:\n  port: 0" : "")
                           << "\naudio:\n  output: " << audio_output_
                           << "\n  checkpoint_seconds: 0.5\n"
                           << extra_yaml_;
  }

  TempDir tmp_;
  fs::path dir_, data_, socket_, config_, weights_;
  std::string audio_output_, extra_yaml_;
  client::DaemonProcess process_;
};

}  // namespace tuneloop::testing
