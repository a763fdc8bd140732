#include "daemon/daemon.hpp"
#include "daemon/methods/loop.hpp"
#include "daemon/methods/study.hpp"

#include "rpc/errors.hpp"
#include "daemon/daemon_helpers.hpp"
#include "daemon/export_folder.hpp"
#include "audio/audio.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace tuneloop::daemon {

namespace fs = std::filesystem;
using nlohmann::json;
using rpc::ErrorCode;
using rpc::RpcError;
using namespace detail;

namespace {


// Lines of the YAML form that differ between two configs, for the SIGHUP log.
std::vector<std::string> changed_lines(const config::Config& a, const config::Config& b) {
  auto lines = [](const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    std::string section, line;
    auto trim = [](std::string t) {
      const auto b = t.find_first_not_of(' '), e = t.find_last_not_of(' ');
      return b == std::string::npos ? std::string() : t.substr(b, e - b + 1);
    };
    while (std::getline(in, line)) {
      if (auto hash = line.find(" #"); hash != std::string::npos) line.resize(hash);
      if (trim(line).empty() || line[0] == '#') continue;
      if (line[0] != ' ' && line.back() == ':')
        section = line.substr(0, line.size() - 1) + ".";
      else
        out.push_back(section + trim(line));
    }
    return out;
  };
  auto la = lines(config::to_yaml(a)), lb = lines(config::to_yaml(b));
  std::set<std::string> sa(la.begin(), la.end());
  std::vector<std::string> changed;
  for (const auto& l : lb)
    if (!sa.count(l)) changed.push_back(l);
  return changed;
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.flush();
  if (!out)
    throw RpcError(ErrorCode::storage_error, "cannot write " + path.string());
}

std::string csv_field(const json& v) {
  std::string s = v.is_string() ? v.get<std::string>() : v.is_null() ? "" : v.dump();
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string to_csv(const json& rows) {
  if (rows.empty()) return "";
  std::vector<std::string> cols;
  for (const auto& [k, v] : rows[0].items()) cols.push_back(k);
  std::string out;
  for (std::size_t i = 0; i < cols.size(); ++i) {
    if (i) out += ',';
    out += cols[i];
  }
  out += "\n";
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < cols.size(); ++i) {
      if (i) out += ',';
      out += csv_field(r.contains(cols[i]) ? r[cols[i]] : json());
    }
    out += "\n";
  }
  return out;
}


}  // namespace

spdlog::level::level_enum to_spdlog(config::LogLevel l) {
  switch (l) {
    case config::LogLevel::trace: return spdlog::level::trace;
    case config::LogLevel::debug: return spdlog::level::debug;
    case config::LogLevel::info: return spdlog::level::info;
    case config::LogLevel::warn: return spdlog::level::warn;
    case config::LogLevel::error: return spdlog::level::err;
  }
  return spdlog::level::info;
}

// Rows whose audio is gone (deleted by hand, a disk restored from an old backup) are
// reported once at start, each with its id and path, so a listener learns why a track will
// not play before asking it to.
void Daemon::report_missing_files() {
  int rows = 0, missing = 0;
  auto check = [&](const char* kind, std::int64_t id, const std::string& listener,
                   const std::string& path) {
    ++rows;
    std::error_code ec;
    if (fs::is_regular_file(path, ec)) return;
    ++missing;
    spdlog::warn("store: {} {} of listener '{}' names a missing file: {}", kind, id, listener, path);
  };
  for (const auto& listener : store_->listeners()) {
    for (const auto& t : store_->tracks(listener.id)) check("track", t.id, listener.name, t.path);
    for (const auto& s : store_->songs(listener.id)) check("song", s.id, listener.name, s.path);
  }
  if (missing > 0)
    spdlog::warn("store: {} of {} tracks and songs name files that are missing", missing, rows);
  else
    spdlog::info("store: the files of all {} tracks and songs are there", rows);
}

