#pragma once
// The MPD front door: a TCP listener (loopback by default, `mpd.port`) whose connections
// speak MPD's protocol onto the daemon's JSON-RPC command table. Framing is MPD's: the
// greeting, one command per line, an 8 KiB line limit (a longer line closes the
// connection), and connections silent for a minute closed unless they wait in `idle`.
// The daemon's events (player, ratings, iterations) wake waiting `idle` commands. Runs
// on the io thread, like the IPC server; docs/mpd.md describes what it serves.

#include "rpc/dispatcher.hpp"
#include "rpc/session.hpp"
#include "mpd/context.hpp"

#include <asio.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <set>
#include <string>

namespace tuneloop::mpd {

struct MpdOptions {
  std::string bind = "127.0.0.1";
  int port = 6600;  // 0 = any free port (tests); the daemon does not start the door for 0
  std::string password;
  std::size_t max_connections = 64;
  std::chrono::seconds timeout{60};  // MPD's connection_timeout
};

class MpdServer {
 public:
  /// Nothing is bound until start(). `dispatcher` and `sessions` belong to the io thread.
  MpdServer(asio::io_context& io, const rpc::Dispatcher& dispatcher, rpc::SessionRegistry& sessions,
            MpdOptions options);
  ~MpdServer();
  MpdServer(const MpdServer&) = delete;
  MpdServer& operator=(const MpdServer&) = delete;

  /// Binds and starts accepting. Throws std::runtime_error naming the address when it
  /// cannot (a port taken by a real mpd, a bad address, a non-loopback address without
  /// a password); the daemon logs it and serves on without this door.
  void start();
  /// Stops accepting, lets every connection flush what it owes and closes it. Idempotent.
  void stop() noexcept;

  /// The port bound, 0 before start() or after stop().
  int port() const noexcept;
  std::size_t connection_count() const noexcept { return connections_.size(); }

  class Connection;

 private:
  void accept();
  void on_event(const nlohmann::json& notification);
  void raise(unsigned flags);
  void check_soon();
  void check() noexcept;
  void poll_while_idle();
  void forget(const std::shared_ptr<Connection>& c) { connections_.erase(c); }

  asio::io_context& io_;
  rpc::SessionRegistry& sessions_;
  MpdOptions options_;
  Shared shared_;
  rpc::Session hub_;  // receives every daemon event for all MPD connections
  DaemonView hub_view_;
  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer poll_timer_;
  asio::steady_timer retry_timer_;  // accept back-off after EMFILE; cancelled by stop()
  std::set<std::shared_ptr<Connection>> connections_;
  int next_id_ = 0;
  bool check_pending_ = false;
  bool polling_ = false;
  bool hub_registered_ = false;
  bool stopped_ = false;
};

}  // namespace tuneloop::mpd
