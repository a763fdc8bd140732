#pragma once
// One MPD connection's conversation, without the socket: each request line in, the
// reply text and what to do with the connection out. Command lists, idle/noidle with
// the connection's pending idle events, permissions, argument counts, and the one place
// where a handler's MpdError (or any other exception) becomes an ACK line.
// Mirrors MPD's src/client/Process.cxx. io thread only.

#include "rpc/session.hpp"
#include "mpd/commands.hpp"
#include "mpd/context.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tuneloop::mpd {

/// MPD's max_command_list_size default: a list over 2 MiB closes the connection.
inline constexpr std::size_t kMaxCommandListBytes = 2 * 1024 * 1024;

class ClientState {
 public:
  enum class After {
    read_on,            // keep the connection
    close_after_flush,  // send the reply, then close (`close`, a malformed command name)
    close_now,          // close without a reply (not MPD's protocol; a line during idle)
  };
  struct Outcome {
    Outcome() = default;
    explicit Outcome(std::string r, After a = After::read_on) : reply(std::move(r)), after(a) {}
    std::string reply;
    After after = After::read_on;
  };

  /// `peer` names the connection in the daemon's logs.
  ClientState(Shared& shared, std::string peer);
  ClientState(const ClientState&) = delete;
  ClientState& operator=(const ClientState&) = delete;

  /// Handles one request line (its newline removed). Never throws.
  Outcome on_line(std::string_view line) noexcept;
  /// Adds idle events; returns the answer to a waiting `idle` if one is now due (else "").
  std::string raise(unsigned flags);
  bool idle_waiting() const noexcept { return idle_waiting_; }
  const std::string& peer() const noexcept { return session_.peer(); }

 private:
  enum class Step { ok, error, idle, close };
  struct StepResult {
    Step step;
    bool fatal = false;  // a malformed command name: close after the ACK
  };

  /// Runs one command, appending its output (or its ACK) to `out`.
  StepResult run(std::string_view line, unsigned list_index, std::string& out);
  Outcome run_list();
  /// Starts waiting; the answer if an event is already pending.
  std::string begin_idle();

  Shared& shared_;
  ClientInfo info_;
  rpc::Session session_;
  DaemonView daemon_;
  unsigned idle_flags_ = 0;
  bool idle_waiting_ = false;
  bool in_list_ = false;
  bool list_ok_ = false;
  std::vector<std::string> list_;
  std::size_t list_bytes_ = 0;
};

}  // namespace tuneloop::mpd
