#pragma once
// Helpers of the MPD door's process tests: a free port, a squatter on a port, a raw MPD
// connection, running a client program. Header-only.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>

#include "tests/support/net.hpp"

namespace tuneloop::testing {

// A listening socket, standing in for a real mpd that holds the port.
class Squatter {
 public:
  Squatter() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(fd_, 4) != 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      throw std::runtime_error("cannot listen");
    port_ = ntohs(a.sin_port);
  }
  ~Squatter() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_;
  int port_ = 0;
};

// A raw MPD connection: lines in, lines out.
class MpdSocket {
 public:
  explicit MpdSocket(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      throw std::runtime_error("cannot connect to the MPD port " + std::to_string(port));
    greeting_ = read_line(10000).value_or("");
  }
  ~MpdSocket() { ::close(fd_); }
  MpdSocket(const MpdSocket&) = delete;
  MpdSocket& operator=(const MpdSocket&) = delete;

  const std::string& greeting() const { return greeting_; }

  void send(const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return;  // the server closed; reads will say so
      done += static_cast<std::size_t>(n);
    }
  }

  /// The next line without its newline; nullopt on a timeout or when the server closed.
  std::optional<std::string> read_line(int timeout_ms) {
    for (;;) {
      if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      if (!fill(timeout_ms)) return std::nullopt;
    }
  }

  /// Sends one command and returns every line of its answer up to OK or ACK, joined.
  std::string command(const std::string& line) {
    send(line + "\n");
    std::string out;
    while (auto l = read_line(10000)) {
      out += *l + "\n";
      if (*l == "OK" || l->rfind("ACK ", 0) == 0) break;
    }
    return out;
  }

  /// Whether the server closes the connection within the time (reading what it sends).
  bool closed_within(int timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      if (eof_) return true;
      fill(100);
    }
    return eof_;
  }

  /// Everything read but not yet returned as a line.
  const std::string& unread() const { return buffer_; }

 private:
  bool fill(int timeout_ms) {
    if (eof_) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buffer_.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  int fd_;
  std::string greeting_;
  std::string buffer_;
  bool eof_ = false;
};

inline std::string run_capture(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[4096];
  while (p && std::fgets(buf, sizeof buf, p)) out += buf;
  *status = p ? ::pclose(p) : -1;
  return out;
}

inline bool installed(const std::string& check) { return std::system((check + " >/dev/null 2>&1").c_str()) == 0; }

inline bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

inline std::string mpd_yaml(int port) { return "mpd:\n  port: " + std::to_string(port) + "\n"; }

}  // namespace tuneloop::testing