config::Config load_effective_config(const DaemonOverrides& o) {
  config::LoadOptions lo;
  lo.config_file = o.config_file;
  lo.data_dir = o.data_dir;
  config::Config c = config::load_config(lo);
  if (o.socket) c.paths.socket = fs::absolute(*o.socket);
  if (o.log_level) c.daemon.log_level = *o.log_level;
  return c;
}

Daemon::Daemon(config::Config config, DaemonOverrides overrides)
    : config_(std::move(config)),
      overrides_(std::move(overrides)),
      signals_(io_, SIGINT, SIGTERM, SIGHUP),
      checkpoint_timer_(io_) {
  const fs::path data = config_.paths.data_dir;
  fs::create_directories(data / "songs");
  store_.emplace(store::Store::open((data / "tuneloop.db").string()));
  const int dangling = store_->close_dangling_plays();
  if (dangling > 0)
    spdlog::warn("store: closed {} play(s) left open by an earlier crash as interrupted", dangling);
  listener_id_ = store_->ensure_listener(config_.daemon.listener).id;
  spdlog::info("store: open db={} listener={} id={}", store_->path(), config_.daemon.listener,
               listener_id_);
  report_missing_files();

  register_commands();
  start_loop();
  dispatcher_.set_observer([](const std::string& method, const json& reply, long us) {
    if (reply.is_object() && reply.contains("error"))
      spdlog::info("ipc: method={} error={} us={}", method.empty() ? "?" : method,
                   reply["error"].value("message", ""), us);
    else
      spdlog::debug("ipc: method={} ok us={}", method, us);
  });
  open_player();
  fill_queue();

  server_ = std::make_unique<IpcServer>(
      io_, dispatcher_, sessions_,
      IpcOptions{config_.paths.socket, config_.daemon.tcp_port,
                 fs::path(config_.paths.data_dir) / "tcp-token", config_.daemon.max_line_bytes,
                 config_.daemon.idle_seconds});
  server_->start();
  start_http();
  start_mpd();
}

// The web player is optional: a taken port is logged and the daemon serves on without it.
void Daemon::start_http() {
  if (!config_.http.enabled) return;
  HttpOptions o{config_.http.bind, config_.http.port, config_.paths.ui_dir, config_.paths.data_dir};
  auto track_file = [this](std::int64_t id) -> std::optional<fs::path> {
    auto t = store_->get_track(id);
    if (!t || t->listener_id != listener_id_) return std::nullopt;
    return fs::path(t->path);
  };
  auto study_file = [this](std::int64_t study_id, const std::string& code) -> std::optional<fs::path> {
    auto study = store_->get_study(study_id);
    if (!study || study->listener_id != listener_id_) return std::nullopt;
    for (const auto& item : store_->study_items(study_id))
      if (item.code == code) return fs::path(item.blinded_path);
    return std::nullopt;
  };
  http_ = std::make_unique<HttpServer>(io_, dispatcher_, sessions_, track_file, study_file, o);
  try {
    http_->start();
  } catch (const std::exception& e) {
    spdlog::error("http: web player off: {}", e.what());
    http_.reset();
  }
}

// The MPD door (docs/mpd.md) is optional too: a port taken by a real mpd is logged and the
// daemon serves on without it.
void Daemon::start_mpd() {
  if (config_.mpd.port == 0) return;
  mpd::MpdOptions o;
  o.bind = config_.mpd.bind;
  o.port = config_.mpd.port;
  o.password = config_.mpd.password;
  mpd_ = std::make_unique<mpd::MpdServer>(io_, dispatcher_, sessions_, o);
  try {
    mpd_->start();
  } catch (const std::exception& e) {
    spdlog::error("mpd: MPD door off: {}", e.what());
    mpd_.reset();
  }
}

Daemon::~Daemon() {
  // Stop the player before anything it posts to goes away.
  player_.reset();
}

