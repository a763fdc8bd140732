#include "daemon/ipc_server.hpp"

#include "daemon/errors.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <array>
#include <deque>
#include <stdexcept>
#include <string>
#include <system_error>

namespace tuneloop::daemon {

bool looks_like_http(std::string_view line) noexcept {
  static constexpr std::string_view kStarts[] = {"GET ", "POST ", "PUT ", "HEAD ", "DELETE ",
                                                 "OPTIONS ", "PATCH ", "CONNECT ", "TRACE ",
                                                 "Host:", "host:", "HOST:"};
  for (auto s : kStarts)
    if (line.substr(0, s.size()) == s) return true;
  return line.find(" HTTP/1.") != std::string_view::npos || line.find(" HTTP/2") != std::string_view::npos;
}


namespace fs = std::filesystem;
using nlohmann::json;

namespace {
// A subscriber that stops reading must not make the daemon buffer without bound.
constexpr std::size_t kMaxPendingOutput = 64 * 1024 * 1024;
int next_connection_id = 0;
}  // namespace

struct IpcServer::ConnectionBase {
  virtual ~ConnectionBase() = default;
  virtual void start() = 0;
  virtual void close_after_flush() = 0;
};

namespace {

template <typename Socket>
class Connection : public IpcServer::ConnectionBase,
                   public std::enable_shared_from_this<Connection<Socket>> {
 public:
  using Set = std::set<std::shared_ptr<IpcServer::ConnectionBase>>;

  Connection(Socket socket, std::string peer, const Dispatcher& dispatcher,
             SessionRegistry& sessions, std::shared_ptr<std::size_t> max_line,
             std::weak_ptr<Set> owner)
      : socket_(std::move(socket)),
        session_(std::move(peer), [this](const json& j) { send(j); }),
        dispatcher_(dispatcher),
        sessions_(sessions),
        max_line_(std::move(max_line)),
        owner_(std::move(owner)) {}

  void start() override {
    sessions_.add(&session_);
    spdlog::debug("ipc: connection opened peer={}", session_.peer());
    read();
  }

  void close_after_flush() override {
    closing_ = true;
    if (out_.empty()) close();
  }

 private:
  void read() {
    auto self = this->shared_from_this();
    socket_.async_read_some(asio::buffer(buf_), [self](std::error_code ec, std::size_t n) {
      if (ec) {
        self->close_after_flush();
        return;
      }
      self->consume(std::string_view(self->buf_.data(), n));
      if (!self->closing_) self->read();
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
      if (looks_like_http(line)) {
        // A web page's cross-protocol fetch: its body line must never run.
        spdlog::warn("ipc: an HTTP request line from peer={}; closing the connection", session_.peer());
        close();
        return;
      }
      json reply = dispatcher_.handle(std::string_view(line), session_);
      if (!reply.is_null()) send(reply);
    }
  }

  void send(const json& message) {
    if (closed_) return;
    std::string text = message.dump(-1, ' ', false, json::error_handler_t::replace);
    text.push_back('\n');
    pending_bytes_ += text.size();
    if (pending_bytes_ > kMaxPendingOutput) {
      spdlog::warn("ipc: peer={} is not reading its replies; closing the connection",
                   session_.peer());
      close();
      return;
    }
    out_.push_back(std::move(text));
    if (out_.size() == 1) write();
  }

  void write() {
    auto self = this->shared_from_this();
    asio::async_write(socket_, asio::buffer(out_.front()), [self](std::error_code ec, std::size_t) {
      if (self->closed_) return;
      if (ec) {
        self->close();
        return;
      }
      self->pending_bytes_ -= self->out_.front().size();
      self->out_.pop_front();
      if (!self->out_.empty())
        self->write();
      else if (self->closing_)
        self->close();
    });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    closing_ = true;
    sessions_.remove(&session_);
    std::error_code ignored;
    socket_.shutdown(Socket::shutdown_both, ignored);
    socket_.close(ignored);
    out_.clear();
    spdlog::debug("ipc: connection closed peer={}", session_.peer());
    if (auto owner = owner_.lock()) owner->erase(this->shared_from_this());
  }

  Socket socket_;
  Session session_;
  const Dispatcher& dispatcher_;
  SessionRegistry& sessions_;
  std::shared_ptr<std::size_t> max_line_;
  std::weak_ptr<Set> owner_;
  std::array<char, 16384> buf_{};
  std::string line_;
  bool discarding_ = false;
  std::deque<std::string> out_;
  std::size_t pending_bytes_ = 0;
  bool closing_ = false;
  bool closed_ = false;
};

}  // namespace

IpcServer::IpcServer(asio::io_context& io, const Dispatcher& dispatcher,
                     SessionRegistry& sessions, IpcOptions options)
    : io_(io),
      dispatcher_(dispatcher),
      sessions_(sessions),
      options_(std::move(options)),
      max_line_(std::make_shared<std::size_t>(options_.max_line_bytes)),
      unix_acceptor_(io),
      tcp_acceptor_(io),
      connections_(std::make_shared<std::set<std::shared_ptr<ConnectionBase>>>()) {}

IpcServer::~IpcServer() { stop(); }

void IpcServer::start() {
  const fs::path& path = options_.socket_path;
  const fs::path dir = path.parent_path();
  std::error_code ec;
  if (!dir.empty() && !fs::exists(dir, ec)) {
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

void IpcServer::accept_unix() {
  unix_acceptor_.async_accept([this](std::error_code ec, asio::local::stream_protocol::socket s) {
    if (ec) {
      if (ec != asio::error::operation_aborted && unix_acceptor_.is_open()) {
        spdlog::warn("ipc: accept failed: {}", ec.message());
        accept_unix();
      }
      return;
    }
    auto c = std::make_shared<Connection<asio::local::stream_protocol::socket>>(
        std::move(s), "unix#" + std::to_string(++next_connection_id), dispatcher_, sessions_,
        max_line_, connections_);
    connections_->insert(c);
    c->start();
    accept_unix();
  });
}

void IpcServer::accept_tcp() {
  tcp_acceptor_.async_accept([this](std::error_code ec, asio::ip::tcp::socket s) {
    if (ec) {
      if (ec != asio::error::operation_aborted && tcp_acceptor_.is_open()) {
        spdlog::warn("ipc: tcp accept failed: {}", ec.message());
        accept_tcp();
      }
      return;
    }
    std::error_code ignored;
    const auto remote = s.remote_endpoint(ignored);
    auto c = std::make_shared<Connection<asio::ip::tcp::socket>>(
        std::move(s),
        "tcp#" + std::to_string(++next_connection_id) + "@" + remote.address().to_string() + ":" +
            std::to_string(remote.port()),
        dispatcher_, sessions_, max_line_, connections_);
    connections_->insert(c);
    c->start();
    accept_tcp();
  });
}

void IpcServer::stop() noexcept {
  if (stopped_) return;
  stopped_ = true;
  std::error_code ignored;
  unix_acceptor_.close(ignored);
  tcp_acceptor_.close(ignored);
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
