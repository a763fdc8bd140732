#include "daemon/ipc_server.hpp"

#include "daemon/secrets.hpp"
#include "rpc/errors.hpp"
#include "rpc/http_lines.hpp"
#include "rpc/write_queue.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>

namespace tuneloop::daemon {

namespace fs = std::filesystem;
using nlohmann::json;
using rpc::Dispatcher;
using rpc::error_object;
using rpc::error_reply;
using rpc::ErrorCode;
using rpc::Session;
using rpc::SessionRegistry;
using rpc::WriteQueue;

namespace {
// A subscriber that stops reading must not make the daemon buffer without bound.
constexpr std::size_t kMaxPendingOutput = 64 * 1024 * 1024;
int next_connection_id = 0;
}  // namespace

struct IpcServer::ConnectionBase {
  virtual ~ConnectionBase() = default;
  virtual void start() = 0;
  virtual void close_after_flush() = 0;
  // Closes at once, dropping unsent output (to make room for a new connection).
  virtual void evict() = 0;
  // Subscribed to events: waiting for them, so never evicted for being quiet.
  virtual bool subscribed() const = 0;
  virtual std::chrono::steady_clock::time_point last_active() const = 0;
};

namespace {

template <typename Socket>
class Connection : public IpcServer::ConnectionBase,
                   public std::enable_shared_from_this<Connection<Socket>> {
 public:
  using Set = std::set<std::shared_ptr<IpcServer::ConnectionBase>>;

  // required_token: null when the transport is trusted (the Unix socket checks the peer's
  // uid); else the first request must be `auth` presenting it.
  Connection(Socket socket, std::string peer, const Dispatcher& dispatcher,
             SessionRegistry& sessions, std::shared_ptr<std::size_t> max_line,
             std::shared_ptr<int> idle_seconds, std::weak_ptr<Set> owner,
             std::shared_ptr<const std::string> required_token)
      : socket_(std::move(socket)),
        idle_timer_(socket_.get_executor()),
        idle_seconds_(std::move(idle_seconds)),
        session_(std::move(peer), [this](const json& j) { send(j); }),
        dispatcher_(dispatcher),
        sessions_(sessions),
        max_line_(std::move(max_line)),
        owner_(std::move(owner)),
        required_token_(std::move(required_token)),
        out_(socket_, kMaxPendingOutput, [this](std::error_code ec) { written(ec); }) {}

  void start() override {
    sessions_.add(&session_);
    spdlog::debug("ipc: connection opened peer={}", session_.peer());
    wait_idle();
    read();
  }

  void close_after_flush() override {
    closing_ = true;
    if (out_.empty()) close();
  }

  void evict() override {
    spdlog::info("ipc: closing the quietest connection peer={} to make room", session_.peer());
    close();
  }

  bool subscribed() const override { return !session_.subscriptions().empty(); }
  std::chrono::steady_clock::time_point last_active() const override { return last_active_; }

 private:
  void read() {
    auto self = this->shared_from_this();
    socket_.async_read_some(asio::buffer(buf_), [self](std::error_code ec, std::size_t n) {
      if (ec) {
        self->close_after_flush();
        return;
      }
      self->last_active_ = std::chrono::steady_clock::now();
      self->consume(std::string_view(self->buf_.data(), n));
      if (!self->closing_) {
        self->wait_idle();
        self->read();
      }
    });
  }

  // A connection silent for idle_seconds is closed, so forgotten clients cannot hold the
  // connection cap; one subscribed to events is waiting for them and stays.
  void wait_idle() {
    if (*idle_seconds_ <= 0) return;
    idle_timer_.expires_after(std::chrono::seconds(*idle_seconds_));
    std::weak_ptr<Connection> weak = this->shared_from_this();
    idle_timer_.async_wait([weak](std::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->closed_) return;
      if (!self->session_.subscriptions().empty()) {
        self->wait_idle();
        return;
      }
      spdlog::info("ipc: peer={} silent for {} s; closing the connection", self->session_.peer(),
                   *self->idle_seconds_);
      self->close();
    });
  }

