#include "model/vocoder.hpp"

#include <cmath>
#include <nlohmann/json.hpp>

#include "adapters/tensor_file.hpp"
#include "model/model_files.hpp"

namespace tuneloop::model {
namespace {

namespace nn = torch::nn;
using nlohmann::json;

// Reads the keys listed in the tables into `ints` / `doubles` fields; a missing or
// mistyped key is a ModelError naming `where`.
template <typename T>
void read_fields(const json& j, std::initializer_list<std::pair<const char*, T*>> fields,
                 const std::string& where) {
  for (const auto& [key, field] : fields) {
    if (!j.is_object() || !j.contains(key) || !j.at(key).is_number()) {
      throw ModelError(where + ": vocoder metadata lacks the numeric key '" + key + "'");
    }
    *field = j.at(key).template get<T>();
  }
}

// Magnitude with a floor, so that the gradient stays finite at exact digital silence.
torch::Tensor magnitude(const torch::Tensor& spectrum) {
  return torch::sqrt(torch::view_as_real(spectrum).pow(2).sum(-1) + 1e-7);
}

torch::Tensor stft_at(const torch::Tensor& wave, int64_t n_fft) {
  auto window = torch::hann_window(n_fft, wave.options());
  return torch::stft(wave, n_fft, /*hop_length=*/n_fft / 4, /*win_length=*/n_fft, window,
                     /*center=*/true, /*pad_mode=*/"reflect", /*normalized=*/false,
                     /*onesided=*/true, /*return_complex=*/true);
}

}  // namespace

std::string to_json(const VocoderConfig& c) {
  return json{{"frontend", json::parse(to_json(c.frontend))},
              {"dim", c.dim},
              {"intermediate", c.intermediate},
              {"layers", c.layers},
              {"kernel", c.kernel}}
      .dump();
}

VocoderConfig vocoder_config_from_json(const std::string& text, const std::string& where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw ModelError(where + ": vocoder metadata is not valid JSON: " + e.what());
  }
  VocoderConfig c;
  read_fields<int>(j, {{"dim", &c.dim}, {"intermediate", &c.intermediate}, {"layers", &c.layers},
                       {"kernel", &c.kernel}},
                   where);
  if (!j.contains("frontend")) throw ModelError(where + ": vocoder metadata lacks the key 'frontend'");
  const auto& f = j.at("frontend");
  auto& fc = c.frontend;
  read_fields<int>(f, {{"sample_rate", &fc.sample_rate}, {"n_fft", &fc.n_fft}, {"hop", &fc.hop},
                       {"mels", &fc.mels}},
                   where);
  read_fields<double>(f, {{"fmin", &fc.fmin}, {"fmax", &fc.fmax}, {"mel_offset", &fc.mel_offset},
                          {"mel_scale", &fc.mel_scale}},
                      where);
  if (fc.sample_rate <= 0 || fc.n_fft < 16 || fc.hop <= 0 || fc.hop > fc.n_fft || fc.mels < 4 ||
      !(fc.mel_scale > 0.0) || !(fc.fmax > fc.fmin)) {
    throw ModelError(where + ": vocoder front-end hyper-parameters out of range");
  }
  if (c.dim < 1 || c.dim > 2048 || c.intermediate < 1 || c.intermediate > 8192 || c.layers < 1 ||
      c.layers > 64 || c.kernel < 1 || c.kernel > 63 || c.kernel % 2 == 0) {
    throw ModelError(where + ": vocoder hyper-parameters out of range");
  }
  return c;
}

VocoderConfig fixture_vocoder_config() {
  VocoderConfig c;
  c.frontend = fixture_autoencoder_config().frontend;
  c.dim = 16;
  c.intermediate = 32;
  c.layers = 2;
  return c;
}

ConvNeXtBlockImpl::ConvNeXtBlockImpl(int dim, int intermediate, int kernel, double layer_scale) {
  depthwise = register_module(
      "depthwise", nn::Conv1d(nn::Conv1dOptions(dim, dim, kernel).padding(kernel / 2).groups(dim)));
  norm = register_module("norm", nn::LayerNorm(nn::LayerNormOptions({dim}).eps(1e-6)));
  up = register_module("up", nn::Linear(dim, intermediate));
  down = register_module("down", nn::Linear(intermediate, dim));
  gamma = register_parameter("gamma", torch::full({dim}, layer_scale));
}

torch::Tensor ConvNeXtBlockImpl::forward(const torch::Tensor& x) {
  auto h = depthwise->forward(x).transpose(1, 2);  // [B, T, C]
  h = down->forward(torch::gelu(up->forward(norm->forward(h))));
  return x + (gamma * h).transpose(1, 2);
}

