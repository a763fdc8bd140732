#pragma once
// JSON-RPC 2.0 over any transport: turns one request line (or an already parsed JSON
// value) into the reply to send back. Knows nothing about sockets or HTTP, so the IPC
// server, the TCP port and the web UI share it. Runs on the io thread.

#include "rpc/commands.hpp"
#include "rpc/session.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace tuneloop::rpc {

/// Requests nested deeper than this are refused before they are parsed.
inline constexpr std::size_t kMaxNestingDepth = 64;
/// A batch holds at most this many calls (each reply is built in memory before sending).
inline constexpr std::size_t kMaxBatchCalls = 256;

/// The deepest nesting of arrays and objects in JSON text (strings skipped); 0 for a scalar.
std::size_t nesting_depth(std::string_view text) noexcept;

class Dispatcher {
 public:
  explicit Dispatcher(const CommandTable& table) : table_(table) {}

  /// Parses and answers one request or batch. Returns the reply (an object, or an array
  /// for a batch) or a null json when nothing is to be sent now (notifications only, or a
  /// call whose method answers later through the session: Session::defer).
  /// Never throws: every failure becomes a JSON-RPC error object.
  nlohmann::json handle(std::string_view text, Session& session) const noexcept;
  nlohmann::json handle(const nlohmann::json& request, Session& session) const noexcept;

  /// Called after every call with (method, reply-or-null, elapsed µs); for logging.
  void set_observer(std::function<void(const std::string&, const nlohmann::json&, long)> f) {
    observer_ = std::move(f);
  }

 private:
  nlohmann::json handle_one(const nlohmann::json& request, Session& session, bool in_batch) const noexcept;

  const CommandTable& table_;
  std::function<void(const std::string&, const nlohmann::json&, long)> observer_;
};

/// {"jsonrpc":"2.0","id":id,"error":error}
nlohmann::json error_reply(const nlohmann::json& id, const nlohmann::json& error);

}  // namespace tuneloop::rpc
