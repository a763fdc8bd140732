#include "model/networks.hpp"

#include <cmath>

namespace tuneloop::model {
namespace {

namespace nn = torch::nn;
namespace F = torch::nn::functional;
using adapters::LoraConv2d;
using adapters::LoraLinear;

LoraConv2d conv(int in, int out, int kernel, int stride = 1) {
  return LoraConv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2));
}

int groups_for(int channels) {
  for (int g : {8, 4, 2}) {
    if (channels % g == 0) return g;
  }
  return 1;
}

torch::Tensor upsample2(const torch::Tensor& x) {
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .scale_factor(std::vector<double>{2.0, 2.0})
                               .mode(torch::kNearest));
}

}  // namespace

ResBlockImpl::ResBlockImpl(int in, int out, int emb_dim, bool norm) {
  if (norm) {
    norm1 = register_module("norm1", nn::GroupNorm(groups_for(in), in));
    norm2 = register_module("norm2", nn::GroupNorm(groups_for(out), out));
  }
  conv1 = register_module("conv1", conv(in, out, 3));
  conv2 = register_module("conv2", conv(out, out, 3));
  if (in != out) skip = register_module("skip", conv(in, out, 1));
  if (emb_dim > 0) emb_proj = register_module("emb_proj", LoraLinear(nn::LinearOptions(emb_dim, out)));
}

torch::Tensor ResBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& emb) {
  auto h = norm1 ? norm1->forward(x) : x;
  h = conv1->forward(torch::silu(h));
  if (emb_proj && emb.defined()) {
    h = h + emb_proj->forward(torch::silu(emb)).unsqueeze(-1).unsqueeze(-1);
  }
  h = norm2 ? norm2->forward(h) : h;
  h = conv2->forward(torch::silu(h));
  return (skip ? skip->forward(x) : x) + h;
}

AutoencoderImpl::AutoencoderImpl(AutoencoderConfig cfg) : config(std::move(cfg)) {
  const auto& ch = config.channels;
  const int levels = static_cast<int>(ch.size());
  // No conv ever runs at the mel image's full resolution: the encoder folds 2×2 pixels into
  // channels first and the decoder predicts them last, which keeps decoding cheap.
  const int folded = 4 * config.band_fold;
  enc_in = register_module("enc_in", conv(folded, ch[0], 3));
  for (int l = 0; l < levels; ++l) {
    enc_blocks->push_back(ResBlock(ch[l], ch[l], 0, false));
    if (l + 1 < levels) enc_down->push_back(conv(ch[l], ch[l + 1], 3, 2));
  }
  register_module("enc_blocks", enc_blocks);
  register_module("enc_down", enc_down);
  enc_mid = register_module("enc_mid", ResBlock(ch.back(), ch.back(), 0, false));
  enc_out = register_module("enc_out", conv(ch.back(), config.latent_channels, 3));

  dec_in = register_module("dec_in", conv(config.latent_channels, ch.back(), 3));
  dec_mid = register_module("dec_mid", ResBlock(ch.back(), ch.back(), 0, false));
  for (int l = levels - 1; l >= 0; --l) {
    dec_blocks->push_back(ResBlock(ch[l], ch[l], 0, false));
    if (l > 0) dec_up->push_back(conv(ch[l], ch[l - 1], 3));
  }
  register_module("dec_blocks", dec_blocks);
  register_module("dec_up", dec_up);
  dec_out = register_module("dec_out", conv(ch[0], folded, 3));
}

torch::Tensor fold_bands(const torch::Tensor& mel, int64_t f) {
  if (f == 1) return mel;
  const auto s = mel.sizes();
  return mel.reshape({s[0], s[2] / f, f, s[3]}).permute({0, 2, 1, 3});
}

torch::Tensor unfold_bands(const torch::Tensor& x, int64_t f) {
  if (f == 1) return x;
  const auto s = x.sizes();
  return x.permute({0, 2, 1, 3}).reshape({s[0], 1, s[2] * f, s[3]});
}

torch::Tensor AutoencoderImpl::encode(const torch::Tensor& mel) {
  auto h = enc_in->forward(torch::pixel_unshuffle(fold_bands(mel, config.band_fold), 2));
  for (size_t l = 0; l < enc_blocks->size(); ++l) {
    h = enc_blocks[l]->as<ResBlock>()->forward(h);
    if (l < enc_down->size()) h = enc_down[l]->as<adapters::LoraConv2d>()->forward(torch::silu(h));
  }
  h = enc_mid->forward(h);
  return enc_out->forward(torch::silu(h));
}