int Daemon::run() {
  wait_for_signals();
  schedule_checkpoint();
  loop_->start();
  spdlog::info("daemon: ready pid={} protocol={}", ::getpid(), kProtocolVersion);
  io_.run();
  stopped_->store(true);
  spdlog::info("daemon: stopped");
  return 0;
}

void Daemon::open_player() {
  player::PlayerOptions po;
  po.output = std::string(config::to_string(config_.audio.output));
  po.sample_rate = config_.audio.sample_rate;
  po.device = config_.audio.device;
  po.buffer_frames = config_.audio.buffer_frames;
  po.ring_seconds = config_.audio.ring_seconds;
  po.skip_fraction = config_.feedback.skip_fraction;
  player::PlayerEvents ev;
  // The player calls these from its own thread; the io thread does the work.
  ev.on_progress = [this](const player::PlayProgress& p) {
    asio::post(io_, [this, p] { on_progress(p); });
  };
  ev.on_ended = [this](const player::PlayEnded& e) {
    asio::post(io_, [this, e] { on_ended(e); });
  };
  ev.on_state = [this](player::State s) { asio::post(io_, [this, s] { on_state(s); }); };
  try {
    player_ = std::make_unique<player::Player>(po, ev);
  } catch (const std::exception& e) {
    spdlog::error("audio: cannot open output={} ({}); serving without playback", po.output,
                  e.what());
    po.output = "none";
    player_ = std::make_unique<player::Player>(po, ev);
    player_message_ = e.what();
  }
  player_->set_volume(config_.audio.volume);
  if (player_->available()) {
    spdlog::info("audio: output={} device={} rate={}", po.output, player_->device_description(),
                 player_->device_rate());
  } else {
    if (player_message_.empty()) player_message_ = player_->status_message();
    if (player_message_.empty()) player_message_ = "audio.output is none";
    spdlog::warn("audio: no audio device ({}); playback methods answer -32005, listen.report "
                 "still works",
                 player_message_);
  }
}

void Daemon::fill_queue() {
  std::vector<store::Track> all = store_->tracks(listener_id_);  // newest first
  std::vector<player::PlayQueue::TrackId> ids;
  auto active = store_->active_iteration(listener_id_);
  if (active)
    for (auto it = all.rbegin(); it != all.rend(); ++it)
      if (it->iteration_id == active->id) ids.push_back(it->id);
  for (auto it = all.rbegin(); it != all.rend(); ++it)
    if (!active || it->iteration_id != active->id) ids.push_back(it->id);
  queue_.set_upcoming(std::move(ids));
}

void Daemon::wait_for_signals() {
  signals_.async_wait([this](std::error_code ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      reload_config();
      wait_for_signals();
      return;
    }
    shutdown(sig == SIGINT ? "SIGINT" : "SIGTERM");
  });
}

void Daemon::reload_config() {
  config::Config fresh;
  try {
    fresh = load_effective_config(overrides_);
  } catch (const std::exception& e) {
    spdlog::error("config: reload refused, keeping the running config: {}", e.what());
    return;
  }
  const auto changed = changed_lines(config_, fresh);
  if (changed.empty()) {
    spdlog::info("config: reloaded, nothing changed");
    return;
  }
  for (const auto& l : changed) spdlog::info("config: changed {}", l);
  auto needs_restart = [](bool differs, const char* key) {
    if (differs) spdlog::warn("config: {} takes effect after a restart", key);
  };
  needs_restart(fresh.paths != config_.paths, "paths.*");
  needs_restart(fresh.daemon.tcp_port != config_.daemon.tcp_port, "daemon.tcp_port");
  needs_restart(fresh.daemon.listener != config_.daemon.listener, "daemon.listener");
  needs_restart(fresh.http != config_.http, "http.*");
  needs_restart(fresh.mpd != config_.mpd, "mpd.*");
  auto a = fresh.audio, b = config_.audio;
  a.volume = b.volume;
  a.checkpoint_seconds = b.checkpoint_seconds;
  needs_restart(a != b, "audio.output/sample_rate/device/buffer_frames/ring_seconds");
  spdlog::set_level(to_spdlog(fresh.daemon.log_level));
  server_->set_max_line_bytes(fresh.daemon.max_line_bytes);
  server_->set_idle_seconds(fresh.daemon.idle_seconds);
  if (fresh.audio.volume != config_.audio.volume) player_->set_volume(fresh.audio.volume);
  // Keep what only a restart can change, take the rest.
  fresh.paths = config_.paths;
  fresh.daemon.tcp_port = config_.daemon.tcp_port;
  fresh.daemon.listener = config_.daemon.listener;
  fresh.http = config_.http;
  fresh.mpd = config_.mpd;
  config_ = fresh;
  publish("state.changed", {{"state", player::to_string(state_)}, {"reason", "config reloaded"}});
}

