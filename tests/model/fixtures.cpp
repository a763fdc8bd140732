#include "fixtures.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>

#include <torch/torch.h>

#include "adapters/lora.hpp"
#include "audio/audio.hpp"
#include "model/model_files.hpp"

namespace tuneloop::testing {

std::vector<float> tone(double hz, double seconds, double notes_per_second, int sample_rate) {
  const auto n = static_cast<size_t>(seconds * sample_rate);
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i) / sample_rate;
    const double since_note = std::fmod(t, 1.0 / notes_per_second);
    const double env = std::exp(-6.0 * since_note * notes_per_second);
    double s = 0.0;
    for (int h = 1; h <= 3; ++h) s += std::sin(2 * M_PI * hz * h * t) / h;
    out[i] = static_cast<float>(0.3 * env * s);
  }
  return out;
}

void write_tiny_corpus(const std::string& dir, int count, double seconds) {
  std::filesystem::create_directories(dir + "/clips");
  std::ofstream index(dir + "/index.jsonl");
  for (int i = 0; i < count; ++i) {
    const bool high = i % 2 == 1, fast = (i / 2) % 2 == 1;
    audio::Audio a;
    a.sample_rate = 16000;
    a.samples = tone((high ? 880.0 : 220.0) * (1.0 + 0.05 * i), seconds, fast ? 8.0 : 2.0);
    const std::string name = "clips/" + std::to_string(i) + ".wav";
    audio::write_audio(dir + "/" + name, a);
    index << R"({"file": ")" << name << R"(", "tags": [")" << (high ? "high" : "low") << R"(", ")"
          << (fast ? "fast" : "slow") << "\"]}\n";
  }
}

void write_fixture_weights(const std::string& dir, unsigned seed) {
  torch::manual_seed(seed);
  model::Autoencoder ae(model::fixture_autoencoder_config());
  model::Denoiser dn(model::fixture_denoiser_config({"low", "high", "slow", "fast"}));
  {
    torch::NoGradGuard ng;
    dn->conv_out->base_weight().normal_(0.0, 0.05);
  }
  std::filesystem::create_directories(dir);
  model::save_autoencoder(ae, dir + "/" + model::kAutoencoderFile);
  model::save_denoiser(dn, dir + "/" + model::kDenoiserFile, adapters::model_hash(*ae));
}

}  // namespace tuneloop::testing
