#include "daemon/http_server.hpp"

#include "rpc/dispatcher.hpp"
#include "rpc/session.hpp"

#include <asio.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <map>
#include <future>
#include <mutex>
#include <stdexcept>

#ifndef TUNELOOP_UI_DIR
#define TUNELOOP_UI_DIR ""
#endif

namespace tuneloop::daemon {

namespace fs = std::filesystem;
using nlohmann::json;
using rpc::Dispatcher;
using rpc::Session;
using rpc::SessionRegistry;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kMaxUploadBytes = 512u * 1024 * 1024;
// A JSON-RPC body (a request or a batch) is refused above this, before it is read.
constexpr std::size_t kMaxRpcBytes = 1024u * 1024;
constexpr std::size_t kMaxQueuedEvents = 1000;  // a client this far behind is dropped

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string mime_type(const fs::path& file) {
  static const std::map<std::string, std::string> types = {
      {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
      {".svg", "image/svg+xml"}, {".png", "image/png"}, {".ico", "image/x-icon"},
      {".json", "application/json"}, {".txt", "text/plain; charset=utf-8"},
      {".wav", "audio/wav"}, {".flac", "audio/flac"}, {".ogg", "audio/ogg"},
      {".oga", "audio/ogg"}, {".opus", "audio/ogg"}, {".mp3", "audio/mpeg"},
      {".aiff", "audio/aiff"}, {".aif", "audio/aiff"}};
  auto it = types.find(lower(file.extension().string()));
  return it == types.end() ? "application/octet-stream" : it->second;
}

void set_text(httplib::Response& res, int status, const std::string& text) {
  res.status = status;
  res.set_content(text + "\n", "text/plain; charset=utf-8");
}

void set_json(httplib::Response& res, const json& j) {
  res.set_content(j.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

// Keeps an uploaded file's own name (songs.add records it) but nothing that could escape.
std::string safe_file_name(const std::string& name) {
  std::string base = fs::path(name).filename().string();
  std::string out;
  for (unsigned char c : base)
    out += (std::isalnum(c) || c == '.' || c == '-' || c == '_' || c == ' ' || c >= 0x80) ? char(c) : '_';
  while (!out.empty() && (out.front() == '.' || out.front() == ' ')) out.erase(out.begin());
  if (out.empty()) out = "upload";
  return out.substr(0, 200);
}

}  // namespace

// ---------------------------------------------------------------- free functions

fs::path default_ui_dir() {
  const fs::path source = TUNELOOP_UI_DIR;
  std::error_code ec;
  if (!source.empty() && fs::is_regular_file(source / "index.html", ec)) return source;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = exe.parent_path().parent_path() / "share" / "tuneloop" / "ui";
    if (fs::is_directory(installed, ec)) return installed;
  }
  return source;
}

bool is_loopback_host(std::string_view host, int port) noexcept {
  try {
    const std::string h = lower(host);
    const std::string p = ":" + std::to_string(port);
    for (const char* name : {"127.0.0.1", "localhost", "[::1]"})
      if (h == name + p) return true;
    return false;
  } catch (...) {
    return false;
  }
}

std::optional<fs::path> static_file(const fs::path& root, std::string_view url_path) {
  std::string rel(url_path);
  if (rel.empty() || rel.front() != '/') return std::nullopt;
  rel.erase(0, 1);
  if (rel.empty()) rel = "index.html";
  for (unsigned char c : rel)
    if (!(std::isalnum(c) || c == '.' || c == '-' || c == '_' || c == '/')) return std::nullopt;
  // No "..", no hidden files, no empty segments.
  for (std::size_t pos = 0; pos <= rel.size();) {
    std::size_t end = rel.find('/', pos);
    if (end == std::string::npos) end = rel.size();
    if (end == pos || rel[pos] == '.') return std::nullopt;
    pos = end + 1;
  }
  std::error_code ec;
  const fs::path base = fs::canonical(root, ec);
  if (ec) return std::nullopt;
  const fs::path file = fs::canonical(base / rel, ec);
  if (ec || !fs::is_regular_file(file, ec)) return std::nullopt;
  // A symbolic link inside the folder must not lead out of it.
  auto [a, b] = std::mismatch(base.begin(), base.end(), file.begin(), file.end());
  if (a != base.end()) return std::nullopt;
  return file;
}


// ---------------------------------------------------------------- HttpServer

// One /events client: the io thread's Session pushes into the queue, the SSE
// content provider (an httplib worker) drains it.
struct HttpServer::SseClient {
  explicit SseClient(std::string peer)
      : session(std::move(peer), [this](const json& note) noexcept { push(note); }) {}

  void push(const json& note) noexcept {
    try {
      std::lock_guard lock(mutex);
      if (queue.size() >= kMaxQueuedEvents) {
        overflowed = true;
        return;
      }
      queue.push_back(note.dump(-1, ' ', false, json::error_handler_t::replace));
    } catch (...) {
      return;
    }
    ready.notify_one();
  }

  Session session;
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<std::string> queue;
  bool overflowed = false;
};

HttpServer::HttpServer(asio::io_context& io, const Dispatcher& dispatcher, SessionRegistry& sessions,
                       TrackFileLookup track_file, StudyFileLookup study_file, HttpOptions options)
    : io_(io),
      dispatcher_(dispatcher),
      sessions_(sessions),
      track_file_(std::move(track_file)),
      study_file_(std::move(study_file)),
      options_(std::move(options)),
      server_(std::make_unique<httplib::Server>()) {
  if (options_.ui_dir.empty()) options_.ui_dir = default_ui_dir();
}

HttpServer::~HttpServer() { stop(); }

std::string HttpServer::url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/?token=" + token_;
}

template <typename F>
auto HttpServer::on_io(F f) -> std::optional<decltype(f())> {
  using R = decltype(f());
  if (stopping_) return std::nullopt;
  auto promise = std::make_shared<std::promise<R>>();
  auto future = promise->get_future();
  asio::post(io_, [this, promise, f = std::move(f)]() mutable {
    if (stopping_) return;  // the waiter has given up; do nothing on its behalf
    try {
      promise->set_value(f());
    } catch (...) {
      promise->set_exception(std::current_exception());
    }
  });
  // Polled, not awaited forever: the io thread may be the one stopping us.
  while (future.wait_for(50ms) != std::future_status::ready)
    if (stopping_) return std::nullopt;
  return future.get();
}

std::optional<json> HttpServer::call(std::function<json(Session&)> dispatch, const std::string& peer) {
  // A method that reads a file answers later (Session::defer); this worker waits for it.
  auto later = std::make_shared<std::promise<json>>();
  auto later_reply = later->get_future();
  auto session = std::make_shared<Session>(peer, [later](const json& message) {
    try {
      later->set_value(message);
    } catch (const std::future_error&) {
      // Answered already; an HTTP request has one reply.
    }
  });
  auto now = on_io([session, dispatch = std::move(dispatch)] {
    const json reply = dispatch(*session);
    return std::make_pair(reply, session->deferred_calls() > 0);
  });
  if (!now) return std::nullopt;
  if (!now->second) return now->first;
  while (later_reply.wait_for(50ms) != std::future_status::ready)
    if (stopping_) return std::nullopt;
  return later_reply.get();
}

void HttpServer::start() {
  token_ = random_token();
  fs::create_directories(options_.data_dir);
  write_private(options_.data_dir / "ui-token", token_ + "\n");

  server_->new_task_queue = [] { return new httplib::ThreadPool(16); };
  server_->set_payload_max_length(kMaxUploadBytes);
  server_->set_keep_alive_timeout(2);  // idle keep-alive connections delay stop() this long
  // A worker blocked reading a request that stalls (a slow or stopped client) waits this long
  // per read, which also bounds how long such a client delays stop().
  server_->set_read_timeout(2, 0);
  routes();
  if (options_.port == 0) {
    port_ = server_->bind_to_any_port(options_.bind);
    if (port_ <= 0) port_ = 0;
  } else if (server_->bind_to_port(options_.bind, options_.port)) {
    port_ = options_.port;
  }
  if (port_ == 0)
    throw std::runtime_error("http: cannot listen on " + options_.bind + ":" +
                             std::to_string(options_.port) + " (in use? set http.port)");
  write_private(options_.data_dir / "ui-url", url() + "\n");
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  spdlog::info("http: web player on http://127.0.0.1:{}/ (token in {}), ui={}", port_,
               (options_.data_dir / "ui-token").string(), options_.ui_dir.string());
}

void HttpServer::stop() noexcept {
  if (stopping_.exchange(true)) return;
  server_->stop();
  if (thread_.joinable()) thread_.join();
  std::error_code ec;
  if (port_ != 0) fs::remove(options_.data_dir / "ui-url", ec);
  spdlog::info("http: stopped");
}

bool HttpServer::allowed(const httplib::Request& req, httplib::Response& res) const {
  const std::string host = req.get_header_value("Host");
  const bool loopback_bind = options_.bind == "127.0.0.1" || options_.bind == "::1" ||
                             options_.bind == "localhost";
  const bool host_ok = is_loopback_host(host, port_) ||
                       (!loopback_bind && lower(host) == lower(options_.bind) + ":" + std::to_string(port_));
  if (!host_ok) {
    spdlog::warn("http: refused Host '{}' from {} (not a loopback name)", host, req.remote_addr);
    set_text(res, 403, "403 forbidden: the Host header must be 127.0.0.1:" + std::to_string(port_) +
                           " or localhost:" + std::to_string(port_));
    return false;
  }
  if (req.method == "POST" && req.path == "/rpc" && req.has_header("Content-Length")) {
    // Checked on the headers, before cpp-httplib reads the body into memory (a chunked
    // body, which has no length, is checked in serve_rpc, after the token).
    const std::string length = req.get_header_value("Content-Length");
    if (length.empty() || length.size() > 9 || length.find_first_not_of("0123456789") != std::string::npos ||
        std::stoull(length) > kMaxRpcBytes) {
      spdlog::warn("http: refused a /rpc body of Content-Length '{}' from {}", length, req.remote_addr);
      set_text(res, 413, "413 payload too large: /rpc takes at most " + std::to_string(kMaxRpcBytes) + " bytes");
      return false;
    }
  }
  // Browsers send Origin on cross-origin requests; only our own page may call us.
  if (req.has_header("Origin") && lower(req.get_header_value("Origin")) != "http://" + lower(host)) {
    spdlog::warn("http: refused Origin '{}' from {}", req.get_header_value("Origin"), req.remote_addr);
    set_text(res, 403, "403 forbidden: cross-origin requests are refused");
    return false;
  }
  // The page's own files hold no data and are served to anyone who passes the checks
  // above; everything else needs the token, as a Bearer header (fetch) or ?token= (media
  // and EventSource URLs, which cannot carry headers). No cookie: browsers would send it
  // to every server on 127.0.0.1, whatever its port.
  const bool data_route = req.path == "/rpc" || req.path == "/events" || req.path == "/upload" ||
                          req.path.rfind("/tracks/", 0) == 0 || req.path.rfind("/studies/", 0) == 0;
  const std::string auth = req.get_header_value("Authorization");
  const bool bearer = auth.rfind("Bearer ", 0) == 0;
  if (!data_route && !bearer && !req.has_param("token")) return true;
  const std::string presented = bearer ? auth.substr(7) : req.get_param_value("token");
  if (!same_token(presented, token_)) {
    res.set_header("WWW-Authenticate", "Bearer");
    set_text(res, 401,
             "401 unauthorized: open the address that `tuneloop ui` prints (it carries the access "
             "token from DATA/ui-token)");
    return false;
  }
  return true;
}

void HttpServer::routes() {
  auto& s = *server_;
  s.set_default_headers({{"X-Content-Type-Options", "nosniff"},
                         {"Referrer-Policy", "no-referrer"},
                         {"X-Frame-Options", "DENY"},
                         {"Cache-Control", "no-store"}});
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    return allowed(req, res) ? httplib::Server::HandlerResponse::Unhandled
                             : httplib::Server::HandlerResponse::Handled;
  });
  s.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("http: {} {} failed: {}", req.method, req.path, what);
    set_text(res, 500, "500 internal error: " + what);
  });
  s.Post("/rpc", [this](const httplib::Request& req, httplib::Response& res) { serve_rpc(req, res); });
  s.Get("/events", [this](const httplib::Request& req, httplib::Response& res) { serve_events(req, res); });
  s.Get(R"(/tracks/(\d{1,15})/audio)",
        [this](const httplib::Request& req, httplib::Response& res) { serve_track_audio(req, res); });
  // A study item's blinded copy, by its code: the page never learns which track it is.
  s.Get(R"(/studies/(\d{1,15})/audio/([A-Za-z0-9]{1,16}))",
        [this](const httplib::Request& req, httplib::Response& res) { serve_study_audio(req, res); });
  s.Post("/upload", [this](const httplib::Request& req, httplib::Response& res) { serve_upload(req, res); });
  s.Get(R"(/.*)", [this](const httplib::Request& req, httplib::Response& res) { serve_static(req, res); });
}