VocoderImpl::VocoderImpl(VocoderConfig cfg) : config(std::move(cfg)), frontend(config.frontend) {
  const int d = config.dim;
  embed = register_module(
      "embed", nn::Conv1d(nn::Conv1dOptions(config.frontend.mels, d, config.kernel).padding(config.kernel / 2)));
  embed_norm = register_module("embed_norm", nn::LayerNorm(nn::LayerNormOptions({d}).eps(1e-6)));
  for (int i = 0; i < config.layers; ++i) {
    blocks->push_back(ConvNeXtBlock(d, config.intermediate, config.kernel, 1.0 / config.layers));
  }
  register_module("blocks", blocks);
  out_norm = register_module("out_norm", nn::LayerNorm(nn::LayerNormOptions({d}).eps(1e-6)));
  head = register_module("head", nn::Linear(d, 2 * frontend.bins()));
}

torch::Tensor VocoderImpl::spectrum(const torch::Tensor& log_mel) {
  // The same scaling the autoencoder sees keeps the inputs near unit range.
  auto x = embed->forward(frontend.normalise(log_mel));
  x = embed_norm->forward(x.transpose(1, 2)).transpose(1, 2);
  for (const auto& b : *blocks) x = b->as<ConvNeXtBlock>()->forward(x);
  auto out = head->forward(out_norm->forward(x.transpose(1, 2))).transpose(1, 2);  // [B, 2F, T]
  auto parts = out.chunk(2, 1);
  // The clamp bounds exp() (e^7 ≈ 1100, above a full-scale sine's 512 with this window).
  auto mag = torch::exp(torch::clamp_max(parts[0], 7.0));
  return torch::complex(mag * torch::cos(parts[1]), mag * torch::sin(parts[1]));
}

torch::Tensor VocoderImpl::forward(const torch::Tensor& log_mel, int64_t length) {
  if (length < 1) throw ModelError("vocoder: the output length must be at least 1 sample");
  const bool single = log_mel.dim() == 2;
  auto mel = single ? log_mel.unsqueeze(0) : log_mel;
  if (mel.dim() != 3 || mel.size(1) != config.frontend.mels || mel.size(2) < 1) {
    throw ModelError("vocoder: expected a log-mel [mels=" + std::to_string(config.frontend.mels) +
                     ", T ≥ 1], got " + c10::str(log_mel.sizes()));
  }
  auto wave = frontend.istft(spectrum(fit_frames(mel, frontend.frames(length))), length);
  return single ? wave.squeeze(0) : wave;
}

torch::Tensor fit_frames(const torch::Tensor& mel, int64_t frames) {
  const int64_t have = mel.size(-1);
  if (have >= frames) return mel.narrow(-1, 0, frames);
  auto sizes = mel.sizes().vec();
  sizes.back() = frames - have;
  return torch::cat({mel, mel.narrow(-1, have - 1, 1).expand(sizes)}, -1);
}

void save_vocoder(const Vocoder& vocoder, const std::string& path) {
  try {
    adapters::save_state_dict(*vocoder, path,
                              {{"format", "tuneloop-model"},
                               {"kind", "vocoder"},
                               {"config", to_json(vocoder->config)},
                               {"version", "1"}});
  } catch (const adapters::ModelFileError& e) {
    throw ModelError(e.what());
  }
}

Vocoder load_vocoder(const std::string& path) {
  std::map<std::string, std::string> meta;
  std::map<std::string, torch::Tensor> tensors;
  try {
    tensors = adapters::load_tensors(path, &meta);
  } catch (const adapters::ModelFileError& e) {
    throw ModelError(path + ": not a readable vocoder file: " + e.what());
  }
  if (metadata_value(meta, "format", path) != "tuneloop-model" ||
      metadata_value(meta, "kind", path) != "vocoder") {
    throw ModelError(path + ": not a tuneloop vocoder file (format '" + meta["format"] + "', kind '" +
                     meta["kind"] + "')");
  }
  Vocoder v(vocoder_config_from_json(metadata_value(meta, "config", path), path));
  load_state(*v, tensors, path);
  v->eval();
  return v;
}

torch::Tensor multi_resolution_stft_loss(const torch::Tensor& output, const torch::Tensor& target) {
  torch::Tensor total;
  const std::vector<int64_t> sizes{512, 1024, 2048};
  for (int64_t n : sizes) {
    auto a = magnitude(stft_at(output, n));
    auto b = magnitude(stft_at(target, n));
    // Over the whole batch: a silent example's own norm would be ~0.
    auto sc = torch::norm(b - a) / (torch::norm(b) + 1e-7);
    auto log_l1 = torch::l1_loss(torch::log(a), torch::log(b));
    auto l = sc + log_l1;
    total = total.defined() ? total + l : l;
  }
  return total / static_cast<double>(sizes.size());
}

std::pair<double, double> spectral_distances(const MelFrontEnd& frontend, const torch::Tensor& output,
                                             const torch::Tensor& target) {
  torch::NoGradGuard ng;
  auto a = frontend.stft(output).abs();
  auto b = frontend.stft(target).abs();
  const double sc = (torch::norm(b - a) / (torch::norm(b) + 1e-9)).item<double>();
  auto pa = 10.0 * torch::log10(a.pow(2) + 1e-6);
  auto pb = 10.0 * torch::log10(b.pow(2) + 1e-6);
  const double lsd = torch::sqrt((pa - pb).pow(2).mean(0)).mean().item<double>();
  return {sc, lsd};
}

}  // namespace tuneloop::model
