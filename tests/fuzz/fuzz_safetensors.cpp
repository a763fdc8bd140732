// Model, adapter and checkpoint files as the loader meets them on disk.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "adapters/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto file = tuneloop::adapters::SafetensorsFile::parse(std::vector<std::uint8_t>(data, data + size), "fuzz");
    for (const auto& name : file.names()) {
      const auto& info = file.info(name);
      const auto* bytes = file.data(name);
      volatile std::uint8_t sink = 0;
      for (std::size_t i = 0; i < info.end - info.begin; ++i) sink = sink ^ bytes[i];
    }
  } catch (const tuneloop::adapters::ModelFileError&) {
  }
  return 0;
}