void Daemon::schedule_checkpoint() {
  const double s = std::max(0.1, config_.audio.checkpoint_seconds);
  checkpoint_timer_.expires_after(std::chrono::milliseconds(static_cast<long>(s * 1000)));
  checkpoint_timer_.async_wait([this](std::error_code ec) {
    if (ec || stopping_) return;
    checkpoint();
    schedule_checkpoint();
  });
}

void Daemon::checkpoint() noexcept {
  for (auto& [token, r] : plays_) {
    if (r.seconds_heard <= r.last_checkpoint) continue;
    try {
      store_->update_play_progress(r.play_id, r.seconds_heard);
      r.last_checkpoint = r.seconds_heard;
    } catch (const std::exception& e) {
      spdlog::error("store: checkpoint of play {} failed: {}", r.play_id, e.what());
    }
  }
}

void Daemon::publish(const std::string& event, const json& params) {
  sessions_.publish(event, params);
  if (event == "rating.recorded" && loop_) loop_->on_rating();
}

namespace {
// How long a shutdown may take before the daemon exits anyway.
constexpr int kShutdownDeadlineSeconds = 5;
}  // namespace

void Daemon::shutdown(const std::string& why) {
  if (stopping_) return;
  stopping_ = true;
  spdlog::info("daemon: shutting down ({})", why);
  std::error_code ignored;
  // Clearing the set gives SIGINT and SIGTERM back their default action: a second signal
  // ends the process at once, whatever the shutdown is waiting for.
  signals_.clear(ignored);
  // Every acknowledged rating and listen is committed by now; a peer that never reads or
  // a half-sent HTTP request must not keep the daemon (and its lock) alive.
  std::thread([stopped = stopped_] {
    std::this_thread::sleep_for(std::chrono::seconds(kShutdownDeadlineSeconds));
    if (stopped->load()) return;
    spdlog::error("daemon: shutdown still not finished after {} s; exiting now", kShutdownDeadlineSeconds);
    spdlog::default_logger()->flush();
    std::_Exit(1);
  }).detach();
  if (current_token_) {
    if (auto p = player_->progress(); p && p->token == *current_token_) {
      auto& r = plays_[*current_token_];
      r.seconds_heard = std::max(r.seconds_heard, p->seconds_heard);
    }
  }
  for (auto& [token, r] : plays_) {
    try {
      store_->finish_play(r.play_id, store::now_ms(), r.seconds_heard, r.duration,
                          store::EndReason::interrupted);
      spdlog::info("play: ended play={} track={} heard={:.2f} reason=interrupted", r.play_id,
                   r.track_id, r.seconds_heard);
    } catch (const std::exception& e) {
      spdlog::error("store: cannot finish play {}: {}", r.play_id, e.what());
    }
  }
  plays_.clear();
  current_token_.reset();
  player_->stop(player::EndReason::interrupted);
  if (loop_) loop_->stop();  // a running fine-tune checkpoints; its job resumes at the next start
  checkpoint_timer_.cancel();
  server_->stop();
  if (http_) http_->stop();
  if (mpd_) mpd_->stop();
}

