#pragma once
// Shared by the pilot tests: fixture model weights (written once per test process) and
// the daemon_config that makes a study's tuneloopd use them with a tiny, fast loop.
#include <filesystem>
#include <string>

#include "tests/model/fixtures.hpp"
#include "tests/support/temp_dir.hpp"

namespace tuneloop::testing {

/// A folder with fixture autoencoder/denoiser weights, removed when the process exits.
inline const std::string& fixture_weights() {
  static TempDir dir("tuneloop-model");
  static const std::string path = [] {
    write_fixture_weights(dir.path().string());
    return dir.path().string();
  }();
  return path;
}

/// Daemon config sections (YAML, indented by `indent`) for a tiny loop on the fixture
/// weights; weights_dir is always explicit so no test loads the shipped model.
inline std::string tiny_loop_yaml(const std::string& indent = "  ", int tracks_per_iteration = 0) {
  const std::string tracks =
      tracks_per_iteration > 0 ? ", tracks_per_iteration: " + std::to_string(tracks_per_iteration) : "";
  return indent + "paths: {weights_dir: \"" + fixture_weights() + "\"}\n" +
         indent + "model: {steps: 2, threads: 1, device: cpu}\n" +
         indent + "generation: {seconds: 1.0" + tracks + "}\n" +
         indent + "training: {steps: 4, batch_size: 2, rank: 2, alpha: 2, threads: 1, checkpoint_every: 2}\n" +
         indent + "schedule: {min_feedback: 1}\n" +
         indent + "dataset: {min_ratings: 2}\n";
}

inline std::filesystem::path tuneloopd_path() {
  return std::filesystem::path(TUNELOOP_BINARY_DIR) / "daemon" / "tuneloopd";
}

inline std::filesystem::path tuneloop_path() {
  return std::filesystem::path(TUNELOOP_BINARY_DIR) / "daemon" / "tuneloop";
}

}  // namespace tuneloop::testing
