#pragma once
// A small blocking JSON-RPC client for tuneloopd's socket, used by the `tuneloop` CLI,
// the tests and the IPC benchmark. Not thread-safe: one Client per thread.

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>

namespace tuneloop::client {

/// The daemon is not reachable; the message says where we looked and how to start it.
class NotRunningError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The daemon answered with a JSON-RPC error.
class CallError : public std::runtime_error {
 public:
  CallError(int code, const std::string& message, nlohmann::json data)
      : std::runtime_error(message), code_(code), data_(std::move(data)) {}
  int code() const noexcept { return code_; }
  const nlohmann::json& data() const noexcept { return data_; }

 private:
  int code_;
  nlohmann::json data_;
};

class Client {
 public:
  /// Connects to the Unix socket. Throws NotRunningError if nothing listens there.
  static Client connect_unix(const std::filesystem::path& socket);
  /// Connects to 127.0.0.1:port and authorises with the token of DATA/tcp-token. Throws
  /// NotRunningError if nothing listens there, CallError (-32007) for a wrong token.
  static Client connect_tcp(int port, const std::string& token);
  /// Connects to 127.0.0.1:port without authorising (the first request must be `auth`).
  static Client connect_tcp_unauthorised(int port);

  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  /// Sends a request and waits for its reply, queueing notifications that arrive first.
  /// Returns the result. Throws CallError for an error reply, std::runtime_error if the
  /// connection breaks.
  nlohmann::json call(const std::string& method, const nlohmann::json& params = nullptr);
  /// Like call() but returns the whole reply object (result or error).
  nlohmann::json request(const std::string& method, const nlohmann::json& params = nullptr);

  /// Sends raw bytes (a line must end in '\n' to be read by the daemon).
  void send_raw(const std::string& bytes);
  /// Reads the next line. std::nullopt on a timeout; throws std::runtime_error on EOF.
  std::optional<std::string> read_line(int timeout_ms = -1);
  /// The next message: a queued notification first, else the next line parsed.
  std::optional<nlohmann::json> next_message(int timeout_ms = -1);

  /// Default seconds to wait for a reply in call()/request(); -1 = forever.
  void set_timeout_ms(int ms) noexcept { timeout_ms_ = ms; }

 private:
  explicit Client(int fd) : fd_(fd) {}
  int fd_ = -1;
  std::int64_t next_id_ = 1;
  int timeout_ms_ = 30000;
  std::string buffer_;
  std::vector<nlohmann::json> pending_;
};

/// The message the CLI prints when the daemon is not running.
std::string not_running_message(const std::filesystem::path& socket);

}  // namespace tuneloop::client