  // Splits the bytes into lines; a line over the limit is answered with an error and
  // the rest of it (up to its newline) is dropped, so the connection stays usable.
  void consume(std::string_view data) {
    while (!data.empty() && !closing_) {
      const auto nl = data.find('\n');
      const std::string_view piece = nl == std::string_view::npos ? data : data.substr(0, nl);
      data = nl == std::string_view::npos ? std::string_view() : data.substr(nl + 1);
      const bool complete = nl != std::string_view::npos;
      if (discarding_) {
        if (complete) discarding_ = false;
        continue;
      }
      if (line_.size() + piece.size() > *max_line_) {
        spdlog::warn("ipc: request line over {} bytes from peer={}, discarded", *max_line_,
                     session_.peer());
        send(error_reply(nullptr, error_object(ErrorCode::invalid_request,
                                               "invalid request: line longer than " +
                                                   std::to_string(*max_line_) +
                                                   " bytes (daemon.max_line_bytes); discarded")));
        line_.clear();
        discarding_ = !complete;
        continue;
      }
      line_.append(piece);
      if (!complete) continue;
      std::string line;
      line.swap(line_);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      if (rpc::looks_like_http(line)) {
        // A web page's cross-protocol fetch: its body line must never run.
        spdlog::warn("ipc: an HTTP request line from peer={}; closing the connection", session_.peer());
        close();
        return;
      }
      if (required_token_ && !authorised_) {
        authorise(line);
        continue;
      }
      json reply = dispatcher_.handle(std::string_view(line), session_);
      if (!reply.is_null()) send(reply);
    }
  }

  // The one request an unauthorised connection may make: {"method":"auth","params":
  // {"token":T}}. Anything else, or a wrong token, is answered -32007 and the connection
  // closed, so a guess costs a connection.
  void authorise(const std::string& line) {
    json id = nullptr;
    if (rpc::nesting_depth(line) <= rpc::kMaxNestingDepth) {
      const json request = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (request.is_object()) {
        if (const auto it = request.find("id"); it != request.end() && (it->is_string() || it->is_number()))
          id = *it;
        const auto method = request.find("method");
        const auto params = request.find("params");
        if (method != request.end() && *method == "auth" && params != request.end() &&
            params->is_object() && params->contains("token") && (*params)["token"].is_string() &&
            same_token((*params)["token"].get_ref<const std::string&>(), *required_token_)) {
          authorised_ = true;
          spdlog::info("ipc: peer={} authorised", session_.peer());
          send({{"jsonrpc", "2.0"}, {"id", id}, {"result", {{"authorised", true}}}});
          return;
        }
      }
    }
    spdlog::warn("ipc: peer={} did not present the TCP token; closing the connection", session_.peer());
    send(error_reply(id, error_object(ErrorCode::unauthorised,
                                      "unauthorised: on the TCP port the first request must be "
                                      "auth {\"token\": …} with the token in DATA/tcp-token")));
    close_after_flush();
  }

  void send(const json& message) {
    if (closed_) return;
    std::string text = message.dump(-1, ' ', false, json::error_handler_t::replace);
    text.push_back('\n');
    if (!out_.push(std::move(text), this->shared_from_this())) {
      spdlog::warn("ipc: peer={} is not reading its replies; closing the connection",
                   session_.peer());
      close();
    }
  }

  // A write failed, or everything queued went out.
  void written(std::error_code ec) {
    if (ec || closing_) close();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    closing_ = true;
    idle_timer_.cancel();
    sessions_.remove(&session_);
    std::error_code ignored;
    socket_.shutdown(Socket::shutdown_both, ignored);
    socket_.close(ignored);
    out_.stop();
    spdlog::debug("ipc: connection closed peer={}", session_.peer());
    if (auto owner = owner_.lock()) owner->erase(this->shared_from_this());
  }

  Socket socket_;
  asio::steady_timer idle_timer_;
  std::shared_ptr<int> idle_seconds_;
  Session session_;
  const Dispatcher& dispatcher_;
  SessionRegistry& sessions_;
  std::shared_ptr<std::size_t> max_line_;
  std::weak_ptr<Set> owner_;
  std::array<char, 16384> buf_{};
  std::string line_;
  bool discarding_ = false;
  bool closing_ = false;
  bool closed_ = false;
  std::shared_ptr<const std::string> required_token_;
  WriteQueue<Socket> out_;
  bool authorised_ = false;
  std::chrono::steady_clock::time_point last_active_ = std::chrono::steady_clock::now();
};

}  // namespace

