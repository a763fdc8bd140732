#include "cli/cli_socket.hpp"

#include <cstdlib>
#include <iostream>

#include "config/config.hpp"

namespace tuneloop::cli {

std::filesystem::path resolve_socket(const std::string& explicit_path) {
  if (!explicit_path.empty()) return explicit_path;
  if (const char* env = std::getenv("TUNELOOP_SOCKET"); env && *env) return env;
  try {
    return config::load_config().paths.socket;
  } catch (const std::exception& e) {
    std::cerr << "tuneloop: ignoring the config (" << e.what() << ")\n";
    return config::default_socket_path();
  }
}

std::filesystem::path cli_socket_path(const CLI::App& root) {
  const CLI::Option* o = root.get_option_no_throw("--socket");
  return resolve_socket(o && o->count() > 0 ? o->as<std::string>() : std::string());
}

bool cli_json_output(const CLI::App& root) {
  const CLI::Option* o = root.get_option_no_throw("--json");
  return o && o->count() > 0;
}

}  // namespace tuneloop::cli
