#pragma once
// One client's conversation with the daemon, independent of the transport (a Unix-socket
// connection, a TCP connection, later an HTTP/SSE client). Owned by the transport; lives
// on the io thread and is not thread-safe.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
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

class Session {
 public:
  /// `send` delivers one notification object to the client; it must not throw.
  explicit Session(std::string peer, std::function<void(const nlohmann::json&)> send = {})
      : peer_(std::move(peer)), send_(std::move(send)) {}

  const std::string& peer() const noexcept { return peer_; }
  bool subscribed(const std::string& event) const { return events_.count(event) > 0; }
  const std::set<std::string>& subscriptions() const noexcept { return events_; }
  void subscribe(const std::set<std::string>& events) { events_.insert(events.begin(), events.end()); }
  void unsubscribe_all() noexcept { events_.clear(); }

  /// Sends a JSON-RPC notification {"jsonrpc":"2.0","method":event,"params":params}
  /// if the session subscribed to `event`.
  void notify(const std::string& event, const nlohmann::json& params) const {
    if (send_ && subscribed(event))
      send_({{"jsonrpc", "2.0"}, {"method", event}, {"params", params}});
  }

 private:
  std::string peer_;
  std::function<void(const nlohmann::json&)> send_;
  std::set<std::string> events_;
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
