#include "model/hparams.hpp"

#include <numeric>

#include <nlohmann/json.hpp>

namespace tuneloop::model {
namespace {

using nlohmann::json;

json frontend_json(const FrontEndConfig& c) {
  return {{"sample_rate", c.sample_rate}, {"n_fft", c.n_fft},         {"hop", c.hop},
          {"mels", c.mels},               {"fmin", c.fmin},           {"fmax", c.fmax},
          {"mel_offset", c.mel_offset},   {"mel_scale", c.mel_scale}};
}

template <typename T>
T get(const json& j, const char* key, const std::string& where) {
  if (!j.is_object() || !j.contains(key)) {
    throw ModelError(where + ": model metadata lacks the key '" + key + "'");
  }
  try {
    return j.at(key).get<T>();
  } catch (const json::exception& e) {
    throw ModelError(where + ": model metadata key '" + key + "' has the wrong type: " +
                     e.what());
  }
}

json parse(const std::string& text, const std::string& where) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw ModelError(where + ": model metadata is not valid JSON: " + e.what());
  }
}

FrontEndConfig frontend_from(const json& j, const std::string& where) {
  FrontEndConfig c;
  c.sample_rate = get<int>(j, "sample_rate", where);
  c.n_fft = get<int>(j, "n_fft", where);
  c.hop = get<int>(j, "hop", where);
  c.mels = get<int>(j, "mels", where);
  c.fmin = get<double>(j, "fmin", where);
  c.fmax = get<double>(j, "fmax", where);
  c.mel_offset = get<double>(j, "mel_offset", where);
  c.mel_scale = get<double>(j, "mel_scale", where);
  if (c.sample_rate <= 0 || c.n_fft < 16 || c.hop <= 0 || c.hop > c.n_fft || c.mels < 4 ||
      c.mel_scale <= 0.0 || c.fmax <= c.fmin) {
    throw ModelError(where + ": front-end hyper-parameters out of range");
  }
  return c;
}

void check_channels(const std::vector<int>& ch, const std::string& where) {
  if (ch.empty() || ch.size() > 6) throw ModelError(where + ": 'channels' must have 1 to 6 entries");
  for (int c : ch) {
    if (c < 1 || c > 4096) throw ModelError(where + ": a 'channels' entry is out of range");
  }
}

}  // namespace

FrontEndConfig at_rate(const FrontEndConfig& c, int rate, const std::string& where) {
  if (rate <= 0) throw ModelError(where + ": the sample rate must be positive");
  const auto scaled = [&](int v, const char* name) {
    const int64_t product = static_cast<int64_t>(v) * rate;
    if (product % c.sample_rate != 0) {
      throw ModelError(where + ": at " + std::to_string(rate) + " Hz the " + name + " (" +
                       std::to_string(v) + " at " + std::to_string(c.sample_rate) +
                       " Hz) is not a whole number of samples; choose a rate that is a multiple of " +
                       std::to_string(c.sample_rate / std::gcd(c.sample_rate, c.hop)) + " Hz");
    }
    return static_cast<int>(product / c.sample_rate);
  };
  FrontEndConfig out = c;
  out.n_fft = scaled(c.n_fft, "window");
  out.hop = scaled(c.hop, "hop");
  out.sample_rate = rate;
  out.fmin = c.fmin * rate / c.sample_rate;
  out.fmax = c.fmax * rate / c.sample_rate;
  return out;
}

bool same_frames(const FrontEndConfig& a, const FrontEndConfig& b) {
  const auto same_ratio = [&](int x, int y) {
    return static_cast<int64_t>(x) * b.sample_rate == static_cast<int64_t>(y) * a.sample_rate;
  };
  return same_ratio(a.n_fft, b.n_fft) && same_ratio(a.hop, b.hop) && a.fmin * b.sample_rate == b.fmin * a.sample_rate;
}

bool at_another_rate(const FrontEndConfig& a, const FrontEndConfig& b) {
  return a.sample_rate != b.sample_rate && same_frames(a, b);
}

void check_autoencoder_shape(const AutoencoderConfig& c, const std::string& where) {
  if (c.band_fold != 1 && c.band_fold != 2 && c.band_fold != 4) {
    throw ModelError(where + ": 'band_fold' must be 1, 2 or 4 (got " + std::to_string(c.band_fold) + ")");
  }
  if (c.frontend.mels % (c.band_fold * c.factor()) != 0) {
    throw ModelError(where + ": mels (" + std::to_string(c.frontend.mels) +
                     ") is not divisible by the autoencoder's band fold times its downsampling "
                     "factor (" + std::to_string(c.band_fold * c.factor()) + ")");
  }
}

std::string to_json(const FrontEndConfig& c) { return frontend_json(c).dump(); }

std::string to_json(const AutoencoderConfig& c) {
  json j{{"frontend", frontend_json(c.frontend)},
         {"channels", c.channels},
         {"latent_channels", c.latent_channels}};
  if (c.band_fold != 1) j["band_fold"] = c.band_fold;  // files without it read as 1
  return j.dump();
}

std::string to_json(const DenoiserConfig& c) {
  return json{{"latent_channels", c.latent_channels},
              {"latent_height", c.latent_height},
              {"channels", c.channels},
              {"blocks", c.blocks},
              {"tags", c.tags},
              {"latent_scale", c.latent_scale}}
      .dump();
}

AutoencoderConfig autoencoder_config_from_json(const std::string& text, const std::string& where) {
  const json j = parse(text, where);
  AutoencoderConfig c;
  c.frontend = frontend_from(get<json>(j, "frontend", where), where);
  c.channels = get<std::vector<int>>(j, "channels", where);
  c.latent_channels = get<int>(j, "latent_channels", where);
  check_channels(c.channels, where);
  if (c.latent_channels < 1 || c.latent_channels > 64) {
    throw ModelError(where + ": 'latent_channels' out of range");
  }
  if (j.contains("band_fold")) c.band_fold = get<int>(j, "band_fold", where);
  check_autoencoder_shape(c, where);
  return c;
}

DenoiserConfig denoiser_config_from_json(const std::string& text, const std::string& where) {
  const json j = parse(text, where);
  DenoiserConfig c;
  c.latent_channels = get<int>(j, "latent_channels", where);
  c.latent_height = get<int>(j, "latent_height", where);
  c.channels = get<std::vector<int>>(j, "channels", where);
  c.blocks = get<int>(j, "blocks", where);
  c.tags = get<std::vector<std::string>>(j, "tags", where);
  c.latent_scale = get<double>(j, "latent_scale", where);
  check_channels(c.channels, where);
  if (c.latent_channels < 1 || c.latent_channels > 64 || c.blocks < 1 || c.blocks > 8 ||
      !(c.latent_scale > 0.0) || c.latent_height % c.length_multiple() != 0) {
    throw ModelError(where + ": denoiser hyper-parameters out of range");
  }
  return c;
}

AutoencoderConfig fixture_autoencoder_config() {
  AutoencoderConfig c;
  c.frontend.mels = 16;
  c.channels = {8, 16};
  return c;
}

DenoiserConfig fixture_denoiser_config(std::vector<std::string> tags) {
  DenoiserConfig c;
  c.latent_height = 4;
  c.channels = {8, 16};
  c.blocks = 1;
  c.tags = std::move(tags);
  return c;
}

}  // namespace tuneloop::model
