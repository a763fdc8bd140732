#include "mpd/daemon_view.hpp"

#include "rpc/errors.hpp"

namespace tuneloop::mpd {

using nlohmann::json;
using rpc::ErrorCode;

Ack ack_for_rpc_code(int rpc_code) noexcept {
  switch (static_cast<ErrorCode>(rpc_code)) {
    case ErrorCode::not_found: return Ack::no_exist;
    case ErrorCode::invalid_params: return Ack::arg;
    case ErrorCode::no_audio_device:
    case ErrorCode::storage_error:
    case ErrorCode::invalid_audio: return Ack::system;
    case ErrorCode::busy: return Ack::player_sync;
    default: return Ack::unknown;
  }
}

json DaemonView::call(const std::string& method, const json& params) const {
  const json request = {{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}, {"params", params}};
  const json reply = dispatcher_.handle(request, session_);
  if (reply.is_object() && reply.contains("result")) return reply["result"];
  int code = static_cast<int>(ErrorCode::internal_error);
  std::string message = method + ": no reply";
  if (reply.is_object() && reply.contains("error") && reply["error"].is_object()) {
    const json& e = reply["error"];
    code = e.value("code", code);
    message = e.value("message", message);
  }
  // The dispatcher names the method first; an MPD client knows its own command instead.
  if (const std::string prefix = method + ": "; message.compare(0, prefix.size(), prefix) == 0)
    message.erase(0, prefix.size());
  throw RpcFailure(code, message);
}

}  // namespace tuneloop::mpd