void HttpServer::serve_rpc(const httplib::Request& req, httplib::Response& res) {
  if (req.body.size() > kMaxRpcBytes)
    return set_text(res, 413, "413 payload too large: /rpc takes at most " + std::to_string(kMaxRpcBytes) + " bytes");
  const std::string peer = "http:" + req.remote_addr + ":" + std::to_string(req.remote_port);
  auto reply = call([this, body = req.body](Session& session) {
    return dispatcher_.handle(std::string_view(body), session);
  }, peer);
  if (!reply) return set_text(res, 503, "503 the daemon is shutting down");
  if (reply->is_null()) {
    res.status = 204;
    return;
  }
  set_json(res, *reply);
}

void HttpServer::serve_events(const httplib::Request& req, httplib::Response& res) {
  auto client = std::make_shared<SseClient>("sse:" + req.remote_addr + ":" + std::to_string(req.remote_port));
  const bool added = on_io([this, client] {
                       client->session.subscribe(rpc::event_names());
                       sessions_.add(&client->session);
                       return true;
                     }).value_or(false);
  if (!added) return set_text(res, 503, "503 the daemon is shutting down");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, client, first = true](std::size_t, httplib::DataSink& sink) mutable {
        if (first) {
          first = false;
          const std::string hello = "retry: 2000\n: connected\n\n";
          return sink.write(hello.data(), hello.size());
        }
        std::deque<std::string> batch;
        {
          std::unique_lock lock(client->mutex);
          // Short waits so a stopping server is noticed; a comment every 15 s finds
          // clients that went away.
          for (int i = 0; i < 60 && client->queue.empty() && !client->overflowed && !stopping_; ++i)
            client->ready.wait_for(lock, 250ms);
          if (client->overflowed || stopping_) return false;
          batch.swap(client->queue);
        }
        std::string out;
        for (const auto& note : batch) out += "data: " + note + "\n\n";
        if (out.empty()) out = ": keep-alive\n\n";
        return sink.write(out.data(), out.size());
      },
      [this, client](bool) {
        // The session must leave the registry on the io thread before it goes away.
        asio::post(io_, [this, client] { sessions_.remove(&client->session); });
      });
}

