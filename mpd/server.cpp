#include "mpd/server.hpp"

#include "rpc/http_lines.hpp"
#include "rpc/write_queue.hpp"
#include "mpd/client_state.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <stdexcept>
#include <string_view>
#include <system_error>

namespace tuneloop::mpd {

using nlohmann::json;

namespace {
// MPD's max_output_buffer_size: a client that stops reading is dropped, not buffered for.
constexpr std::size_t kMaxPendingOutput = 8 * 1024 * 1024;
// How often a connection waiting in `idle` has the daemon looked at for changes it
// announces no event for (a volume set, a track queued over JSON-RPC).
constexpr std::chrono::seconds kPollInterval{1};
}  // namespace

class MpdServer::Connection : public std::enable_shared_from_this<MpdServer::Connection> {
 public:
  Connection(MpdServer& server, asio::ip::tcp::socket socket, std::string peer)
      : server_(server),
        socket_(std::move(socket)),
        timer_(server.io_),
        state_(server.shared_, std::move(peer)),
        out_(socket_, kMaxPendingOutput, [this](std::error_code ec) { written(ec); }) {}

  void start() {
    spdlog::debug("mpd: connection opened peer={}", state_.peer());
    send(std::string(kGreeting));
    arm_timer();
    read();
  }

  void raise(unsigned flags) {
    if (closed_) return;
    std::string answer = state_.raise(flags);
    if (answer.empty()) return;
    send(std::move(answer));
    arm_timer();
  }

  bool idle_waiting() const noexcept { return !closed_ && state_.idle_waiting(); }

  void close_after_flush() {
    closing_ = true;
    if (out_.empty()) close();
  }

 private:
  void read() {
    auto self = shared_from_this();
    socket_.async_read_some(asio::buffer(buf_), [self](std::error_code ec, std::size_t n) {
      if (self->closed_) return;
      if (ec) {
        self->close_after_flush();
        return;
      }
      self->consume(std::string_view(self->buf_.data(), n));
      if (!self->closing_) self->read();
    });
  }

  // Splits the bytes into lines and answers each in order, as MPD reads its buffer.
  void consume(std::string_view data) {
    while (!data.empty() && !closing_) {
      const auto nl = data.find('\n');
      if (nl == std::string_view::npos) {
        line_.append(data);
        if (line_.size() >= kMaxLineBytes) return too_long();
        break;
      }
      line_.append(data.substr(0, nl));
      data.remove_prefix(nl + 1);
      if (line_.size() + 1 > kMaxLineBytes) return too_long();
      std::string line;
      line.swap(line_);
      if (rpc::looks_like_http(line)) {
        // A web page's cross-protocol request: nothing it sends may run.
        spdlog::warn("mpd: an HTTP request line from peer={}; closing the connection", state_.peer());
        close();
        return;
      }
      ClientState::Outcome o = state_.on_line(line);
      if (!o.reply.empty()) send(std::move(o.reply));
      if (closed_) return;
      if (o.after == ClientState::After::close_now) {
        close();
        return;
      }
      if (o.after == ClientState::After::close_after_flush) {
        close_after_flush();
        return;
      }
    }
    arm_timer();
    if (state_.idle_waiting()) server_.poll_while_idle();
  }

  void too_long() {
    // MPD's input buffer is full: it drops the connection ("Input buffer is full").
    spdlog::warn("mpd: a request line of {} bytes or more from peer={}; closing the connection",
                 kMaxLineBytes, state_.peer());
    close();
  }

  void send(std::string text) {
    if (closed_) return;
    if (!out_.push(std::move(text), shared_from_this())) {
      spdlog::warn("mpd: peer={} is not reading its replies; closing the connection", state_.peer());
      close();
    }
  }

  // A write failed, or everything queued went out.
  void written(std::error_code ec) {
    if (ec || closing_) close();
  }

  // MPD's connection_timeout: a silent connection is closed, one waiting in idle is not.
  void arm_timer() {
    if (closed_) return;
    if (state_.idle_waiting()) {
      timer_.cancel();
      return;
    }
    timer_.expires_after(server_.options_.timeout);
    auto self = shared_from_this();
    timer_.async_wait([self](std::error_code ec) {
      if (ec || self->closed_ || self->state_.idle_waiting()) return;
      spdlog::info("mpd: peer={} silent for {} s; closing the connection", self->state_.peer(),
                   self->server_.options_.timeout.count());
      self->close();
    });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    closing_ = true;
    auto self = shared_from_this();  // the server's set may hold the last reference
    std::error_code ignored;
    timer_.cancel();
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    out_.stop();
    spdlog::debug("mpd: connection closed peer={}", state_.peer());
    server_.forget(self);
  }

