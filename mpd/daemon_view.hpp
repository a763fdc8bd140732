#pragma once
// The MPD door's only way into the daemon: JSON-RPC calls through the same Dispatcher and
// command table as the Unix socket and the web player (one source of truth; the MPD side
// keeps no player state of its own). A JSON-RPC error becomes an MPD ACK here.

#include "rpc/dispatcher.hpp"
#include "rpc/session.hpp"
#include "mpd/protocol.hpp"

#include <nlohmann/json.hpp>

#include <string>

namespace tuneloop::mpd {

/// The MPD code nearest a JSON-RPC error code (daemon/errors.hpp): not found → 50, bad
/// parameter → 2, no audio device → 52 (system), busy → 55 (player sync), else 5.
Ack ack_for_rpc_code(int rpc_code) noexcept;

/// A JSON-RPC call that failed; the message is the daemon's, without its "method: " prefix.
class RpcFailure : public MpdError {
 public:
  RpcFailure(int rpc_code, const std::string& message)
      : MpdError(ack_for_rpc_code(rpc_code), message), rpc_code_(rpc_code) {}
  int rpc_code() const noexcept { return rpc_code_; }

 private:
  int rpc_code_;
};

class DaemonView {
 public:
  /// Both must outlive the view; io thread only.
  DaemonView(const rpc::Dispatcher& dispatcher, rpc::Session& session)
      : dispatcher_(dispatcher), session_(session) {}

  /// Calls `method` with `params` (an object) and returns its result.
  /// Throws RpcFailure if the daemon answers an error.
  nlohmann::json call(const std::string& method,
                      const nlohmann::json& params = nlohmann::json::object()) const;

 private:
  const rpc::Dispatcher& dispatcher_;
  rpc::Session& session_;
};

}  // namespace tuneloop::mpd