namespace {

// Whole file as the body (tracks are seconds long; a whole body lets httplib answer Range
// requests). False if it cannot be read.
bool send_audio_file(const fs::path& file, httplib::Response& res) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return false;
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  res.set_header("Accept-Ranges", "bytes");
  res.set_content(std::move(bytes), mime_type(file));
  return true;
}

}  // namespace

void HttpServer::serve_track_audio(const httplib::Request& req, httplib::Response& res) {
  const std::int64_t id = std::stoll(req.matches[1].str());
  std::optional<std::optional<fs::path>> file = on_io([this, id] { return track_file_(id); });
  if (!file) return set_text(res, 503, "503 the daemon is shutting down");
  if (!*file) return set_text(res, 404, "404 no track with id " + std::to_string(id));
  if (!send_audio_file(**file, res))
    set_text(res, 404, "404 cannot read the audio of track " + std::to_string(id));
}

void HttpServer::serve_study_audio(const httplib::Request& req, httplib::Response& res) {
  const std::int64_t id = std::stoll(req.matches[1].str());
  const std::string code = req.matches[2].str();
  std::optional<std::optional<fs::path>> file = on_io([this, id, code] { return study_file_(id, code); });
  if (!file) return set_text(res, 503, "503 the daemon is shutting down");
  const std::string what = "item " + code + " of study " + std::to_string(id);
  if (!*file) return set_text(res, 404, "404 no " + what);
  if (!send_audio_file(**file, res)) set_text(res, 404, "404 cannot read the audio of " + what);
}

