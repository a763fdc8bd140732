#pragma once
// The web player's HTTP side (cpp-httplib): JSON-RPC over `POST /rpc`, events as
// Server-Sent Events on `GET /events`, the UI's static files, a track's audio for
// in-browser playback, and song uploads. docs/ui.md describes it.
//
// httplib answers on its own thread pool; every call into the dispatcher, the store or
// the session registry is posted to the io thread and awaited there, because the io
// thread owns all store writes. Every request must carry a loopback Host header, and every
// one for data the access token (written to DATA/ui-token, mode 0600), so neither other
// local users nor a web page from elsewhere (DNS rebinding, cross-site requests) can drive
// the daemon.

#include "daemon/secrets.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace asio {
class io_context;
}

namespace tuneloop::rpc {
class Dispatcher;
class SessionRegistry;
class Session;
}  // namespace tuneloop::rpc

namespace tuneloop::daemon {

struct HttpOptions {
  std::string bind = "127.0.0.1";
  int port = 8754;                 // 0 = any free port (the chosen one goes to DATA/ui-url)
  std::filesystem::path ui_dir;    // static files; empty = default_ui_dir()
  std::filesystem::path data_dir;  // ui-token, ui-url, uploads/
};

/// The shipped UI folder: the source tree's ui/ (TUNELOOP_UI_DIR) if it exists, else
/// <prefix>/share/tuneloop/ui next to the running executable.
std::filesystem::path default_ui_dir();

/// True if a Host header value names this machine's loopback on `port`:
/// 127.0.0.1:port, localhost:port or [::1]:port (case-insensitive).
bool is_loopback_host(std::string_view host, int port) noexcept;

/// The file under `root` that a URL path names, or nullopt for anything that could
/// leave it (.., hidden names, odd characters, links out) or does not exist.
std::optional<std::filesystem::path> static_file(const std::filesystem::path& root,
                                                 std::string_view url_path);

/// Looks up the audio file of a track of the current listener; runs on the io thread.
using TrackFileLookup = std::function<std::optional<std::filesystem::path>(std::int64_t track_id)>;
/// Looks up the blinded audio copy of a study item, by study id and the item's code, for a
/// study of the current listener; runs on the io thread.
using StudyFileLookup =
    std::function<std::optional<std::filesystem::path>(std::int64_t study_id, const std::string& code)>;

class HttpServer {
 public:
  /// Nothing is bound until start(). `dispatcher` and `sessions` belong to the io thread.
  HttpServer(asio::io_context& io, const rpc::Dispatcher& dispatcher,
             rpc::SessionRegistry& sessions, TrackFileLookup track_file, StudyFileLookup study_file,
             HttpOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Writes a fresh token to DATA/ui-token (0600), binds and starts serving on a thread.
  /// Throws std::runtime_error if the address cannot be bound or the token not written.
  void start();
  /// Stops serving and waits for the server thread; safe to call from the io thread
  /// (pending calls give up with 503 instead of waiting for it). Idempotent.
  void stop() noexcept;

  int port() const noexcept { return port_; }
  const std::string& token() const noexcept { return token_; }
  /// http://127.0.0.1:PORT/?token=TOKEN
  std::string url() const;

 private:
  struct SseClient;

  void routes();
  bool allowed(const httplib::Request& req, httplib::Response& res) const;
  void serve_rpc(const httplib::Request& req, httplib::Response& res);
  void serve_events(const httplib::Request& req, httplib::Response& res);
  void serve_track_audio(const httplib::Request& req, httplib::Response& res);
  void serve_study_audio(const httplib::Request& req, httplib::Response& res);
  void serve_upload(const httplib::Request& req, httplib::Response& res);
  void serve_static(const httplib::Request& req, httplib::Response& res);

  /// Runs `f` on the io thread and waits; nullopt if the server is stopping.
  template <typename F>
  auto on_io(F f) -> std::optional<decltype(f())>;
  /// Runs `dispatch` on the io thread with a session of this request and waits for the
  /// reply, also one a method gives later; null json for nothing to send (notifications);
  /// nullopt if the server is stopping.
  std::optional<nlohmann::json> call(std::function<nlohmann::json(rpc::Session&)> dispatch,
                                     const std::string& peer);

  asio::io_context& io_;
  const rpc::Dispatcher& dispatcher_;
  rpc::SessionRegistry& sessions_;
  TrackFileLookup track_file_;
  StudyFileLookup study_file_;
  HttpOptions options_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string token_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
};

}  // namespace tuneloop::daemon