torch::Tensor AutoencoderImpl::decode(const torch::Tensor& latent) {
  auto h = dec_in->forward(latent);
  h = dec_mid->forward(h);
  for (size_t i = 0; i < dec_blocks->size(); ++i) {
    h = dec_blocks[i]->as<ResBlock>()->forward(h);
    if (i < dec_up->size()) {
      h = dec_up[i]->as<adapters::LoraConv2d>()->forward(upsample2(torch::silu(h)));
    }
  }
  return unfold_bands(torch::pixel_shuffle(dec_out->forward(torch::silu(h)), 2), config.band_fold);
}

torch::Tensor timestep_embedding(const torch::Tensor& t, int dim) {
  const int half = dim / 2;
  auto freqs = torch::exp(-std::log(10000.0) *
                          torch::arange(half, torch::TensorOptions().dtype(torch::kFloat32)) /
                          half)
                   .to(t.device());
  auto args = (t.to(torch::kFloat32) * 1000.0).unsqueeze(1) * freqs.unsqueeze(0);
  return torch::cat({torch::sin(args), torch::cos(args)}, 1);
}

DenoiserImpl::DenoiserImpl(DenoiserConfig cfg) : config(std::move(cfg)) {
  const auto& ch = config.channels;
  const int levels = static_cast<int>(ch.size());
  emb_dim = 4 * ch[0];
  time1 = register_module("time1", LoraLinear(nn::LinearOptions(ch[0], emb_dim)));
  time2 = register_module("time2", LoraLinear(nn::LinearOptions(emb_dim, emb_dim)));
  if (!config.tags.empty()) {
    tag_embed = register_module(
        "tag_embed",
        LoraLinear(nn::LinearOptions(static_cast<int64_t>(config.tags.size()), emb_dim).bias(false)));
  }
  conv_in = register_module("conv_in", conv(config.latent_channels, ch[0], 3));

  std::vector<int> skips{ch[0]};
  int width = ch[0];
  for (int l = 0; l < levels; ++l) {
    for (int b = 0; b < config.blocks; ++b) {
      down_blocks->push_back(ResBlock(width, ch[l], emb_dim, true));
      width = ch[l];
      skips.push_back(width);
    }
    if (l + 1 < levels) {
      downsamplers->push_back(conv(width, width, 3, 2));
      skips.push_back(width);
    }
  }
  mid1 = register_module("mid1", ResBlock(width, width, emb_dim, true));
  mid2 = register_module("mid2", ResBlock(width, width, emb_dim, true));
  for (int l = levels - 1; l >= 0; --l) {
    for (int b = 0; b < config.blocks + 1; ++b) {
      const int s = skips.back();
      skips.pop_back();
      up_blocks->push_back(ResBlock(width + s, ch[l], emb_dim, true));
      width = ch[l];
    }
    if (l > 0) {
      // Narrowing while upsampling keeps the costly full-resolution level at ch[0] wide.
      upsamplers->push_back(conv(width, ch[l - 1], 3));
      width = ch[l - 1];
    }
  }
  register_module("down_blocks", down_blocks);
  register_module("downsamplers", downsamplers);
  register_module("up_blocks", up_blocks);
  register_module("upsamplers", upsamplers);
  out_norm = register_module("out_norm", nn::GroupNorm(groups_for(width), width));
  conv_out = register_module("conv_out", conv(width, config.latent_channels, 3));
  // Starting from a zero output makes the first steps predict v = 0, which is stable.
  torch::NoGradGuard no_grad;
  conv_out->base_weight().zero_();
}

torch::Tensor DenoiserImpl::forward(const torch::Tensor& x, const torch::Tensor& t,
                                    const torch::Tensor& tags) {
  const int levels = static_cast<int>(config.channels.size());
  auto emb = time2->forward(torch::silu(time1->forward(timestep_embedding(t, config.channels[0]))));
  if (tag_embed && tags.defined()) emb = emb + tag_embed->forward(tags.to(emb.dtype()));

  std::vector<torch::Tensor> skips;
  auto h = conv_in->forward(x);
  skips.push_back(h);
  size_t block = 0;
  for (int l = 0; l < levels; ++l) {
    for (int b = 0; b < config.blocks; ++b) {
      h = down_blocks[block++]->as<ResBlock>()->forward(h, emb);
      skips.push_back(h);
    }
    if (l + 1 < levels) {
      h = downsamplers[l]->as<adapters::LoraConv2d>()->forward(h);
      skips.push_back(h);
    }
  }
  h = mid2->forward(mid1->forward(h, emb), emb);
  block = 0;
  size_t up = 0;
  for (int l = levels - 1; l >= 0; --l) {
    for (int b = 0; b < config.blocks + 1; ++b) {
      h = torch::cat({h, skips.back()}, 1);
      skips.pop_back();
      h = up_blocks[block++]->as<ResBlock>()->forward(h, emb);
    }
    if (l > 0) h = upsamplers[up++]->as<adapters::LoraConv2d>()->forward(upsample2(h));
  }
  return conv_out->forward(torch::silu(out_norm->forward(h)));
}

int64_t parameter_count(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

}  // namespace tuneloop::model
