#pragma once
// Starts tuneloopd as a child process, waits until it answers, and stops it: the one
// launcher that the pilot runner, the benches and the tests use.

#include <sys/types.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "client/client.hpp"

namespace tuneloop::client {

/// The daemon exited before answering, or did not answer in time. exit_code() is its exit
/// status (127: the program could not be run), or -1 when it was killed by a signal or is
/// still starting; the message ends with the tail of its log.
class LaunchError : public std::runtime_error {
 public:
  LaunchError(const std::string& message, int exit_code)
      : std::runtime_error(message), exit_code_(exit_code) {}
  int exit_code() const noexcept { return exit_code_; }

 private:
  int exit_code_;
};

struct LaunchOptions {
  std::filesystem::path exe;      // the tuneloopd binary
  std::vector<std::string> args;  // its arguments (without the program name)
  std::filesystem::path socket;   // where it answers `ping` once it is up
  std::filesystem::path log;      // stdout and stderr are appended here; empty = discarded
  double wait_s = 60;             // how long start() waits for the first answer
};

class DaemonProcess {
 public:
  /// Nothing started yet; call start().
  explicit DaemonProcess(LaunchOptions options) : options_(std::move(options)) {}
  /// Stops a running daemon (stop()).
  ~DaemonProcess();
  DaemonProcess(DaemonProcess&& other) noexcept;
  DaemonProcess& operator=(DaemonProcess&&) = delete;
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  /// Starts the daemon and waits until `ping` answers on the socket. Throws LaunchError
  /// (the daemon is reaped or killed first). Calling it while running is an error.
  void start();
  /// Sends `sig` and waits for the process; returns its wait status, -1 if none runs.
  int signal_and_wait(int sig);
  /// The `shutdown` method (SIGTERM when that fails), SIGTERM again after 10 s, SIGKILL
  /// after 15 s; waits for the process. Safe to call when nothing runs.
  void stop() noexcept;

  bool running() const noexcept { return pid_ > 0; }
  pid_t pid() const noexcept { return pid_; }
  /// Throws NotRunningError.
  Client connect() const { return Client::connect_unix(options_.socket); }
  const LaunchOptions& options() const noexcept { return options_; }
  /// The last `max_bytes` of the log ("" when there is none).
  std::string log_tail(std::size_t max_bytes = 2000) const;

 private:
  LaunchOptions options_;
  pid_t pid_ = -1;
};

}  // namespace tuneloop::client