// ---------------------------------------------------------------- player events

void Daemon::on_progress(const player::PlayProgress& p) {
  auto it = plays_.find(p.token);
  if (it == plays_.end()) return;
  it->second.seconds_heard = std::max(it->second.seconds_heard, p.seconds_heard);
  it->second.position = p.position;
  if (p.duration > 0) it->second.duration = p.duration;
}

void Daemon::on_ended(const player::PlayEnded& e) {
  auto it = plays_.find(e.token);
  if (it == plays_.end()) return;
  PlayRecord r = it->second;
  plays_.erase(it);
  r.seconds_heard = std::max(r.seconds_heard, e.seconds_heard);
  if (e.duration > 0) r.duration = e.duration;
  const store::EndReason reason = to_store(e.reason);
  try {
    store_->finish_play(r.play_id, store::now_ms(), r.seconds_heard, r.duration, reason);
  } catch (const std::exception& ex) {
    spdlog::error("store: cannot finish play {}: {}", r.play_id, ex.what());
  }
  spdlog::info("play: ended play={} track={} heard={:.2f} duration={:.2f} reason={}", r.play_id,
               r.track_id, r.seconds_heard, r.duration, store::to_string(reason));
  if (e.device_xruns > 0) {
    spdlog::warn(
        "audio: the device reported {} xrun(s) during play {}: audio was dropped and the "
        "play took longer than the {:.2f} s heard (the machine held the audio threads up, or "
        "the device's period is too short for it)",
        e.device_xruns, r.play_id, r.seconds_heard);
  }
  publish("track.ended", {{"play_id", r.play_id},
                          {"track_id", r.track_id},
                          {"seconds_heard", r.seconds_heard},
                          {"duration", r.duration},
                          {"reason", store::to_string(reason)}});
  const bool was_current = current_token_ == e.token;
  if (was_current) current_token_.reset();
  // Keep playing through the queue when a track finishes by itself.
  if (was_current && reason == store::EndReason::completed && !stopping_) {
    if (auto next = queue_.next()) {
      try {
        start_track(*next);
      } catch (const std::exception& ex) {
        spdlog::warn("play: cannot continue with track {}: {}", *next, ex.what());
      }
    }
  }
}

void Daemon::on_state(player::State s) {
  if (s == state_) return;
  state_ = s;
  publish("state.changed", {{"state", player::to_string(s)}, {"track_id", opt_json(current_track())}});
}

// ---------------------------------------------------------------- helpers

void Daemon::require_player() const {
  if (!player_->available())
    throw RpcError(ErrorCode::no_audio_device,
                   "no audio device (" + player_message_ +
                       "); play the file yourself and send listen.report");
}

store::Track Daemon::track_or_throw(store::Id id) {
  auto t = store_->get_track(id);
  if (!t || t->listener_id != listener_id_)
    throw RpcError(ErrorCode::not_found, "no track with id " + std::to_string(id), {{"track_id", id}});
  return *t;
}

std::optional<store::Id> Daemon::current_track() const {
  if (!current_token_) return std::nullopt;
  auto it = plays_.find(*current_token_);
  if (it == plays_.end()) return std::nullopt;
  return it->second.track_id;
}

json Daemon::start_track(store::Id track_id) {
  const store::Track t = track_or_throw(track_id);
  const std::int64_t token = ++next_token_;
  player_->play(t.path, token);  // throws DecodeError before touching the current play
  PlayRecord r;
  r.track_id = t.id;
  r.duration = t.duration_s;
  r.play_id = store_->start_play(store::PlayTarget::track(t.id), store::PlaySource::player);
  plays_[token] = r;
  current_token_ = token;
  if (queue_.current() != t.id) queue_.play_now(t.id);
  spdlog::info("play: started play={} track={} path={}", r.play_id, t.id, t.path);
  publish("track.started", {{"play_id", r.play_id},
                            {"track_id", t.id},
                            {"path", t.path},
                            {"duration", t.duration_s},
                            {"iteration_id", opt_json(t.iteration_id)}});
  return {{"track_id", t.id}, {"play_id", r.play_id}, {"state", "playing"}};
}

