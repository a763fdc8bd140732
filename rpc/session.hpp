#pragma once
// One client's conversation with the daemon, independent of the transport (a Unix-socket
// or TCP connection, an HTTP request, an SSE client). Owned by the transport; lives on the
// io thread and is not thread-safe.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

namespace tuneloop::rpc {

/// The events a session can subscribe to (docs/protocol.md, "Events").
inline const std::set<std::string>& event_names() {
  static const std::set<std::string> names = {
      "track.started", "track.ended",    "rating.recorded", "job.progress",
      "iteration.ready", "state.changed", "song.added"};
  return names;
}

/// How one client is sent messages: a reply, a notification. Must not throw.
using Sender = std::function<void(const nlohmann::json&)>;

/// The answer to a call whose work runs off the io thread (Session::defer): given once,
/// on the io thread. Dropped when the client has gone in the meantime.
class LaterReply {
 public:
  /// Sends {"jsonrpc":"2.0","id":…,"result":result}.
  void result(nlohmann::json result) const;
  /// Sends the error object that `error` maps to, as the dispatcher maps what a handler throws.
  void error(std::exception_ptr error) const;

 private:
  friend class Session;
  LaterReply(std::weak_ptr<const Sender> send, nlohmann::json id, std::string method)
      : send_(std::move(send)), id_(std::move(id)), method_(std::move(method)) {}
  std::weak_ptr<const Sender> send_;
  nlohmann::json id_;
  std::string method_;
};

class Session {
 public:
  /// `send` delivers one message (a notification, a later reply) to the client; it must
  /// not throw. Without it the session gets no notifications and no later replies.
  explicit Session(std::string peer, Sender send = {})
      : peer_(std::move(peer)),
        send_(send ? std::make_shared<const Sender>(std::move(send)) : nullptr) {}

  const std::string& peer() const noexcept { return peer_; }
  bool subscribed(const std::string& event) const { return events_.count(event) > 0; }
  const std::set<std::string>& subscriptions() const noexcept { return events_; }
  void subscribe(const std::set<std::string>& events) { events_.insert(events.begin(), events.end()); }
  void unsubscribe_all() noexcept { events_.clear(); }

  /// Sends a JSON-RPC notification {"jsonrpc":"2.0","method":event,"params":params}
  /// if the session subscribed to `event`.
  void notify(const std::string& event, const nlohmann::json& params) const {
    if (send_ && subscribed(event))
      (*send_)({{"jsonrpc", "2.0"}, {"method", event}, {"params", params}});
  }

  /// For a method whose work would hold up the io thread (reading, hashing, copying a
  /// file): when the call in progress may be answered later (a request with an id, not in
  /// a batch, on a transport that sends), the handle to answer it with; the handler then
  /// returns at once and its return value is ignored. nullopt: do the work now.
  std::optional<LaterReply> defer() {
    if (!call_.deferrable || !send_) return std::nullopt;
    call_.deferred = true;
    ++deferred_calls_;
    return LaterReply(send_, call_.id, call_.method);
  }
  /// How many calls on this connection took a LaterReply.
  int deferred_calls() const noexcept { return deferred_calls_; }

  /// The dispatcher brackets every call with these; end_call() says whether the call
  /// took a LaterReply (and so has no reply now).
  void begin_call(nlohmann::json id, std::string method, bool deferrable) {
    call_ = {std::move(id), std::move(method), deferrable, false};
  }
  bool end_call() noexcept {
    const bool deferred = call_.deferred;
    call_.deferrable = call_.deferred = false;
    return deferred;
  }

 private:
  struct Call {
    nlohmann::json id;
    std::string method;
    bool deferrable = false;
    bool deferred = false;
  };
  std::string peer_;
  std::shared_ptr<const Sender> send_;
  std::set<std::string> events_;
  Call call_;
  int deferred_calls_ = 0;
};

}  // namespace tuneloop::rpc

namespace tuneloop::rpc {

/// The live sessions of every transport, so events reach all subscribers.
/// io thread only.
class SessionRegistry {
 public:
  void add(Session* s) { sessions_.insert(s); }
  void remove(Session* s) noexcept { sessions_.erase(s); }
  std::size_t size() const noexcept { return sessions_.size(); }
  /// Sends the event to every session subscribed to it.
  void publish(const std::string& event, const nlohmann::json& params) const {
    // A copy: sending may close a connection, which removes its session from the set.
    const std::set<Session*> targets = sessions_;
    for (Session* s : targets)
      if (sessions_.count(s)) s->notify(event, params);
  }

 private:
  std::set<Session*> sessions_;
};

}  // namespace tuneloop::rpc