IpcServer::IpcServer(asio::io_context& io, const Dispatcher& dispatcher,
                     SessionRegistry& sessions, IpcOptions options)
    : io_(io),
      dispatcher_(dispatcher),
      sessions_(sessions),
      options_(std::move(options)),
      max_line_(std::make_shared<std::size_t>(options_.max_line_bytes)),
      idle_seconds_(std::make_shared<int>(options_.idle_seconds)),
      unix_acceptor_(io),
      tcp_acceptor_(io),
      retry_timer_(io),
      connections_(std::make_shared<std::set<std::shared_ptr<ConnectionBase>>>()) {}

void ensure_private_folder(const fs::path& dir) {
  // mkdir is atomic: either we made it (0700, ours) or whatever is there is checked.
  if (::mkdir(dir.c_str(), 0700) == 0) return;
  if (errno != EEXIST)
    throw std::runtime_error("cannot create the socket folder " + dir.string() + ": " + std::strerror(errno));
  struct stat st{};
  if (::lstat(dir.c_str(), &st) != 0)
    throw std::runtime_error("cannot inspect the socket folder " + dir.string() + ": " + std::strerror(errno));
  if (S_ISLNK(st.st_mode))
    throw std::runtime_error("the socket folder " + dir.string() + " is a symbolic link; refusing to use it");
  if (!S_ISDIR(st.st_mode))
    throw std::runtime_error("the socket folder " + dir.string() + " is not a folder");
  if (st.st_uid != ::geteuid())
    throw std::runtime_error("the socket folder " + dir.string() + " belongs to uid " +
                             std::to_string(st.st_uid) + ", not to this user; refusing to use it");
  if ((st.st_mode & 077) != 0)
    throw std::runtime_error("the socket folder " + dir.string() +
                             " is open to other users (mode " + [&] {
                               char m[8];
                               std::snprintf(m, sizeof m, "%03o", st.st_mode & 0777);
                               return std::string(m);
                             }() + "); make it 0700 or remove it");
}

IpcServer::~IpcServer() { stop(); }

void IpcServer::start() {
  const fs::path& path = options_.socket_path;
  const fs::path dir = path.parent_path();
  std::error_code ec;
  struct stat parent{};
  const bool shared_parent = !dir.empty() && ::stat(dir.parent_path().c_str(), &parent) == 0 &&
                             (parent.st_mode & S_IWOTH) != 0;
  if (shared_parent) {
    ensure_private_folder(dir);
  } else if (!dir.empty() && !fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    if (ec) throw std::runtime_error("cannot create the socket folder " + dir.string() + ": " + ec.message());
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  }
  if (fs::exists(fs::symlink_status(path, ec))) {
    asio::local::stream_protocol::socket probe(io_);
    std::error_code probe_ec;
    probe.connect(asio::local::stream_protocol::endpoint(path.string()), probe_ec);
    if (!probe_ec)
      throw std::runtime_error("another tuneloopd is already listening on " + path.string());
    fs::remove(path, ec);
    spdlog::info("ipc: removed a stale socket file path={}", path.string());
  }
  // 0600 from the first moment: no window in which another user could connect.
  const mode_t old_mask = ::umask(0177);
  try {
    unix_acceptor_.open(asio::local::stream_protocol());
    unix_acceptor_.bind(asio::local::stream_protocol::endpoint(path.string()));
    unix_acceptor_.listen(asio::socket_base::max_listen_connections);
  } catch (const std::system_error& e) {
    ::umask(old_mask);
    throw std::runtime_error("cannot listen on the socket " + path.string() + ": " + e.what());
  }
  ::umask(old_mask);
  socket_created_ = true;
  ::chmod(path.c_str(), 0600);
  spdlog::info("ipc: listening socket={}", path.string());
  accept_unix();

  if (options_.tcp_port > 0) {
    if (options_.tcp_token_file.empty())
      throw std::runtime_error("daemon.tcp_port is set but no file for its token was given");
    auto token = std::make_shared<std::string>(random_token());
    write_private(options_.tcp_token_file, *token + "\n");
    tcp_token_ = std::move(token);
    try {
      asio::ip::tcp::endpoint ep(asio::ip::address_v4::loopback(),
                                 static_cast<unsigned short>(options_.tcp_port));
      tcp_acceptor_.open(ep.protocol());
      tcp_acceptor_.set_option(asio::socket_base::reuse_address(true));
      tcp_acceptor_.bind(ep);
      tcp_acceptor_.listen(asio::socket_base::max_listen_connections);
    } catch (const std::system_error& e) {
      throw std::runtime_error("cannot listen on 127.0.0.1:" + std::to_string(options_.tcp_port) +
                               " (daemon.tcp_port): " + e.what());
    }
    spdlog::info("ipc: listening tcp=127.0.0.1:{}", tcp_port());
    accept_tcp();
  }
}

