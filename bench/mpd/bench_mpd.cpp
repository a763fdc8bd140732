// `status` round trips over tuneloopd's MPD port: requests per second and latency
// percentiles, back to back on one connection, as a status bar polling the daemon would.
//   bench_mpd --port 6600 --count 20000
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// Reads until a line that ends the reply ("OK" or "ACK …"); false on EOF.
bool read_reply(int fd, std::string& buffer) {
  char chunk[4096];
  for (;;) {
    for (std::size_t start = 0, nl; (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
      const std::string line = buffer.substr(start, nl - start);
      if (line == "OK" || line.rfind("ACK ", 0) == 0) {
        buffer.erase(0, nl + 1);
        return true;
      }
    }
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer.append(chunk, static_cast<std::size_t>(n));
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_mpd: status round trips over tuneloopd's MPD port"};
  int port = 6600, count = 20000;
  app.add_option("--port", port, "the MPD port of a running tuneloopd")->capture_default_str();
  app.add_option("--count", count, "round trips")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::fprintf(stderr, "bench_mpd: nothing listens on 127.0.0.1:%d\n", port);
    return 1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::string buffer;
  char greeting[256];
  const ssize_t g = ::recv(fd, greeting, sizeof greeting - 1, 0);
  if (g <= 0) return 1;
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(count));
  const auto start = Clock::now();
  for (int i = 0; i < count; ++i) {
    const auto t0 = Clock::now();
    if (::send(fd, "status\n", 7, MSG_NOSIGNAL) != 7 || !read_reply(fd, buffer)) {
      std::fprintf(stderr, "bench_mpd: the connection broke after %d round trips\n", i);
      return 1;
    }
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) { return us[static_cast<std::size_t>(p / 100.0 * (us.size() - 1))] / 1000.0; };
  std::printf("status over MPD: %d round trips in %.2f s = %.0f/s; latency p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
              count, seconds, count / seconds, pct(50), pct(99), us.back() / 1000.0);
  ::close(fd);
  return 0;
}
