#include "client/client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tuneloop::client {

using nlohmann::json;

std::string not_running_message(const std::filesystem::path& socket) {
  return "tuneloopd is not running (no socket at " + socket.string() +
         ") — start it with `bash scripts/run.sh` or `tuneloopd`";
}

Client Client::connect_unix(const std::filesystem::path& socket) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string p = socket.string();
  if (p.size() >= sizeof addr.sun_path)
    throw NotRunningError("socket path too long: " + p);
  std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket(): ") + std::strerror(errno));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw NotRunningError(not_running_message(socket));
  }
  // Another user could have put a listener at a socket path in a shared folder.
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid != ::geteuid() &&
      cred.uid != 0) {
    ::close(fd);
    throw std::runtime_error("refusing " + p + ": it is served by uid " + std::to_string(cred.uid) +
                             ", not by this user");
  }
  return Client(fd);
}

Client Client::connect_tcp(int port, const std::string& token) {
  Client client = connect_tcp_unauthorised(port);
  client.call("auth", {{"token", token}});
  return client;
}

Client Client::connect_tcp_unauthorised(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket(): ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw NotRunningError("tuneloopd is not listening on 127.0.0.1:" + std::to_string(port));
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return Client(fd);
}

Client::Client(Client&& o) noexcept
    : fd_(o.fd_), next_id_(o.next_id_), timeout_ms_(o.timeout_ms_),
      buffer_(std::move(o.buffer_)), pending_(std::move(o.pending_)) {
  o.fd_ = -1;
}

Client& Client::operator=(Client&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
    next_id_ = o.next_id_;
    timeout_ms_ = o.timeout_ms_;
    buffer_ = std::move(o.buffer_);
    pending_ = std::move(o.pending_);
  }
  return *this;
}

Client::~Client() {
  if (fd_ >= 0) ::close(fd_);
}

void Client::send_raw(const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("tuneloopd connection: send failed: ") + std::strerror(errno));
    }
    done += static_cast<std::size_t>(n);
  }
}

std::optional<std::string> Client::read_line(int timeout_ms) {
  for (;;) {
    if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    pollfd p{fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, timeout_ms);
    if (r == 0) return std::nullopt;
    if (r < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("tuneloopd connection: poll failed: ") + std::strerror(errno));
    }
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("tuneloopd connection: read failed: ") + std::strerror(errno));
    }
    if (n == 0) throw std::runtime_error("tuneloopd closed the connection");
    buffer_.append(buf, static_cast<std::size_t>(n));
  }
}

std::optional<json> Client::next_message(int timeout_ms) {
  if (!pending_.empty()) {
    json j = std::move(pending_.front());
    pending_.erase(pending_.begin());
    return j;
  }
  auto line = read_line(timeout_ms);
  if (!line) return std::nullopt;
  return json::parse(*line);
}

json Client::request(const std::string& method, const json& params) {
  const std::int64_t id = next_id_++;
  json req = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.is_null()) req["params"] = params;
  send_raw(req.dump() + "\n");
  for (;;) {
    auto line = read_line(timeout_ms_);
    if (!line) throw std::runtime_error("tuneloopd did not answer '" + method + "' in time");
    json msg = json::parse(*line);
    if (msg.is_object() && msg.contains("id") && msg["id"] == id) return msg;
    if (msg.is_object() && !msg.contains("id")) pending_.push_back(std::move(msg));
  }
}

json Client::call(const std::string& method, const json& params) {
  json reply = request(method, params);
  if (reply.contains("error")) {
    const json& e = reply["error"];
    throw CallError(e.value("code", 0), e.value("message", std::string("error")),
                    e.contains("data") ? e["data"] : json());
  }
  return reply["result"];
}

}  // namespace tuneloop::client
