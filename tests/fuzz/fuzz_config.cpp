// config.yaml text as a listener might write it (or break it).
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto c = tuneloop::config::load_config_string(std::string(reinterpret_cast<const char*>(data), size),
                                                         "/fuzz/config.yaml");
    (void)tuneloop::config::to_yaml(c);
  } catch (const tuneloop::config::ConfigError&) {
  }
  return 0;
}
