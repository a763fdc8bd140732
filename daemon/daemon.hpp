#pragma once
// tuneloopd's wiring: one asio::io_context thread owns IPC, timers and every store
// write; the player's events are posted to it. Construct, then run() until a signal or
// the `shutdown` method stops it.

#include "config/config.hpp"
#include "rpc/commands.hpp"
#include "rpc/dispatcher.hpp"
#include "daemon/http_server.hpp"
#include "daemon/ipc_server.hpp"
#include "rpc/session.hpp"
#include "loop/loop_service.hpp"
#include "mpd/server.hpp"
#include "player/play_queue.hpp"
#include "player/player.hpp"
#include "store/store.hpp"

#include <asio.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <atomic>
#include <memory>
#include <optional>
#include <string>

namespace tuneloop::daemon {

inline constexpr const char* kProtocolVersion = "0.3";

/// What the command line can override over the config file (reapplied on SIGHUP).
struct DaemonOverrides {
  std::optional<std::filesystem::path> config_file;
  std::optional<std::filesystem::path> data_dir;
  std::optional<std::filesystem::path> socket;
  std::optional<config::LogLevel> log_level;
};

/// Loads the config and applies the overrides. Throws config::ConfigError.
config::Config load_effective_config(const DaemonOverrides& overrides);

/// The spdlog level for a configured log level.
spdlog::level::level_enum to_spdlog(config::LogLevel level);

class Daemon {
 public:
  /// Opens the store, the player and the IPC socket.
  /// Throws store::StoreError, std::runtime_error (socket in use, cannot bind).
  Daemon(config::Config config, DaemonOverrides overrides);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  /// Runs the io loop on the calling thread until shutdown. Returns the exit status.
  int run();

  // For command rows added by other folders (the loop). io thread only.
  asio::io_context& io() noexcept { return io_; }
  store::Store& store() noexcept { return *store_; }
  const config::Config& config() const noexcept { return config_; }
  store::Id listener_id() const noexcept { return listener_id_; }
  rpc::CommandTable& commands() noexcept { return table_; }
  /// The loop (scheduler, fine-tune and generation worker). io thread only.
  loop::LoopService& loop() noexcept { return *loop_; }
  /// Sends an event (see session.hpp's event_names) to every subscribed session.
  void publish(const std::string& event, const nlohmann::json& params);
  /// Graceful stop: the current play ends as interrupted, audio stops, the socket goes.
  void shutdown(const std::string& why);

 private:
  struct PlayRecord {
    store::Id play_id = 0;
    store::Id track_id = 0;
    double seconds_heard = 0;
    double position = 0;
    double duration = 0;
    double last_checkpoint = 0;
  };

  void register_commands();
  // The rows of the command table by area (daemon/methods/<area>.cpp).
  void add_daemon_methods();
  void add_player_methods();
  void add_feedback_methods();
  void add_library_methods();
  void add_listener_methods();
  void start_loop();
  void start_http();
  void start_mpd();
  void open_player();
  void fill_queue();
  void report_missing_files();
  void wait_for_signals();
  void reload_config();
  void schedule_checkpoint();
  void checkpoint() noexcept;

  // Player events, already on the io thread.
  void on_progress(const player::PlayProgress& p);
  void on_ended(const player::PlayEnded& e);
  void on_state(player::State s);

  // Handler helpers.
  void require_player() const;
  nlohmann::json start_track(store::Id track_id);
  store::Track track_or_throw(store::Id id);
  std::optional<store::Id> current_track() const;
  nlohmann::json status_json();
  nlohmann::json track_json(const store::Track& t);
  nlohmann::json song_json(const store::Song& s) const;
  nlohmann::json play_json(const store::Play& p) const;
  nlohmann::json export_listener(const std::filesystem::path& dir, const std::string& format);
  nlohmann::json delete_listener();
  // songs.add: the file's part (any thread; throws RpcError, audio::AudioError) and the
  // row's (io thread; returns the song as songs.list shows it, with "inserted").
  struct ImportedSong {
    std::filesystem::path source, copy;
    std::string sha256;
    double seconds = 0;
    int sample_rate = 0;
  };
  static ImportedSong import_song_file(const std::filesystem::path& source,
                                       const std::filesystem::path& songs_dir);
  nlohmann::json record_song(const ImportedSong& song);

  config::Config config_;
  DaemonOverrides overrides_;
  asio::io_context io_;
  std::optional<store::Store> store_;
  store::Id listener_id_ = 0;
  std::unique_ptr<player::Player> player_;
  std::string player_message_;
  player::PlayQueue queue_;
  rpc::CommandTable table_;
  rpc::Dispatcher dispatcher_{table_};
  rpc::SessionRegistry sessions_;
  std::unique_ptr<IpcServer> server_;
  std::unique_ptr<HttpServer> http_;  // the web player; null when http.enabled is false
  std::unique_ptr<mpd::MpdServer> mpd_;  // the MPD door; null when mpd.port is 0 or taken
  asio::signal_set signals_;
  asio::steady_timer checkpoint_timer_;
  std::map<std::int64_t, PlayRecord> plays_;  // by player token; ended ones are erased
  std::optional<std::int64_t> current_token_;
  std::int64_t next_token_ = 0;
  player::State state_ = player::State::idle;
  bool stopping_ = false;
  // Set when run() returns; the shutdown deadline's watchdog then lets the process be.
  std::shared_ptr<std::atomic<bool>> stopped_ = std::make_shared<std::atomic<bool>>(false);
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  // Reads, hashes and copies the files of songs.add off the io thread. Near the end:
  // destroyed early, finishing the file in hand before what it posts to goes away.
  asio::thread_pool files_{1};
  // Last member: destroyed first, joining the worker before what it posts to goes away.
  std::unique_ptr<loop::LoopService> loop_;
};

}  // namespace tuneloop::daemon
