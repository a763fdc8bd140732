#include "model/vocoder.hpp"

#include <array>
#include <cmath>
#include <nlohmann/json.hpp>
#include <tuple>
#include <utility>

#include "adapters/tensor_file.hpp"
#include "audio/audio.hpp"
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

constexpr std::array<int64_t, 3> kStftLossSizes{512, 1024, 2048};

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

// Outputs per bin of the head: log-magnitude and phase offset, then for the integrated
// phases the per-frame deviation, then for locking one weight per neighbour (and for
// hybrid one more, for no clock at all).
constexpr int kLockRadius = 2;  // Hann's main lobe: a steady tone spans ±2 bins
int lock_choices(const std::string& phase) {
  if (phase == "locked") return 2 * kLockRadius + 1;
  if (phase == "hybrid") return 2 * kLockRadius + 2;
  return 0;
}
int head_outputs_per_bin(const std::string& phase) {
  if (phase == "direct") return 2;
  return 3 + lock_choices(phase);
}

}  // namespace

void check_phase(const std::string& phase, const std::string& where) {
  if (phase != "direct" && phase != "integrated" && phase != "locked" && phase != "hybrid") {
    throw ModelError(where + ": vocoder phase '" + phase +
                     "' is not one of direct, integrated, locked, hybrid");
  }
}

std::string to_json(const VocoderConfig& c) {
  return json{{"frontend", json::parse(to_json(c.frontend))},
              {"dim", c.dim},
              {"intermediate", c.intermediate},
              {"layers", c.layers},
              {"kernel", c.kernel},
              {"phase", c.phase},
              {"head_hidden", c.head_hidden},
              {"refine", c.refine}}
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
  c.phase = "direct";  // files written before the key existed
  if (j.contains("phase")) {
    if (!j.at("phase").is_string())
      throw ModelError(where + ": vocoder metadata's 'phase' is not a string");
    c.phase = j.at("phase").get<std::string>();
  }
  c.head_hidden = 0;  // files written before the key existed
  if (j.contains("head_hidden")) read_fields<int>(j, {{"head_hidden", &c.head_hidden}}, where);
  c.refine = 0;  // files written before the key existed
  if (j.contains("refine")) read_fields<int>(j, {{"refine", &c.refine}}, where);
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
      c.layers > 64 || c.kernel < 1 || c.kernel > 63 || c.kernel % 2 == 0 || c.head_hidden < 0 ||
      c.head_hidden > 8192 || c.refine < 0 || c.refine > kMaxRefine) {
    throw ModelError(where + ": vocoder hyper-parameters out of range");
  }
  check_phase(c.phase, where);
  return c;
}

VocoderConfig fixture_vocoder_config() {
  VocoderConfig c;
  c.frontend = fixture_autoencoder_config().frontend;
  c.dim = 16;
  c.intermediate = 32;
  c.layers = 2;
  c.head_hidden = 24;
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
  check_phase(config.phase, "vocoder");
  const int d = config.dim;
  embed = register_module(
      "embed", nn::Conv1d(nn::Conv1dOptions(config.frontend.mels, d, config.kernel).padding(config.kernel / 2)));
  embed_norm = register_module("embed_norm", nn::LayerNorm(nn::LayerNormOptions({d}).eps(1e-6)));
  for (int i = 0; i < config.layers; ++i) {
    blocks->push_back(ConvNeXtBlock(d, config.intermediate, config.kernel, 1.0 / config.layers));
  }
  register_module("blocks", blocks);
  out_norm = register_module("out_norm", nn::LayerNorm(nn::LayerNormOptions({d}).eps(1e-6)));
  const int64_t bins = frontend.bins();
  const int64_t outputs = head_outputs_per_bin(config.phase) * bins;
  head = register_module("head", nn::Linear(d, outputs));
  if (config.head_hidden > 0) {
    head_up = register_module("head_up", nn::Linear(d, config.head_hidden));
    head_wide = register_module("head_wide", nn::Linear(config.head_hidden, outputs));
    // The branch starts silent: the vocoder starts as its linear head (and the head's
    // initial deviations and lock choices below hold), and a vocoder given the branch by
    // init_vocoder_from starts as the file it came from.
    torch::NoGradGuard ng;
    head_wide->weight.zero_();
    head_wide->bias.zero_();
  }
  if (config.phase != "direct") {
    torch::NoGradGuard ng;
    // Deviations start near zero (each bin runs at its own clock) and locking starts on the
    // bin itself (weight e⁴ against 1 for each neighbour).
    head->weight.narrow(0, 2 * bins, bins).mul_(0.01);
    head->bias.narrow(0, 2 * bins, bins).zero_();
    if (const int n = lock_choices(config.phase); n > 0) {
      head->weight.narrow(0, 3 * bins, n * bins).mul_(0.01);
      head->bias.narrow(0, 3 * bins, n * bins).zero_();
      head->bias.narrow(0, (3 + kLockRadius) * bins, bins).fill_(4.0);
    }
  }
}