  MpdServer& server_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  ClientState state_;
  std::array<char, 16384> buf_{};
  std::string line_;
  rpc::WriteQueue<asio::ip::tcp::socket> out_;
  bool closing_ = false;
  bool closed_ = false;
};

MpdServer::MpdServer(asio::io_context& io, const rpc::Dispatcher& dispatcher,
                     rpc::SessionRegistry& sessions, MpdOptions options)
    : io_(io),
      sessions_(sessions),
      options_(std::move(options)),
      shared_(dispatcher, options_.password),
      hub_("mpd-events", [this](const json& n) { on_event(n); }),
      hub_view_(dispatcher, hub_),
      acceptor_(io),
      poll_timer_(io),
      retry_timer_(io) {}

MpdServer::~MpdServer() { stop(); }

void MpdServer::start() {
  std::error_code ec;
  const asio::ip::address address = asio::ip::make_address(options_.bind, ec);
  if (ec) throw std::runtime_error("mpd.bind '" + options_.bind + "' is not an IP address");
  if (!address.is_loopback() && options_.password.empty())
    throw std::runtime_error("mpd.bind " + options_.bind +
                             " is not a loopback address and mpd.password is empty: MPD has no "
                             "other access control, so it is not served beyond this machine "
                             "without a password");
  const asio::ip::tcp::endpoint endpoint(address, static_cast<unsigned short>(options_.port));
  try {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
  } catch (const std::system_error& e) {
    std::error_code ignored;
    acceptor_.close(ignored);
    throw std::runtime_error("cannot listen on " + options_.bind + ":" +
                             std::to_string(options_.port) + " (mpd.port): " + e.what());
  }
  if (!address.is_loopback())
    spdlog::warn("mpd: serving on {} (not loopback), protected by mpd.password only", options_.bind);

  shared_.raise = [this](unsigned flags) { raise(flags); };
  shared_.check_soon = [this] { check_soon(); };
  hub_.subscribe(rpc::event_names());
  sessions_.add(&hub_);
  hub_registered_ = true;
  check();  // the first look, against which later changes are told
  spdlog::info("mpd: listening tcp={}:{}", options_.bind, port());
  accept();
}

void MpdServer::accept() {
  acceptor_.async_accept([this](std::error_code ec, asio::ip::tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
      spdlog::warn("mpd: accept failed: {}", ec.message());
      // EMFILE and ENFILE come back at once while nothing is freed: wait before retrying.
      retry_timer_.expires_after(std::chrono::milliseconds(100));
      retry_timer_.async_wait([this](std::error_code e) {
        if (!e && !stopped_) accept();
      });
      return;
    }
    std::error_code ignored;
    const auto remote = socket.remote_endpoint(ignored);
    const std::string peer = "mpd#" + std::to_string(++next_id_) + "@" +
                             remote.address().to_string() + ":" + std::to_string(remote.port());
    if (connections_.size() >= options_.max_connections) {
      spdlog::warn("mpd: {} connections already; refusing peer={}", connections_.size(), peer);
      socket.close(ignored);
    } else {
      auto c = std::make_shared<Connection>(*this, std::move(socket), peer);
      connections_.insert(c);
      c->start();
    }
    accept();
  });
}

// The daemon's events as MPD idle subsystems.
void MpdServer::on_event(const json& notification) {
  const std::string event = notification.value("method", std::string());
  const json params = notification.contains("params") ? notification.at("params") : json::object();
  unsigned flags = 0;
  if (event == "track.started" || event == "state.changed") flags |= idle::player;
  if (event == "track.ended") flags |= idle::player | idle::sticker;  // playCount moved
  if (event == "rating.recorded") flags |= idle::sticker;
  if (event == "iteration.ready") {
    shared_.library.invalidate();
    flags |= idle::database | idle::update;
  }
  if (event == "state.changed" && params.is_object() && params.contains("reason")) {
    shared_.library.invalidate();  // a config reload or a deleted listener
    flags |= idle::database;
  }
  raise(flags);
  check_soon();
}

void MpdServer::raise(unsigned flags) {
  if (flags == 0) return;
  // A copy: answering may close a connection, which removes it from the set.
  const auto targets = connections_;
  for (const auto& c : targets) c->raise(flags);
}

void MpdServer::check_soon() {
  if (check_pending_ || stopped_) return;
  check_pending_ = true;
  // Posted, so the look happens after the command or event that asked for it is done.
  asio::post(io_, [this] {
    check_pending_ = false;
    check();
  });
}

void MpdServer::check() noexcept {
  if (stopped_) return;
  try {
    look_now(shared_, hub_view_);
  } catch (const std::exception& e) {
    spdlog::debug("mpd: cannot look at the player: {}", e.what());
  } catch (...) {
  }
}

void MpdServer::poll_while_idle() {
  if (polling_ || stopped_) return;
  polling_ = true;
  poll_timer_.expires_after(kPollInterval);
  poll_timer_.async_wait([this](std::error_code ec) {
    polling_ = false;
    if (ec || stopped_) return;
    bool anyone_idle = false;
    for (const auto& c : connections_) anyone_idle = anyone_idle || c->idle_waiting();
    if (!anyone_idle) return;
    check();
    poll_while_idle();
  });
}

void MpdServer::stop() noexcept {
  if (stopped_) return;
  stopped_ = true;
  std::error_code ignored;
  acceptor_.close(ignored);
  poll_timer_.cancel();
  retry_timer_.cancel();
  if (hub_registered_) {
    sessions_.remove(&hub_);
    hub_registered_ = false;
  }
  shared_.raise = nullptr;
  shared_.check_soon = nullptr;
  const auto copy = connections_;
  for (const auto& c : copy) c->close_after_flush();
}

int MpdServer::port() const noexcept {
  std::error_code ec;
  if (!acceptor_.is_open()) return 0;
  const auto ep = acceptor_.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

}  // namespace tuneloop::mpd
