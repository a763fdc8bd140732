// `tuneloop ui`: prints the web player's address (with its access token) and opens it.
#include "cli/ui_command.hpp"

#include "config/config.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

extern char** environ;

namespace tuneloop::cli {

namespace fs = std::filesystem;

namespace {

struct UiArgs {
  std::string config_file;
  std::string data_dir;
  bool no_open = false;
};

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (!path) return false;
  std::string dirs = path;
  for (std::size_t pos = 0; pos <= dirs.size();) {
    std::size_t end = dirs.find(':', pos);
    if (end == std::string::npos) end = dirs.size();
    const fs::path candidate = fs::path(dirs.substr(pos, end - pos)) / program;
    if (::access(candidate.c_str(), X_OK) == 0) return true;
    pos = end + 1;
  }
  return false;
}

// xdg-open without a shell, so nothing in the address is ever interpreted.
bool open_in_browser(const std::string& url) {
  const bool desktop = std::getenv("DISPLAY") || std::getenv("WAYLAND_DISPLAY");
  if (!desktop || !on_path("xdg-open")) return false;
  std::string program = "xdg-open";
  std::string arg = url;
  char* argv[] = {program.data(), arg.data(), nullptr};
  pid_t pid = 0;
  if (::posix_spawnp(&pid, "xdg-open", nullptr, nullptr, argv, environ) != 0) return false;
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int run_ui(const UiArgs& a) {
  fs::path data;
  try {
    config::LoadOptions lo;
    if (!a.config_file.empty()) lo.config_file = a.config_file;
    if (!a.data_dir.empty()) lo.data_dir = fs::absolute(a.data_dir);
    const config::Config c = config::load_config(lo);
    if (!c.http.enabled) {
      std::cerr << "tuneloop ui: the web player is off (http.enabled: false in the config)\n";
      return 1;
    }
    data = c.paths.data_dir;
  } catch (const std::exception& e) {
    std::cerr << "tuneloop ui: " << e.what() << "\n";
    return 1;
  }
  // tuneloopd writes ui-url (0600) while its web player runs and removes it on exit.
  std::ifstream in(data / "ui-url");
  std::string url;
  if (!in || !std::getline(in, url) || url.empty()) {
    std::cerr << "tuneloop ui: the web player is not running (no " << (data / "ui-url").string()
              << "); start tuneloopd first\n";
    return 1;
  }
  std::cout << url << "\n";
  if (a.no_open) return 0;
  // The browser is started on a private file that forwards to the address, so the token
  // never appears in a command line (which every local user can read in /proc).
  const fs::path redirect = data / "ui-open.html";
  bool opened = false;
  {
    const int fd = ::open(redirect.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
      const std::string page = "<!doctype html><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0; url=" +
                               url + "\"><title>tuneloop</title><a href=\"" + url + "\">tuneloop</a>\n";
      const bool written = ::write(fd, page.data(), page.size()) == static_cast<ssize_t>(page.size());
      ::close(fd);
      opened = written && open_in_browser("file://" + redirect.string());
    }
  }
  if (!opened) std::cerr << "(open the address above in a browser on this computer)\n";
  return 0;
}

}  // namespace

void add_ui_command(CLI::App& app) {
  auto a = std::make_shared<UiArgs>();
  auto* sub = app.add_subcommand("ui", "print the web player's address (with its access token) and open it");
  sub->add_option("--config", a->config_file, "YAML config file (default: the usual config)");
  sub->add_option("--data-dir", a->data_dir, "the daemon's data folder (default: from the config)");
  sub->add_flag("--no-open", a->no_open, "only print the address, do not start a browser");
  sub->callback([a] {
    if (const int rc = run_ui(*a); rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace tuneloop::cli