torch::Tensor VocoderImpl::spectrum(const torch::Tensor& log_mel) {
  // The same scaling the autoencoder sees keeps the inputs near unit range.
  auto x = embed->forward(frontend.normalise(log_mel));
  x = embed_norm->forward(x.transpose(1, 2)).transpose(1, 2);
  for (const auto& b : *blocks) x = b->as<ConvNeXtBlock>()->forward(x);
  auto h = out_norm->forward(x.transpose(1, 2));  // [B, T, dim]
  auto out = head->forward(h);
  if (head_wide) out = out + head_wide->forward(torch::gelu(head_up->forward(h)));
  out = out.transpose(1, 2);  // [B, n·F, T]
  const int64_t bins = frontend.bins();
  // The clamp bounds exp() (e^7 ≈ 1100, above a full-scale sine's 512 with this window).
  auto mag = torch::exp(torch::clamp_max(out.narrow(1, 0, bins), 7.0));
  auto offset = out.narrow(1, bins, bins);
  auto re = mag * torch::cos(offset), im = mag * torch::sin(offset);
  if (config.phase == "direct") return torch::complex(re, im);

  // A network that sees frames one hop apart the same way gives a steady tone the same
  // phase every frame; a tone between the bins' own frequencies needs its phase to turn
  // by 2π·f·hop/rate a frame. So each bin runs a clock: its own frequency's turn
  // (2π·k·hop/n_fft a frame, kept exact in integers) plus the running sum of a predicted
  // deviation (float64 so that long tracks keep their precision).
  const int64_t frames = out.size(2), n_fft = config.frontend.n_fft, hop = config.frontend.hop;
  auto k = torch::arange(bins, torch::kLong).unsqueeze(1);
  auto t = torch::arange(frames, torch::kLong).unsqueeze(0);
  auto clock = ((k * t * hop) % n_fft).to(torch::kFloat32) * static_cast<float>(2.0 * M_PI / n_fft);
  auto drift = torch::cumsum(out.narrow(1, 2 * bins, bins).to(torch::kFloat64), 2)
                   .remainder(2.0 * M_PI)
                   .to(out.scalar_type());
  auto run = clock.to(out.device()) + drift;  // [B, F, T]
  auto run_re = torch::cos(run), run_im = torch::sin(run);
  if (const int64_t n = lock_choices(config.phase); n > 0) {
    // Phase locking: bin k takes the running phase of bin k + j, j ∈ [−2, 2], with soft
    // weights, so all the bins of one tone turn together whatever their histories. Hybrid
    // adds a sixth choice, no clock (the offset alone, as a direct phase), for the frames
    // where a running phase's history is in the way: onsets, whose bins must line up.
    auto w =
        torch::softmax(out.narrow(1, 3 * bins, n * bins).view({out.size(0), n, bins, frames}), 1);
    auto pad_re = torch::constant_pad_nd(run_re, {0, 0, kLockRadius, kLockRadius});
    auto pad_im = torch::constant_pad_nd(run_im, {0, 0, kLockRadius, kLockRadius});
    torch::Tensor lr, li;
    for (int64_t j = 0; j < 2 * kLockRadius + 1; ++j) {
      auto wj = w.select(1, j);
      auto r = wj * pad_re.narrow(1, j, bins), i = wj * pad_im.narrow(1, j, bins);
      lr = lr.defined() ? lr + r : r;
      li = li.defined() ? li + i : i;
    }
    if (n > 2 * kLockRadius + 1) lr = lr + w.select(1, n - 1);  // the free phasor, 1 + 0i
    run_re = lr;
    run_im = li;
  }
  return torch::complex(re * run_re - im * run_im, re * run_im + im * run_re);
}

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// A trunk tensor of a vocoder made `factor` times as wide. Every trunk tensor has the
// channels on its axis 0 (weights of the layers that write them, biases, norms, layer
// scales): copied. The pointwise layers and the head's input layers read channels on axis 1:
// copied in random shares (0.5–1.5, normalised) that add up to 1 over the copies.
torch::Tensor widen_trunk_tensor(const std::string& name, const torch::Tensor& t, int64_t factor) {
  auto w = t;
  if (ends_with(name, "up.weight") || ends_with(name, "down.weight") || name == "head.weight") {
    auto shares = torch::rand({factor, w.size(0), w.size(1)}) + 0.5;
    shares = shares / shares.sum(0, true);
    std::vector<torch::Tensor> parts;
    for (int64_t j = 0; j < factor; ++j) parts.push_back(w * shares[j]);
    w = torch::cat(parts, 1);
  }
  if (name.rfind("head", 0) != 0) w = torch::cat(std::vector<torch::Tensor>(factor, w), 0);
  return w;
}

