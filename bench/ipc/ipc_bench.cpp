// IPC round-trip latency and throughput of tuneloopd: p50/p99 for back-to-back `ping`
// and `status` calls, requests per second, and the same at a paced 1,000 requests/s
// (the target: p99 <= 5 ms). Starts its own daemon on a temporary data folder unless
// --socket names a running one.
#include "client/client.hpp"
#include "client/daemon_process.hpp"

#include <CLI/CLI.hpp>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using tuneloop::client::Client;

namespace {

struct Figures {
  double p50_ms, p99_ms, max_ms, per_second;
};

Figures measure(Client& c, const std::string& method, int n, double paced_rate) {
  std::vector<double> ms;
  ms.reserve(static_cast<std::size_t>(n));
  const auto start = Clock::now();
  for (int i = 0; i < n; ++i) {
    if (paced_rate > 0)
      std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                                std::chrono::duration<double>(i / paced_rate)));
    const auto t0 = Clock::now();
    c.call(method);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  const double total = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) { return ms[std::min(ms.size() - 1, static_cast<std::size_t>(p * ms.size()))]; };
  return {pct(0.50), pct(0.99), ms.back(), n / total};
}

void print(const std::string& label, const Figures& f) {
  std::printf("%-28s p50 %7.3f ms   p99 %7.3f ms   max %7.3f ms   %9.0f req/s\n", label.c_str(),
              f.p50_ms, f.p99_ms, f.max_ms, f.per_second);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_ipc: tuneloopd IPC round-trip latency and throughput"};
  std::string socket;
  int n = 5000;
  double paced_seconds = 5;
  app.add_option("--socket", socket, "use a running daemon at this socket (default: start one)");
  app.add_option("-n,--requests", n, "back-to-back requests per method (default 5000)");
  app.add_option("--paced-seconds", paced_seconds, "length of the paced 1,000 req/s run (default 5)");
  CLI11_PARSE(app, argc, argv);

  fs::path dir;
  std::optional<tuneloop::client::DaemonProcess> daemon;
  std::optional<Client> c;
  try {
    if (socket.empty()) {
      std::string tmpl = (fs::temp_directory_path() / "tuneloop-bench-XXXXXX").string();
      if (!::mkdtemp(tmpl.data())) return 1;
      dir = tmpl;
      socket = (dir / "tuneloop.sock").string();
      // An empty weights folder: no model, so no first batch is generated during the run.
      fs::create_directories(dir / "no-weights");
      std::ofstream(dir / "config.yaml") << "paths:\n  data_dir: " << (dir / "data").string()
                                         << "\n  socket: " << socket
                                         << "\n  weights_dir: " << (dir / "no-weights").string()
                                         << "\nhttp:\n  enabled: false\naudio:\n  output: none\n"
                                         << "daemon:\n  log_level: warn\n";
      // No log file: the daemon's log would interleave with the figures.
      daemon.emplace(tuneloop::client::LaunchOptions{
          .exe = fs::path(TUNELOOP_BINARY_DIR) / "daemon" / "tuneloopd",
          .args = {"--config", (dir / "config.yaml").string()},
          .socket = socket,
          .log = {},
          .wait_s = 15});
      daemon->start();
    }
    c.emplace(Client::connect_unix(socket));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_ipc: %s\n", e.what());
    return 1;
  }
  measure(*c, "ping", 200, 0);  // warm-up
  std::printf("tuneloopd IPC over %s (%d requests each)\n", socket.c_str(), n);
  print("ping, back to back", measure(*c, "ping", n, 0));
  print("status, back to back", measure(*c, "status", n, 0));
  const int paced_n = static_cast<int>(paced_seconds * 1000);
  print("ping, paced 1000 req/s", measure(*c, "ping", paced_n, 1000));
  print("status, paced 1000 req/s", measure(*c, "status", paced_n, 1000));

  if (daemon) {
    c.reset();
    daemon->signal_and_wait(SIGTERM);
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  return 0;
}