json Daemon::track_json(const store::Track& t) {
  json params = json::object();
  try {
    params = json::parse(t.params_json.empty() ? "{}" : t.params_json);
  } catch (...) {
    params = t.params_json;
  }
  return {{"id", t.id},
          {"iteration_id", opt_json(t.iteration_id)},
          {"seed", t.seed},
          {"params", params},
          {"tags", t.tags},
          {"path", t.path},
          {"duration", t.duration_s},
          {"created_at", t.created_at},
          {"stars", opt_json(store_->current_rating(t.id))},
          // The reward model's prediction for this listener when the track was chosen (0-1).
          {"predicted_score", params.is_object() && params.contains("predicted_score")
                                  ? params["predicted_score"]
                                  : json(nullptr)},
          // The liked track it is a variation of (generation.liked_fraction).
          {"variation_of", params.is_object() && params.contains("variation_of")
                               ? params["variation_of"]
                               : json(nullptr)}};
}

json Daemon::song_json(const store::Song& s) const {
  return {{"id", s.id},
          {"path", s.path},
          {"original_name", s.original_name},
          {"sha256", s.sha256},
          {"duration", s.duration_s},
          {"sample_rate", s.sample_rate},
          {"added_at", s.added_at}};
}

json Daemon::play_json(const store::Play& p) const {
  return {{"id", p.id},
          {"track_id", opt_json(p.track_id)},
          {"song_id", opt_json(p.song_id)},
          {"source", store::to_string(p.source)},
          {"started_at", p.started_at},
          {"ended_at", p.ended_at ? json(*p.ended_at) : json(nullptr)},
          {"seconds_heard", p.seconds_heard},
          {"duration", opt_json(p.duration_s)},
          {"reason", p.end_reason ? json(store::to_string(*p.end_reason)) : json(nullptr)}};
}

json Daemon::status_json() {
  json track = nullptr;
  json play = nullptr;
  if (current_token_) {
    const auto& r = plays_.at(*current_token_);
    if (auto t = store_->get_track(r.track_id)) track = track_json(*t);
    double heard = r.seconds_heard, position = r.position;
    if (auto p = player_->progress(); p && p->token == *current_token_) {
      heard = std::max(heard, p->seconds_heard);
      position = p->position;
    }
    play = {{"id", r.play_id}, {"seconds_heard", heard}, {"position", position},
            {"duration", r.duration}};
  }
  const auto active = store_->active_iteration(listener_id_);
  return {
      {"version", "0.1.0"},
      {"protocol", kProtocolVersion},
      {"pid", ::getpid()},
      {"uptime_s",
       std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count()},
      {"state", player::to_string(current_token_ ? state_ : player::State::idle)},
      {"track", track},
      {"play", play},
      {"volume", std::round(player_->volume() * 1000) / 1000},
      {"audio",
       {{"available", player_->available()},
        {"output", config::to_string(config_.audio.output)},
        {"device", player_->available() ? player_->device_description() : ""},
        {"message", player_->available() ? "" : player_message_},
        {"underruns", player_->underruns()},
        {"xruns", player_->device_xruns()}}},
      {"listener", {{"id", listener_id_}, {"name", config_.daemon.listener}}},
      {"iteration", active ? json{{"id", active->id}, {"number", active->number}} : json(nullptr)},
      {"queue", {{"current", opt_json(queue_.current())}, {"upcoming", queue_.upcoming().size()}}},
      {"data_dir", config_.paths.data_dir.string()},
      {"socket", config_.paths.socket.string()},
      {"subscribers", sessions_.size()},
      {"loop", loop_ ? loop_->status() : json(nullptr)}};
}