bool differ_only_in_bands(FrontEndConfig a, const FrontEndConfig& b) {
  a.mels = b.mels;
  return a == b;
}

// A head tensor (rows: groups of one output per STFT bin — magnitude, phase offset, …) of a
// vocoder at `ratio` times the source's rate, with the same frames: bin k is the same
// frequency in both (at_rate), so each group's first src_bins rows carry over, and the
// magnitudes grow by the ratio (a window of ratio × the samples). The bins above the source's
// band keep their start but for their magnitude, which starts near silence (e^-8).
void copy_head_bins(const std::string& name, const torch::Tensor& src, int64_t src_bins,
                    torch::Tensor& dst, int64_t dst_bins, double ratio) {
  const int64_t groups = std::min(src.size(0) / src_bins, dst.size(0) / dst_bins);
  const bool bias = ends_with(name, ".bias");
  const bool wide = name.rfind("head_wide.", 0) == 0;
  for (int64_t g = 0; g < groups; ++g) {
    auto out = dst.narrow(0, g * dst_bins, dst_bins);
    out.narrow(0, 0, src_bins).copy_(src.narrow(0, g * src_bins, src_bins));
    if (g != 0) continue;
    if (bias && !wide) out.narrow(0, 0, src_bins).add_(std::log(ratio));
    auto above = out.narrow(0, src_bins, dst_bins - src_bins);
    if (wide || !bias) above.zero_();
    else above.fill_(-8.0);
  }
}

// A waveform [N] at `from` Hz brought to `to` Hz.
torch::Tensor at_sample_rate(const torch::Tensor& wave, int from, int to) {
  if (from == to) return wave;
  audio::Audio a;
  a.sample_rate = from;
  const auto w = wave.contiguous().to(torch::kFloat32);
  a.samples.assign(w.data_ptr<float>(), w.data_ptr<float>() + w.numel());
  auto r = audio::resample(a, to);
  return torch::from_blob(r.samples.data(), {static_cast<int64_t>(r.samples.size())}, torch::kFloat32)
      .clone();
}

}  // namespace

BandMap fit_band_map(const FrontEndConfig& src, const FrontEndConfig& dst,
                     const std::vector<torch::Tensor>& waves, const std::string& where) {
  if (!differ_only_in_bands(src, dst) && !at_another_rate(src, dst)) {
    throw ModelError(where + ": its front end differs from the vocoder's in more than its bands "
                     "and sample rate (a frame and its window must last as long)");
  }
  torch::NoGradGuard ng;
  const MelFrontEnd from(src), to(dst);
  std::vector<torch::Tensor> xs, ys;
  for (const auto& w : waves) {
    auto x = to.normalise(to.log_mel(w));                                         // [dst mels, T]
    auto y = from.normalise(from.log_mel(at_sample_rate(w, dst.sample_rate, src.sample_rate)));
    const int64_t frames = std::min(x.size(1), y.size(1));  // resampling may round a frame off
    xs.push_back(x.narrow(1, 0, frames).transpose(0, 1));   // [T, dst mels]
    ys.push_back(y.narrow(1, 0, frames).transpose(0, 1));   // [T, src mels]
  }
  if (xs.empty()) throw ModelError(where + ": no audio to fit the band map on");
  auto x = torch::cat(xs).to(torch::kFloat64);
  auto y = torch::cat(ys).to(torch::kFloat64);
  if (x.size(0) <= dst.mels) {
    throw ModelError(where + ": too few frames (" + std::to_string(x.size(0)) + ") to fit a map from " +
                     std::to_string(dst.mels) + " bands");
  }
  x = torch::cat({x, torch::ones({x.size(0), 1}, x.options())}, 1);
  // Ridge regression; the small penalty keeps bands that never vary (silence) from blowing up.
  auto gram = x.t().mm(x) + 1e-3 * static_cast<double>(x.size(0)) *
                                torch::eye(x.size(1), x.options()) / static_cast<double>(x.size(1));
  auto coef = torch::linalg_solve(gram, x.t().mm(y));  // [dst mels + 1, src mels]
  BandMap map;
  map.weight = coef.narrow(0, 0, dst.mels).t().contiguous().to(torch::kFloat32);
  map.bias = coef[dst.mels].contiguous().to(torch::kFloat32);
  map.residual = std::sqrt((x.mm(coef) - y).pow(2).mean().item<double>());
  return map;
}