void HttpServer::serve_upload(const httplib::Request& req, httplib::Response& res) {
  if (!req.is_multipart_form_data() || req.files.empty())
    return set_text(res, 400, "400 expected multipart/form-data with one or more files");
  const fs::path uploads = options_.data_dir / "uploads";
  fs::create_directories(uploads);
  std::string pattern = (uploads / "upload-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) return set_text(res, 500, "500 cannot create a folder in " + uploads.string());
  const fs::path dir = pattern;
  json results = json::array();
  for (const auto& [field, file] : req.files) {
    const fs::path tmp = dir / safe_file_name(file.filename);
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out.write(file.content.data(), static_cast<std::streamsize>(file.content.size()));
      if (!out) {
        results.push_back({{"file", file.filename}, {"error", {{"code", -32003}, {"message", "cannot write " + tmp.string()}}}});
        continue;
      }
    }
    json request = {{"jsonrpc", "2.0"}, {"id", 1}, {"method", "songs.add"}, {"params", {{"path", tmp.string()}}}};
    const std::string peer = "http:" + req.remote_addr + ":" + std::to_string(req.remote_port);
    auto reply = call([this, request](Session& session) { return dispatcher_.handle(request, session); },
                      peer);
    std::error_code ec;
    fs::remove(tmp, ec);
    if (!reply) {
      fs::remove_all(dir, ec);
      return set_text(res, 503, "503 the daemon is shutting down");
    }
    json r = {{"file", file.filename}};
    if (reply->contains("error")) r["error"] = (*reply)["error"];
    else r["song"] = (*reply)["result"];
    results.push_back(r);
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  set_json(res, {{"results", results}});
}

void HttpServer::serve_static(const httplib::Request& req, httplib::Response& res) {
  const auto file = static_file(options_.ui_dir, req.path);
  if (!file) return set_text(res, 404, "404 not found: " + req.path);
  std::ifstream in(*file, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  res.set_header("Content-Security-Policy",
                 "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; "
                 "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                 "form-action 'self'");
  res.set_content(std::move(bytes), mime_type(*file));
}

}  // namespace tuneloop::daemon
