#include "client/daemon_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <iterator>
#include <thread>

namespace tuneloop::client {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// The process has exited: reaps it and returns true with its wait status in `status`.
bool reaped(pid_t pid, int& status) { return ::waitpid(pid, &status, WNOHANG) == pid; }

}  // namespace

DaemonProcess::~DaemonProcess() { stop(); }

DaemonProcess::DaemonProcess(DaemonProcess&& other) noexcept
    : options_(std::move(other.options_)), pid_(other.pid_) {
  other.pid_ = -1;
}

void DaemonProcess::start() {
  if (running()) throw LaunchError(options_.exe.string() + " is already running", -1);
  // Everything the child needs is built before fork(): only async-signal-safe calls after.
  std::vector<std::string> argv_text{options_.exe.string()};
  argv_text.insert(argv_text.end(), options_.args.begin(), options_.args.end());
  std::vector<char*> argv;
  for (auto& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string log = options_.log.empty() ? std::string("/dev/null") : options_.log.string();

  pid_ = ::fork();
  if (pid_ < 0) {
    pid_ = -1;
    throw LaunchError("cannot start " + options_.exe.string() + ": fork failed", -1);
  }
  if (pid_ == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }

  const auto deadline = Clock::now() + std::chrono::duration<double>(options_.wait_s);
  while (true) {
    int status = 0;
    if (reaped(pid_, status)) {
      pid_ = -1;
      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      throw LaunchError(options_.exe.string() +
                            (code == 127 ? " could not be run"
                                         : " exited with status " + std::to_string(code)) +
                            " before answering; its log ends:\n" + log_tail(),
                        code);
    }
    if (fs::exists(options_.socket)) {
      try {
        connect().call("ping");
        return;
      } catch (const std::exception&) {
        // Bound but not yet serving; try again.
      }
    }
    if (Clock::now() > deadline) {
      signal_and_wait(SIGKILL);
      throw LaunchError(options_.exe.string() + " did not answer on " + options_.socket.string() +
                            " within " + std::to_string(static_cast<int>(options_.wait_s)) +
                            " s; its log ends:\n" + log_tail(),
                        -1);
    }
    sleep_ms(50);
  }
}

int DaemonProcess::signal_and_wait(int sig) {
  if (!running()) return -1;
  ::kill(pid_, sig);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  return status;
}

void DaemonProcess::stop() noexcept {
  if (!running()) return;
  try {
    auto c = connect();
    c.set_timeout_ms(5000);
    c.call("shutdown");
  } catch (...) {
    ::kill(pid_, SIGTERM);
  }
  // Graceful first (a running job checkpoints), then firmer.
  for (int i = 0; i < 300; ++i) {
    int status = 0;
    if (reaped(pid_, status)) {
      pid_ = -1;
      return;
    }
    if (i == 200) ::kill(pid_, SIGTERM);
    sleep_ms(50);
  }
  signal_and_wait(SIGKILL);
}

std::string DaemonProcess::log_tail(std::size_t max_bytes) const {
  if (options_.log.empty()) return "";
  std::ifstream in(options_.log);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.size() > max_bytes ? text.substr(text.size() - max_bytes) : text;
}

}  // namespace tuneloop::client
