#pragma once
// Every JSON-RPC error code tuneloopd returns, in one place. The standard codes come from
// the JSON-RPC 2.0 specification; the application codes (-32001 …) are tuneloop's own
// and are documented in docs/protocol.md. Codes never change meaning once released.

#include <nlohmann/json.hpp>

#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>

namespace tuneloop::rpc {

enum class ErrorCode : int {
  parse_error = -32700,       // the line is not valid JSON
  invalid_request = -32600,   // valid JSON but not a JSON-RPC request (or an over-long line)
  method_not_found = -32601,  // no such method
  invalid_params = -32602,    // a parameter is missing, unknown, of the wrong type or out of range
  internal_error = -32603,    // a bug or an unexpected failure inside the daemon
  not_found = -32001,         // the track, song, play, iteration or job does not exist
  invalid_audio = -32002,     // the file is not audio libsndfile can read
  storage_error = -32003,     // the database or the data folder failed (disk full, read-only …)
  busy = -32004,              // conflicts with what the daemon is doing now
  no_audio_device = -32005,   // playback asked for but no audio device is available
  model_error = -32006,       // the model is unavailable or refused the request (e.g. an unknown tag)
  unauthorised = -32007,      // a TCP connection's first request was not `auth` with the right token
};

/// The name used in docs and logs, e.g. "invalid params".
std::string_view to_string(ErrorCode code) noexcept;

/// A failure a command handler reports to the caller. The message says what and where
/// (the parameter, the path, the id); `data` is optional machine-readable detail.
class RpcError : public std::runtime_error {
 public:
  RpcError(ErrorCode code, const std::string& message, nlohmann::json data = nullptr)
      : std::runtime_error(message), code_(code), data_(std::move(data)) {}
  ErrorCode code() const noexcept { return code_; }
  const nlohmann::json& data() const noexcept { return data_; }

 private:
  ErrorCode code_;
  nlohmann::json data_;
};

/// A JSON-RPC error object {"code", "message"[, "data"]}.
nlohmann::json error_object(ErrorCode code, const std::string& message,
                            const nlohmann::json& data = nullptr);

/// The one boundary where exceptions become protocol errors: maps the in-flight
/// exception `error` (RpcError, store, audio, player, model and config errors, anything else)
/// to an error object whose message starts with `method`. Never throws.
nlohmann::json error_from_exception(std::exception_ptr error, std::string_view method) noexcept;

}  // namespace tuneloop::rpc
