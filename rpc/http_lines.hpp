#pragma once
// Every line-based front door (the JSON-RPC socket and TCP port, the MPD port) closes a
// connection whose line is HTTP: a web page's cross-protocol request must never run.
#include <string_view>

namespace tuneloop::rpc {

/// Whether a request line is an HTTP request line (`METHOD TARGET HTTP/x`) or a `Host:`
/// header; JSON (a line starting with `{` or `[`) never is.
bool looks_like_http(std::string_view line) noexcept;

}  // namespace tuneloop::rpc
