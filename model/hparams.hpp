#pragma once
// Architecture hyper-parameters of the model's parts. They travel in every weight and
// checkpoint file's metadata (as JSON) and are checked when a file is loaded.
#include <map>
#include <string>
#include <vector>

#include "model/model_error.hpp"

namespace tuneloop::model {

// Audio ↔ log-mel. The autoencoder sees (log(mel) - mel_offset) / mel_scale.
struct FrontEndConfig {
  int sample_rate = 16000;
  int n_fft = 1024;
  int hop = 256;
  int mels = 64;
  double fmin = 0.0;
  double fmax = 8000.0;
  double mel_offset = -5.0;
  double mel_scale = 4.0;
  bool operator==(const FrontEndConfig&) const = default;
};

// Mel image [1, mels, T] ↔ latent [latent_channels, mels/(band_fold·4), T/4].
struct AutoencoderConfig {
  FrontEndConfig frontend;
  // Channels per level. The mel image is first folded 2×2 into 4 channels (pixel
  // unshuffle), then every level after the first halves both axes again: factor = 2^levels.
  std::vector<int> channels{16, 32};
  int latent_channels = 4;
  // Neighbouring mel bands folded into channels before all that (1, 2 or 4; files from before
  // this key read as 1): a finer mel at the latent height of a coarser one, so a denoiser
  // over the latent costs what it did (docs/model.md, "Finer bands").
  int band_fold = 1;
  int factor() const { return 1 << static_cast<int>(channels.size()); }  // along time
  int latent_height() const { return frontend.mels / (band_fold * factor()); }
  bool operator==(const AutoencoderConfig&) const = default;
};

// UNet over the latent seen as an image [latent_channels, latent_height, L].
struct DenoiserConfig {
  int latent_channels = 4;
  int latent_height = 16;
  std::vector<int> channels{32, 64, 128};
  int blocks = 1;             // residual blocks per level on the way down
  std::vector<std::string> tags;  // the tag vocabulary, in embedding order
  double latent_scale = 1.0;  // latents are divided by this so the diffusion sees unit variance
  int length_multiple() const { return 1 << (static_cast<int>(channels.size()) - 1); }
  bool operator==(const DenoiserConfig&) const = default;
};

// The front end `c` at another sample rate with the same frames: n_fft and hop scaled by
// rate / c.sample_rate (both must come out whole), so a frame and its window last as long,
// every STFT bin keeps its frequency, and there are more of them; fmax scales with the rate
// (the bands end at the same fraction of Nyquist). The mel normalisation is kept (measure it
// again on the new bands). Throws ModelError naming `where` if n_fft or hop is not whole.
FrontEndConfig at_rate(const FrontEndConfig& c, int rate, const std::string& where);
// Whether `a` is `b` at another rate (at_rate), or `b` itself, apart from its mel bands
// (count, fmax) and their normalisation: the two see the same frames and bins.
bool same_frames(const FrontEndConfig& a, const FrontEndConfig& b);
// Whether `a` is `b` at another rate with the same frames (same_frames, rates differ).
bool at_another_rate(const FrontEndConfig& a, const FrontEndConfig& b);

std::string to_json(const FrontEndConfig& c);
std::string to_json(const AutoencoderConfig& c);
std::string to_json(const DenoiserConfig& c);

// Parse the JSON written by to_json. `where` names the file for messages.
// Throws ModelError naming `where` and the missing or invalid key.
AutoencoderConfig autoencoder_config_from_json(const std::string& json, const std::string& where);
// Throws ModelError naming `where` unless band_fold is 1, 2 or 4 and divides the mels with
// the downsampling factor.
void check_autoencoder_shape(const AutoencoderConfig& c, const std::string& where);
DenoiserConfig denoiser_config_from_json(const std::string& json, const std::string& where);

// Tiny configurations for tests (channels 8/16, 16 mels, latent [4, 4, T/4]): train in seconds.
AutoencoderConfig fixture_autoencoder_config();
DenoiserConfig fixture_denoiser_config(std::vector<std::string> tags);

}  // namespace tuneloop::model
