#pragma once
// The IPC transport: newline-delimited JSON-RPC over a Unix stream socket (mode 0600)
// and, optionally, a loopback TCP port. Each connection is a Session; complete lines go
// to the Dispatcher, replies and event notifications go back in order. Runs on the
// io thread.

#include "rpc/dispatcher.hpp"
#include "rpc/session.hpp"

#include <asio.hpp>

#include <cstddef>
#include <filesystem>
#include <memory>
#include <set>
#include <string_view>

namespace tuneloop::daemon {


/// Connections served at once (socket and TCP together). At the cap a new connection
/// replaces the one quiet for longest that has not subscribed to events; when all have,
/// it is closed at accept.
inline constexpr std::size_t kMaxConnections = 256;

/// Checks (or creates) a socket folder that lives in a shared place such as /tmp: it must
/// be a real folder, not a link, owned by this user and closed to everyone else (0700).
/// Throws std::runtime_error saying what is wrong with it.
void ensure_private_folder(const std::filesystem::path& dir);

struct IpcOptions {
  std::filesystem::path socket_path;
  int tcp_port = 0;  // 0 = no TCP listener
  // Where a fresh token for the TCP port is written (0600) at start: a TCP connection's
  // first request must be `auth` with it (any local user can reach a loopback port).
  std::filesystem::path tcp_token_file;
  std::size_t max_line_bytes = 1024 * 1024;
  int idle_seconds = 300;  // a connection silent this long is closed unless subscribed; 0 = never
};

class IpcServer {
 public:
  IpcServer(asio::io_context& io, const rpc::Dispatcher& dispatcher, rpc::SessionRegistry& sessions,
            IpcOptions options);
  ~IpcServer();

  /// Binds and starts accepting. Creates the socket's folder (0700) if missing and
  /// replaces a stale socket file; with a TCP port, writes its token file. Throws
  /// std::runtime_error naming the path (or port) if another daemon answers on the socket,
  /// binding fails or the token file cannot be written.
  void start();
  /// Stops accepting, lets every connection flush what it owes and closes it, and
  /// removes the socket file. Idempotent.
  void stop() noexcept;

  void set_max_line_bytes(std::size_t n) noexcept { *max_line_ = n; }
  /// Applies to each connection's next wait.
  void set_idle_seconds(int seconds) noexcept { *idle_seconds_ = seconds; }
  std::size_t connection_count() const noexcept;
  /// The TCP port actually bound (useful with tcp_port set), 0 when off.
  int tcp_port() const noexcept;

  struct ConnectionBase;

 private:
  void accept_unix();
  void accept_tcp();
  bool make_room();
  // Accepts the next connection on `acceptor` (which `again` re-arms), backing off when
  // the process is out of file descriptors instead of spinning.
  template <class Acceptor>
  void accept_on(Acceptor& acceptor, const char* kind, void (IpcServer::*again)());

  asio::io_context& io_;
  const rpc::Dispatcher& dispatcher_;
  rpc::SessionRegistry& sessions_;
  IpcOptions options_;
  std::shared_ptr<std::size_t> max_line_;
  std::shared_ptr<int> idle_seconds_;
  asio::local::stream_protocol::acceptor unix_acceptor_;
  asio::ip::tcp::acceptor tcp_acceptor_;
  std::shared_ptr<const std::string> tcp_token_;  // what `auth` must present on TCP
  asio::steady_timer retry_timer_;  // accept back-off after EMFILE
  std::shared_ptr<std::set<std::shared_ptr<ConnectionBase>>> connections_;
  bool stopped_ = false;
  bool socket_created_ = false;
};

}  // namespace tuneloop::daemon
