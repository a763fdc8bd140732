// tuneloopd: the tuneloop daemon. Runs in the foreground (systemd-friendly); see
// docs/protocol.md for what it answers on its socket.
#include "config/config.hpp"
#include "daemon/daemon.hpp"
#include "daemon/lock_file.hpp"

#include <CLI/CLI.hpp>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <sys/stat.h>

#include <csignal>
#include <iostream>

namespace fs = std::filesystem;
using namespace tuneloop;

namespace {

void setup_logging(const config::Config& c) {
  std::vector<spdlog::sink_ptr> sinks{std::make_shared<spdlog::sinks::stderr_color_sink_mt>()};
  if (!c.paths.log_file.empty()) {
    fs::create_directories(c.paths.log_file.parent_path());
    sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(c.paths.log_file.string()));
  }
  auto logger = std::make_shared<spdlog::logger>("tuneloopd", sinks.begin(), sinks.end());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(daemon::to_spdlog(c.daemon.log_level));
  spdlog::flush_on(spdlog::level::info);
}

// Folders and databases made by an older tuneloopd were readable by other users.
void make_private(const fs::path& data_dir) {
  std::error_code ec;
  fs::permissions(data_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  for (const char* name : {"tuneloop.db", "tuneloop.db-wal", "tuneloop.db-shm"})
    if (fs::exists(data_dir / name, ec))
      fs::permissions(data_dir / name, fs::perms::owner_read | fs::perms::owner_write,
                      fs::perm_options::replace, ec);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tuneloopd: the tuneloop daemon (plays tracks, records listening and ratings,\n"
               "answers JSON-RPC 2.0 on a Unix socket; see docs/protocol.md)"};
  std::string config_file, data_dir, socket, log_level;
  bool print_config = false;
  app.add_option("--config", config_file,
                 "YAML config file (default: " + config::default_config_path().string() +
                     " if it exists, else built-in defaults)");
  app.add_option("--data-dir", data_dir,
                 "data folder: database, songs, lock (default: " + config::default_data_dir().string() + ")");
  app.add_option("--socket", socket,
                 "IPC socket path (default: " + config::default_socket_path().string() + ")");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error (default: info)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.add_flag("--print-config", print_config, "print the effective config as YAML and exit");
  app.footer("Signals: SIGINT/SIGTERM stop gracefully, SIGHUP reloads the config.");
  CLI11_PARSE(app, argc, argv);

  daemon::DaemonOverrides o;
  if (!config_file.empty()) o.config_file = config_file;
  if (!data_dir.empty()) o.data_dir = fs::absolute(data_dir);
  if (!socket.empty()) o.socket = fs::absolute(socket);
  if (!log_level.empty()) {
    const config::LogLevel levels[] = {config::LogLevel::trace, config::LogLevel::debug,
                                       config::LogLevel::info, config::LogLevel::warn,
                                       config::LogLevel::error};
    for (auto l : levels)
      if (config::to_string(l) == log_level) o.log_level = l;
  }

  config::Config cfg;
  try {
    cfg = daemon::load_effective_config(o);
  } catch (const std::exception& e) {
    std::cerr << "tuneloopd: " << e.what() << "\n";
    return 2;
  }
  if (print_config) {
    std::cout << config::to_yaml(cfg);
    return 0;
  }
  // The listening history is the listener's alone: every file and folder the daemon
  // creates is private (0600 / 0700), and the data folder and database are made so at start.
  ::umask(077);
  setup_logging(cfg);
  // A client that hangs up mid-reply must not kill the daemon.
  std::signal(SIGPIPE, SIG_IGN);

  try {
    fs::create_directories(cfg.paths.data_dir);
    make_private(cfg.paths.data_dir);
    daemon::LockFile lock(cfg.paths.data_dir / "tuneloopd.lock");
    spdlog::info("daemon: starting data_dir={} socket={}", cfg.paths.data_dir.string(),
                 cfg.paths.socket.string());
    daemon::Daemon d(cfg, o);
    return d.run();
  } catch (const daemon::AlreadyRunningError& e) {
    spdlog::error("{}", e.what());
    return 3;
  } catch (const std::exception& e) {
    spdlog::error("daemon: cannot start: {}", e.what());
    return 1;
  }
}
