#include "rpc/dispatcher.hpp"

#include "rpc/errors.hpp"

#include <algorithm>
#include <chrono>

namespace tuneloop::rpc {

using nlohmann::json;

json error_reply(const json& id, const json& error) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"error", error}};
}

std::size_t nesting_depth(std::string_view text) noexcept {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[': case '{': deepest = std::max(deepest, ++depth); break;
      case ']': case '}': if (depth > 0) --depth; break;
      default: break;
    }
  }
  return deepest;
}

json Dispatcher::handle(std::string_view text, Session& session) const noexcept {
  // Checked on the raw text, before parsing: nlohmann parses any depth, but copying or
  // comparing a deep value recurses once per level and a few thousand levels overflow the stack.
  if (const std::size_t depth = nesting_depth(text); depth > kMaxNestingDepth)
    return error_reply(nullptr, error_object(ErrorCode::invalid_request,
                                             "invalid request: nested " + std::to_string(depth) +
                                                 " levels deep (at most " +
                                                 std::to_string(kMaxNestingDepth) + " allowed)"));
  json request;
  try {
    request = json::parse(text);
  } catch (const json::parse_error& e) {
    // nlohmann's message already names the byte offset and what was expected.
    return error_reply(nullptr, error_object(ErrorCode::parse_error,
                                             std::string("parse error: ") + e.what()));
  } catch (...) {
    return error_reply(nullptr, error_object(ErrorCode::parse_error, "parse error"));
  }
  return handle(request, session);
}

json Dispatcher::handle(const json& request, Session& session) const noexcept {
  try {
    if (!request.is_array()) return handle_one(request, session, false);
    if (request.empty())
      return error_reply(nullptr, error_object(ErrorCode::invalid_request,
                                               "invalid request: an empty batch"));
    if (request.size() > kMaxBatchCalls)
      return error_reply(nullptr, error_object(ErrorCode::invalid_request,
                                               "invalid request: a batch of " +
                                                   std::to_string(request.size()) +
                                                   " calls (at most " +
                                                   std::to_string(kMaxBatchCalls) + " allowed)"));
    json replies = json::array();
    for (const auto& r : request) {
      json reply = handle_one(r, session, true);
      if (!reply.is_null()) replies.push_back(std::move(reply));
    }
    return replies.empty() ? json() : replies;
  } catch (...) {
    return error_reply(nullptr, error_from_exception(std::current_exception(), ""));
  }
}

json Dispatcher::handle_one(const json& request, Session& session, bool in_batch) const noexcept {
  const auto started = std::chrono::steady_clock::now();
  json id = nullptr;
  std::string method;
  bool notification = false;
  bool deferred = false;  // answered later, through the session
  json reply;
  try {
    if (!request.is_object())
      throw RpcError(ErrorCode::invalid_request,
                     std::string("invalid request: expected an object, got ") + request.type_name());
    if (auto it = request.find("id"); it != request.end()) {
      if (!(it->is_string() || it->is_number() || it->is_null()))
        throw RpcError(ErrorCode::invalid_request, "invalid request: 'id' must be a string, number or null");
      id = *it;
    } else {
      notification = true;
    }
    auto v = request.find("jsonrpc");
    if (v == request.end() || *v != "2.0")
      throw RpcError(ErrorCode::invalid_request, "invalid request: 'jsonrpc' must be \"2.0\"");
    auto m = request.find("method");
    if (m == request.end() || !m->is_string())
      throw RpcError(ErrorCode::invalid_request, "invalid request: 'method' must be a string");
    const std::string name = m->get<std::string>();
    const Command* command = table_.find(name);
    if (!command)
      throw RpcError(ErrorCode::method_not_found, "method not found: '" + name + "'");
    method = name;
    auto p = request.find("params");
    Params params = CommandTable::validate(*command, p == request.end() ? json() : *p);
    // A batch's replies go out together, so no call in one is answered later.
    session.begin_call(id, name, !notification && !in_batch);
    json result = command->handler(params, session);
    if (session.end_call()) deferred = true;
    else reply = {{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
  } catch (...) {
    session.end_call();  // a handler that defers must not throw afterwards
    reply = error_reply(id, error_from_exception(std::current_exception(), method));
  }
  if (observer_) {
    const long us = static_cast<long>(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::steady_clock::now() - started)
                                          .count());
    try { observer_(method, reply, us); } catch (...) {}
  }
  if (deferred) return json();
  // An invalid request is answered even without an id: the client could not have meant
  // it as a notification.
  if (notification && !reply.contains("error")) return json();
  if (notification && reply["error"]["code"] != static_cast<int>(ErrorCode::invalid_request))
    return json();
  return reply;
}

}  // namespace tuneloop::rpc
