#include "rpc/http_lines.hpp"

namespace tuneloop::rpc {

bool looks_like_http(std::string_view line) noexcept {
  if (!line.empty() && (line.front() == '{' || line.front() == '[')) return false;  // JSON-RPC
  static constexpr std::string_view kStarts[] = {"GET ", "POST ", "PUT ", "HEAD ", "DELETE ",
                                                 "OPTIONS ", "PATCH ", "CONNECT ", "TRACE ",
                                                 "Host:", "host:", "HOST:"};
  for (auto s : kStarts)
    if (line.substr(0, s.size()) == s) return true;
  // "METHOD TARGET HTTP/x": an upper-case word, then the protocol at the end of the line.
  const auto space = line.find(' ');
  if (space == std::string_view::npos || space == 0) return false;
  for (char c : line.substr(0, space))
    if (c < 'A' || c > 'Z') return false;
  const auto proto = line.rfind(" HTTP/");
  return proto != std::string_view::npos && proto > space;
}

}  // namespace tuneloop::rpc
