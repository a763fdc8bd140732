// Playback and IPC while the loop works (targets: 0 underruns, IPC p99 <= 5 ms).
// Starts a real tuneloopd that plays through PortAudio (on a headless machine the JACK
// dummy server: `source scripts/jack.sh; jack_ensure_running`), waits for iteration 0,
// rates it, starts playing a long tone, triggers `iterate` and, until the new iteration is
// ready, calls `ping` and `status` over the Unix socket at a steady rate. Prints latency
// percentiles per loop phase and the underruns the daemon counted meanwhile.
//
//   bench_loop_playback --weights DIR [--threads N] [--training-threads N] [--rate 200]
//                       [--steps N] [--tracks N]
//
// DIR holds autoencoder.safetensors and denoiser.safetensors (model/weights/pending, or a
// fixture written by build/tests/ui/ui_fixture_weights DIR). Other settings: defaults.
#include "client/client.hpp"
#include "client/daemon_process.hpp"
#include "audio/audio.hpp"
#include "config/config.hpp"

#include <CLI/CLI.hpp>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;
using tuneloop::client::Client;

namespace {

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Samples {
  std::vector<double> ms;
  void print(const std::string& label) {
    if (ms.empty()) return;
    std::sort(ms.begin(), ms.end());
    auto pct = [&](double p) { return ms[std::min(ms.size() - 1, static_cast<std::size_t>(p * ms.size()))]; };
    std::printf("  %-30s n %6zu   p50 %7.3f ms   p99 %7.3f ms   max %8.3f ms\n", label.c_str(), ms.size(),
                pct(0.50), pct(0.99), ms.back());
  }
};

template <typename Pred>
bool wait_until(double seconds, Pred pred) {
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return false;
}

json iteration(Client& c, int number) {
  for (const auto& i : c.call("iterations.list"))
    if (i["number"] == number) return i;
  return nullptr;
}

bool finished(const json& i) { return i.is_object() && (i["status"] == "ready" || i["status"] == "failed"); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_loop_playback: underruns and IPC latency while the loop fine-tunes"};
  std::string weights, daemon_bin = (fs::path(TUNELOOP_BINARY_DIR) / "daemon" / "tuneloopd").string();
  int threads = 0, training_threads = 0, steps = 0, tracks = 0;
  double rate = 200;
  bool keep = false;
  app.add_option("--weights", weights, "base-model weights folder")->required();
  app.add_option("--threads", threads,
                 "LibTorch threads for generation and the fine-tune (model.threads and training.threads; "
                 "default: the config's)");
  app.add_option("--training-threads", training_threads, "fine-tune workers only (training.threads)");
  app.add_option("--rate", rate, "IPC calls per second during the job")->capture_default_str();
  app.add_option("--steps", steps, "training.steps (default: the config default)");
  app.add_option("--tracks", tracks, "generation.tracks_per_iteration (default: the config default)");
  app.add_option("--daemon", daemon_bin, "the tuneloopd binary")->capture_default_str();
  app.add_flag("--keep", keep, "keep the temporary folder (daemon log, data)");
  CLI11_PARSE(app, argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // figures appear as they come, also in a log file

  const tuneloop::config::Config defaults;
  const int model_threads = threads > 0 ? threads : defaults.model.threads;
  const int fine_tune_threads =
      training_threads > 0 ? training_threads : threads > 0 ? threads : defaults.training.threads;

  std::string tmpl = (fs::temp_directory_path() / "tuneloop-bench-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) return 1;
  const fs::path dir = tmpl, socket = dir / "tuneloop.sock", log = dir / "daemon.log";
  {
    std::ofstream cfg(dir / "config.yaml");
    cfg << "paths:\n  data_dir: " << (dir / "data").string() << "\n  socket: " << socket.string()
        << "\n  weights_dir: " << fs::absolute(weights).string() << "\nhttp:\n  enabled: false\n"
        << "audio:\n  output: portaudio\n";
    cfg << "model:\n  threads: " << model_threads << "\ntraining:\n  threads: " << fine_tune_threads << "\n";
    if (steps > 0) cfg << "  steps: " << steps << "\n";
    cfg << "schedule:\n  min_feedback: 1\n  after_new_ratings: 0\n";
    if (tracks > 0) cfg << "generation:\n  tracks_per_iteration: " << tracks << "\n";
  }
  // A long tone to play while the job runs (it never ends during the run).
  const fs::path tone = dir / "tone.wav";
  {
    tuneloop::audio::Audio a;
    a.sample_rate = 16000;
    a.samples.resize(16000 * 900);
    for (std::size_t i = 0; i < a.samples.size(); ++i)
      a.samples[i] = 0.2f * static_cast<float>(std::sin(2 * M_PI * 330.0 * static_cast<double>(i) / 16000));
    tuneloop::audio::write_audio(tone.string(), a);
  }

  tuneloop::client::DaemonProcess daemon({.exe = daemon_bin,
                                          .args = {"--config", (dir / "config.yaml").string()},
                                          .socket = socket,
                                          .log = log,
                                          .wait_s = 15});
  int rc = 0;
  auto cleanup = [&] {
    daemon.signal_and_wait(SIGTERM);
    if (keep) {
      std::printf("kept: %s\n", dir.c_str());
    } else {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  };
  try {
    daemon.start();
    std::optional<Client> c(daemon.connect());
    c->set_timeout_ms(120000);
    const json st = c->call("status");
    if (!st["audio"]["available"].get<bool>())
      throw std::runtime_error("no audio device (" + st["audio"]["message"].get<std::string>() +
                               "); start the JACK dummy server: source scripts/jack.sh; jack_ensure_running");
    std::printf("device: %s\nweights: %s, %d generation thread(s), %d fine-tune worker(s), worker nice %d, "
                "%.0f IPC calls/s\n",
                st["audio"]["device"].get<std::string>().c_str(), weights.c_str(),
                model_threads, fine_tune_threads,
                st["loop"]["worker_nice"].get<int>(), rate);

    // Iteration 0 (the first batch, generated at start).
    const auto t0 = Clock::now();
    if (!wait_until(1800, [&] { return finished(iteration(*c, 0)) || c->call("loop.status")["state"] == "unavailable"; }))
      throw std::runtime_error("iteration 0 did not finish in 30 min");
    const json zero = iteration(*c, 0);
    if (!zero.is_object() || zero["status"] != "ready")
      throw std::runtime_error("no iteration 0: " + c->call("loop.status").dump());
    std::printf("iteration 0 (%d tracks) ready after %.1f s\n", zero["tracks"].get<int>(), since(t0));
    const json first = c->call("tracks.list", {{"iteration", zero["id"]}});
    for (std::size_t i = 0; i < first.size(); ++i)
      c->call("rate", {{"track_id", first[i]["id"]}, {"stars", i % 4 == 0 ? 5 : i % 4 == 1 ? 4 : 2}});

    const json tone_track = c->call("tracks.add", {{"path", tone.string()}});
    c->call("player.play", {{"track_id", tone_track["id"]}});
    std::this_thread::sleep_for(std::chrono::seconds(2));
    const json before = c->call("status");
    const int underruns0 = before["audio"]["underruns"].get<int>();
    const double heard0 = before["play"].is_object() ? before["play"]["seconds_heard"].get<double>() : 0.0;

    const json r = c->call("iterate", {{"force", true}});
    if (!r["started"].get<bool>()) throw std::runtime_error("iterate did not start: " + r.dump());
    const auto t1 = Clock::now();
    std::map<std::string, Samples> by_phase;
    Samples ping_all, status_all;
    const auto period = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate));
    auto next = Clock::now();
    std::string phase = "loading";
    std::int64_t n = 0;
    json it;
    int replays = 0;
    while (true) {
      next += period;
      std::this_thread::sleep_until(next);
      const bool do_status = (n++ % 2) == 1;
      const auto a = Clock::now();
      const json reply = c->call(do_status ? "status" : "ping");
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - a).count();
      (do_status ? status_all : ping_all).ms.push_back(ms);
      if (do_status) {
        phase = reply["loop"]["state"].get<std::string>();
        if (reply["state"] == "idle") {  // the tone ended (it should not): keep audio going
          c->call("player.play", {{"track_id", tone_track["id"]}});
          ++replays;
        }
      }
      by_phase[phase + (do_status ? ", status" : ", ping")].ms.push_back(ms);
      if (n % static_cast<std::int64_t>(std::max(1.0, rate)) == 0) {  // about once a second
        it = c->call("iterations.show", {{"id", r["iteration_id"]}});
        if (finished(it)) break;
      }
    }
    const double job_s = since(t1);
    const json after = c->call("status");
    const int underruns = after["audio"]["underruns"].get<int>() - underruns0;
    const double heard = (after["play"].is_object() ? after["play"]["seconds_heard"].get<double>() : 0.0) - heard0;

    std::printf("iteration 1: %s in %.1f s; metrics %s\n", it["status"].get<std::string>().c_str(), job_s,
                it["metrics"].dump().c_str());
    std::printf("playback during the job: %.1f s heard of %.1f s wall, underruns %d%s\n", heard, job_s, underruns,
                replays ? " (the tone had to be restarted)" : "");
    std::printf("IPC round trips during the job (Unix socket, one client, paced):\n");
    ping_all.print("ping, whole job");
    status_all.print("status, whole job");
    for (auto& [label, s] : by_phase) s.print(label);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_loop_playback: %s\n", e.what());
    rc = 1;
  }
  cleanup();
  return rc;
}