// ---------------------------------------------------------------- export / delete

json Daemon::export_listener(const fs::path& dir_in, const std::string& format) {
  const fs::path dir = fs::absolute(dir_in);
  prepare_export_folder(dir, "dir");
  std::error_code ec;
  fs::create_directories(dir / "audio" / "songs", ec);
  fs::create_directories(dir / "audio" / "tracks", ec);
  if (ec) throw RpcError(ErrorCode::storage_error, "cannot create " + dir.string() + ": " + ec.message());

  auto copy_audio = [&](const std::string& from, const fs::path& sub, store::Id id) -> json {
    const fs::path to = dir / "audio" / sub / (std::to_string(id) + fs::path(from).extension().string());
    std::error_code cec;
    fs::copy_file(from, to, fs::copy_options::overwrite_existing, cec);
    if (cec) {
      spdlog::warn("export: cannot copy {}: {}", from, cec.message());
      return nullptr;
    }
    return fs::relative(to, dir).string();
  };

  json songs = json::array(), tracks = json::array(), ratings = json::array(),
       plays = json::array(), iterations = json::array();
  for (const auto& s : store_->songs(listener_id_)) {
    json j = song_json(s);
    j["file"] = copy_audio(s.path, "songs", s.id);
    songs.push_back(j);
  }
  for (const auto& t : store_->tracks(listener_id_)) {
    json j = track_json(t);
    j["params"] = j["params"].dump();
    j["file"] = copy_audio(t.path, "tracks", t.id);
    tracks.push_back(j);
  }
  for (const auto& r : store_->rating_history_for_listener(listener_id_))
    ratings.push_back({{"id", r.id}, {"track_id", r.track_id}, {"stars", opt_json(r.stars)},
                       {"rated_at", r.rated_at}});
  for (const auto& p : store_->plays_for_listener(listener_id_)) plays.push_back(play_json(p));
  for (const auto& i : store_->iterations(listener_id_))
    iterations.push_back({{"id", i.id}, {"number", i.number}, {"parent_id", opt_json(i.parent_id)},
                          {"status", store::to_string(i.status)}, {"active", i.active},
                          {"adapter_path", i.adapter_path}, {"metrics", i.metrics_json},
                          {"dataset_manifest", i.dataset_manifest}, {"created_at", i.created_at},
                          {"finished_at", i.finished_at ? json(*i.finished_at) : json(nullptr)}});

  json files = json::array();
  const json tables = {{"songs", songs}, {"tracks", tracks}, {"ratings", ratings},
                       {"plays", plays}, {"iterations", iterations}};
  if (format == "json") {
    json all = tables;
    all["listener"] = config_.daemon.listener;
    all["exported_at"] = store::now_ms();
    all["format_version"] = 1;
    write_text(dir / "listener.json", all.dump(2));
    files.push_back("listener.json");
  } else {
    for (const auto& [name, rows] : tables.items()) {
      write_text(dir / (name + ".csv"), to_csv(rows));
      files.push_back(name + ".csv");
    }
  }
  json counts;
  for (const auto& [name, rows] : tables.items()) counts[name] = rows.size();
  spdlog::info("export: listener={} dir={} format={}", listener_id_, dir.string(), format);
  return {{"dir", dir.string()}, {"format", format}, {"files", files}, {"counts", counts}};
}