namespace {

// The uid of a Unix-socket peer, or -1 when the kernel does not say.
long peer_uid(int fd) noexcept {
  ucred cred{};
  socklen_t len = sizeof cred;
  return ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 ? static_cast<long>(cred.uid) : -1;
}

std::string peer_name(asio::local::stream_protocol::socket&) { return ""; }
std::string peer_name(asio::ip::tcp::socket& s) {
  std::error_code ignored;
  const auto remote = s.remote_endpoint(ignored);
  std::string name(1, '@');
  name.append(remote.address().to_string()).append(1, ':').append(std::to_string(remote.port()));
  return name;
}

}  // namespace

template <class Acceptor>
void IpcServer::accept_on(Acceptor& acceptor, const char* kind, void (IpcServer::*again)()) {
  using Socket = typename Acceptor::protocol_type::socket;
  acceptor.async_accept([this, &acceptor, kind, again](std::error_code ec, Socket s) {
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      spdlog::warn("ipc: {} accept failed: {}", kind, ec.message());
      // EMFILE and ENFILE come back at once while nothing is freed: wait before retrying.
      // A member, cancelled by stop(), so no wait outlives the server.
      retry_timer_.expires_after(std::chrono::milliseconds(100));
      retry_timer_.async_wait([this, again](std::error_code e) {
        if (!e && !stopped_) (this->*again)();
      });
      return;
    }
    if constexpr (std::is_same_v<Socket, asio::local::stream_protocol::socket>) {
      const long uid = peer_uid(s.native_handle());
      if (uid != static_cast<long>(::geteuid()) && uid != 0) {
        spdlog::warn("ipc: refused a connection from uid {} (not this user)", uid);
        (this->*again)();
        return;
      }
    }
    if (connections_->size() >= kMaxConnections && !make_room()) {
      spdlog::warn("ipc: {} connections open, all subscribed; refusing another {} connection",
                   connections_->size(), kind);
      (this->*again)();
      return;
    }
    const std::string name = std::string(kind) + "#" + std::to_string(++next_connection_id) + peer_name(s);
    std::shared_ptr<const std::string> token;
    if constexpr (std::is_same_v<Socket, asio::ip::tcp::socket>) token = tcp_token_;
    auto c = std::make_shared<Connection<Socket>>(std::move(s), name, dispatcher_, sessions_, max_line_,
                                                  idle_seconds_, connections_, std::move(token));
    connections_->insert(c);
    c->start();
    (this->*again)();
  });
}

// At the cap, the connection quiet for longest that is not waiting for events goes, so a
// flood of idle connections cannot lock the listener out. False if every one is subscribed.
bool IpcServer::make_room() {
  std::shared_ptr<ConnectionBase> quietest;
  for (const auto& c : *connections_) {
    if (!c->subscribed() && (!quietest || c->last_active() < quietest->last_active())) quietest = c;
  }
  if (!quietest) return false;
  quietest->evict();
  return true;
}

void IpcServer::accept_unix() { accept_on(unix_acceptor_, "unix", &IpcServer::accept_unix); }
void IpcServer::accept_tcp() { accept_on(tcp_acceptor_, "tcp", &IpcServer::accept_tcp); }

void IpcServer::stop() noexcept {
  if (stopped_) return;
  stopped_ = true;
  std::error_code ignored;
  unix_acceptor_.close(ignored);
  tcp_acceptor_.close(ignored);
  retry_timer_.cancel();
  auto copy = *connections_;
  for (auto& c : copy) c->close_after_flush();
  if (socket_created_) {
    fs::remove(options_.socket_path, ignored);
    socket_created_ = false;
  }
}

std::size_t IpcServer::connection_count() const noexcept { return connections_->size(); }

int IpcServer::tcp_port() const noexcept {
  std::error_code ec;
  if (!tcp_acceptor_.is_open()) return 0;
  return tcp_acceptor_.local_endpoint(ec).port();
}

}  // namespace tuneloop::daemon