void init_vocoder_from(Vocoder& dst, const Vocoder& src, const std::string& where,
                       const BandMap* bands) {
  const auto& a = dst->config;
  const auto& b = src->config;
  const int factor = b.dim > 0 ? a.dim / b.dim : 0;
  const bool rerate = a.frontend.sample_rate != b.frontend.sample_rate;
  const bool remap = a.frontend.mels != b.frontend.mels || rerate;
  const bool fits = differ_only_in_bands(a.frontend, b.frontend) || at_another_rate(a.frontend, b.frontend);
  if (remap && (bands == nullptr || !fits ||
                bands->weight.sizes() != torch::IntArrayRef{b.frontend.mels, a.frontend.mels})) {
    throw ModelError(where + ": it reads " + std::to_string(b.frontend.mels) + " mel bands at " +
                     std::to_string(b.frontend.sample_rate) + " Hz, the vocoder being trained " +
                     std::to_string(a.frontend.mels) + " at " + std::to_string(a.frontend.sample_rate) +
                     " Hz" + (bands == nullptr ? " (and no band map was fitted)" : " (the band map does not fit)"));
  }
  if (!fits || factor < 1 || a.dim != factor * b.dim ||
      a.intermediate != factor * b.intermediate || a.layers != b.layers || a.kernel != b.kernel ||
      (b.head_hidden != 0 && a.head_hidden != b.head_hidden)) {
    throw ModelError(where + ": its sizes or front end differ from the vocoder being trained");
  }
  torch::NoGradGuard ng;
  const int64_t src_bins = src->frontend.bins(), dst_bins = dst->frontend.bins();
  if (dst_bins < src_bins) {
    throw ModelError(where + ": a vocoder can start from one at its own or a lower sample rate, not a higher one");
  }
  auto from = src->named_parameters();
  for (auto& p : dst->named_parameters()) {
    const auto* found = from.find(p.key());
    if (found == nullptr) continue;
    auto mapped = *found;
    if (remap && p.key() == "embed.weight") {
      // Reading src ≈ M·dst + c: W·src = (W·M)·dst + W·c, the constant going to the bias.
      mapped = torch::einsum("oik,ij->ojk", {*found, bands->weight});
    } else if (remap && p.key() == "embed.bias") {
      mapped = *found + torch::einsum("oik,i->o", {from["embed.weight"], bands->bias});
    }
    const auto source = factor > 1 ? widen_trunk_tensor(p.key(), mapped, factor) : mapped;
    const bool head = p.key().rfind("head.", 0) == 0 || p.key().rfind("head_wide.", 0) == 0;
    if (source.sizes() == p.value().sizes() && !rerate) {
      p.value().copy_(source);
    } else if (head && rerate) {
      copy_head_bins(p.key(), source, src_bins, p.value(), dst_bins,
                     static_cast<double>(a.frontend.sample_rate) / b.frontend.sample_rate);
    } else if (head && source.size(0) <= p.value().size(0)) {
      // The head's rows only grow from phase to phase (direct → integrated → locked →
      // hybrid append theirs), so the source's rows carry over and the rest keep their start.
      p.value().narrow(0, 0, source.size(0)).copy_(source);
    } else if (source.sizes() == p.value().sizes()) {
      p.value().copy_(source);
    } else {
      throw ModelError(where + ": tensor '" + p.key() + "' does not fit the vocoder being trained");
    }
  }
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

torch::Tensor VocoderImpl::render(const torch::Tensor& log_mel, int64_t length) {
  auto wave = forward(log_mel, length);
  if (config.refine == 0) return wave;
  return frontend.fit_to_mel(wave, fit_frames(log_mel, frontend.frames(length)), config.refine);
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

torch::Tensor multi_resolution_stft_loss(const torch::Tensor& output, const torch::Tensor& target,
                                         double sc_weight) {
  torch::Tensor total;
  for (int64_t n : kStftLossSizes) {
    auto a = magnitude(stft_at(output, n));
    auto b = magnitude(stft_at(target, n));
    // Over the whole batch: a silent example's own norm would be ~0.
    auto sc = torch::norm(b - a) / (torch::norm(b) + 1e-7);
    auto log_l1 = torch::l1_loss(torch::log(a), torch::log(b));
    auto l = sc_weight * sc + log_l1;
    total = total.defined() ? total + l : l;
  }
  return total / static_cast<double>(kStftLossSizes.size());
}

StftLossSums multi_resolution_stft_sums(const torch::Tensor& output, const torch::Tensor& target) {
  StftLossSums s;
  for (int64_t n : kStftLossSizes) {
    auto a = magnitude(stft_at(output, n));
    torch::Tensor b;
    {
      torch::NoGradGuard ng;
      b = magnitude(stft_at(target, n));
    }
    s.error_squares.push_back((b - a).pow(2).sum());
    s.target_squares.push_back(b.pow(2).sum().item<double>());
    s.log_errors.push_back((torch::log(a) - torch::log(b)).abs().sum());
    s.counts.push_back(b.numel());
  }
  return s;
}

namespace {

// z1 · conj(z0) for complex tensors held as [.., 2] (real, imaginary).
std::pair<torch::Tensor, torch::Tensor> phase_step(const torch::Tensor& re1,
                                                   const torch::Tensor& im1,
                                                   const torch::Tensor& re0,
                                                   const torch::Tensor& im0) {
  return {re1 * re0 + im1 * im0, im1 * re0 - re1 * im0};
}

}  // namespace

PhaseLossSums phase_derivative_sums(const torch::Tensor& output, const torch::Tensor& target,
                                    int64_t n_fft) {
  auto x = torch::view_as_real(stft_at(output, n_fft));  // [B, F, T, 2]
  torch::Tensor y;
  {
    torch::NoGradGuard ng;
    y = torch::view_as_real(stft_at(target, n_fft));
  }
  PhaseLossSums s;
  for (int64_t dim : {2, 1}) {  // along time, then along frequency
    const int64_t n = x.size(dim);
    auto head = [&](const torch::Tensor& t) { return t.narrow(dim, 1, n - 1); };
    auto tail = [&](const torch::Tensor& t) { return t.narrow(dim, 0, n - 1); };
    auto xr = x.select(-1, 0), xi = x.select(-1, 1);
    auto [ar, ai] = phase_step(head(xr), head(xi), tail(xr), tail(xi));
    torch::Tensor br, bi, b_abs;
    {
      torch::NoGradGuard ng;
      auto yr = y.select(-1, 0), yi = y.select(-1, 1);
      std::tie(br, bi) = phase_step(head(yr), head(yi), tail(yr), tail(yi));
      b_abs = torch::sqrt(br.pow(2) + bi.pow(2));
    }
    // Re(a · conj(b)) / |a| = |b| · cos(angle(a) − angle(b)); the floor keeps the gradient
    // finite where the output is silent.
    auto a_abs = torch::sqrt(ar.pow(2) + ai.pow(2) + 1e-12);
    auto error = (b_abs - (ar * br + ai * bi) / a_abs).sum();
    s.error = s.error.defined() ? s.error + error : error;
    s.weight += b_abs.sum().item<double>();
  }
  return s;
}

torch::Tensor phase_derivative_loss(const torch::Tensor& output, const torch::Tensor& target,
                                    int64_t n_fft) {
  const auto s = phase_derivative_sums(output, target, n_fft);
  return s.error / (s.weight + 1e-12);
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