json Daemon::delete_listener() {
  if (current_token_) {
    player_->stop(player::EndReason::stopped);
  }
  plays_.clear();
  current_token_.reset();
  if (loop_ && loop_->job_running()) loop_->cancel_job();  // it would write for a deleted listener
  const auto songs = store_->songs(listener_id_);
  const auto tracks = store_->tracks(listener_id_);
  const auto iterations = store_->iterations(listener_id_);
  std::vector<std::string> study_copies;
  for (const auto& s : store_->studies(listener_id_))
    for (const auto& i : store_->study_items(s.id)) study_copies.push_back(i.blinded_path);
  const fs::path data = config_.paths.data_dir;
  json counts = {{"songs", songs.size()}, {"tracks", tracks.size()},
                 {"ratings", store_->rating_history_for_listener(listener_id_).size()},
                 {"plays", store_->plays_for_listener(listener_id_).size()},
                 {"iterations", store_->iterations(listener_id_).size()}};
  store_->delete_listener(listener_id_);
  // Only files the daemon put in its data folder are ours to delete. What the model derived
  // from them goes too: cached latents and embeddings are named by the audio's content hash.
  int files = 0;
  std::error_code ec;
  std::set<std::string> hashes;
  for (const auto& s : songs) hashes.insert(s.sha256);
  for (const auto& t : tracks) {
    try {
      if (inside(t.path, data)) hashes.insert(audio::sha256_file(t.path));
    } catch (const std::exception&) {
    }
    fs::remove(t.path + ".embedding.json", ec);
  }
  if (fs::is_directory(data / "latents", ec))
    for (const auto& entry : fs::directory_iterator(data / "latents", ec)) {
      const std::string name = entry.path().filename().string();
      for (const auto& h : hashes)
        if (!h.empty() && name.find(h) != std::string::npos) {
          if (fs::remove(entry.path(), ec)) ++files;
          break;
        }
    }
  for (const auto& s : songs)
    if (inside(s.path, data) && fs::remove(s.path, ec)) ++files;
  for (const auto& t : tracks)
    if (inside(t.path, data) && fs::remove(t.path, ec)) ++files;
  // Adapters and reward models learnt from the listener's taste (iter-<k>-<id>.*, also of
  // iterations that failed or never finished), and blinded study copies.
  if (fs::is_directory(data / "adapters", ec))
    for (const auto& entry : fs::directory_iterator(data / "adapters", ec)) {
      const std::string name = entry.path().filename().string();
      for (const auto& i : iterations) {
        const std::string suffix = "-" + std::to_string(i.id) + ".";
        if (name.rfind("iter-", 0) == 0 && name.find(suffix) != std::string::npos) {
          if (fs::remove(entry.path(), ec)) ++files;
          break;
        }
      }
    }
  for (const auto& c : study_copies)
    if (inside(c, data) && fs::remove(c, ec)) ++files;
  counts["files"] = files;
  listener_id_ = store_->ensure_listener(config_.daemon.listener).id;
  queue_ = player::PlayQueue();
  spdlog::warn("listener: deleted all data of listener={} ({})", config_.daemon.listener, counts.dump());
  publish("state.changed", {{"state", "idle"}, {"reason", "listener deleted"}});
  return {{"deleted", counts}};
}

// ---------------------------------------------------------------- the command table

void Daemon::register_commands() {
  // The rows live by area in daemon/methods/; here they are only listed.
  add_daemon_methods();
  add_player_methods();
  add_feedback_methods();
  add_library_methods();
  add_listener_methods();
  auto& t = table_;
  // Human studies (daemon/methods/study.cpp).
  add_study_methods(t, {*store_, [this] { return listener_id_; },
                         [this] { return config_.paths.data_dir; }, table_});
}

// The loop's service and its rows (daemon/methods/loop.cpp); started in run().
void Daemon::start_loop() {
  loop::LoopHooks hooks;
  hooks.listener_id = [this] { return listener_id_; };
  hooks.publish = [this](const std::string& event, const json& params) { publish(event, params); };
  hooks.tracks_ready = [this](const std::vector<store::Id>&) { fill_queue(); };
  loop_ = std::make_unique<loop::LoopService>(io_, *store_, config_, std::move(hooks));
  add_loop_methods(table_, {*store_, *loop_, [this] { return listener_id_; }, [this] { fill_queue(); }});
}

}  // namespace tuneloop::daemon
