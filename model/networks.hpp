#pragma once
// The autoencoder (mel ↔ latent) and the denoiser (a small 2-D UNet over the latent).
// Every conv and linear layer is a LoRA layer so that any of them can carry an adapter.
#include <torch/torch.h>

#include "adapters/lora.hpp"
#include "model/hparams.hpp"

namespace tuneloop::model {

// A residual block: SiLU → conv → SiLU → conv (+ a 1×1 skip when the width changes), with
// the time/tag embedding added between the convs when emb_dim > 0, and GroupNorm when norm.
struct ResBlockImpl : torch::nn::Module {
  ResBlockImpl(int in, int out, int emb_dim, bool norm);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb = {});
  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  adapters::LoraConv2d conv1{nullptr}, conv2{nullptr}, skip{nullptr};
  adapters::LoraLinear emb_proj{nullptr};
};
TORCH_MODULE(ResBlock);

// [B, 1, M, T] → [B, f, M/f, T]: band f·r + i goes to channel i, row r (the autoencoder's
// band fold). unfold_bands is its inverse.
torch::Tensor fold_bands(const torch::Tensor& mel, int64_t f);
torch::Tensor unfold_bands(const torch::Tensor& folded, int64_t f);

// Plain (not variational) convolutional autoencoder. Input: normalised log-mel
// [B, 1, mels, T] with T a multiple of factor(); latent [B, latent_channels,
// mels/(band_fold·f), T/f].

struct AutoencoderImpl : torch::nn::Module {
  explicit AutoencoderImpl(AutoencoderConfig config);
  torch::Tensor encode(const torch::Tensor& mel);
  torch::Tensor decode(const torch::Tensor& latent);
  torch::Tensor forward(const torch::Tensor& mel) { return decode(encode(mel)); }

  AutoencoderConfig config;
  // The model hash of the autoencoder whose encoder (and so whose latents) this one shares,
  // when only its decoder was trained on from that one ("" = its own latents): a denoiser made
  // for that autoencoder fits this one. See latent_identity() (model_files.hpp).
  std::string latent_of;
  // The latent identity of the autoencoder whose latents this one was trained to stay near
  // (train-autoencoder --latent-anchor): a denoiser made for that one may be trained on with
  // this one (its latents moved a little), but does not generate with it.
  std::string anchored_to;
  adapters::LoraConv2d enc_in{nullptr}, enc_out{nullptr}, dec_in{nullptr}, dec_out{nullptr};
  torch::nn::ModuleList enc_blocks, enc_down, dec_blocks, dec_up;
  ResBlock enc_mid{nullptr}, dec_mid{nullptr};
};
TORCH_MODULE(Autoencoder);

// Sinusoidal embedding [B, dim] of diffusion times t ∈ [0, 1] ([B]).
torch::Tensor timestep_embedding(const torch::Tensor& t, int dim);

// UNet predicting v from a noisy latent [B, C, H, L] (L a multiple of length_multiple()),
// the diffusion time t [B] in [0, 1] and a multi-hot tag vector [B, V] (V = tag count).
struct DenoiserImpl : torch::nn::Module {
  explicit DenoiserImpl(DenoiserConfig config);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& tags);

  DenoiserConfig config;
  int emb_dim = 0;
  adapters::LoraLinear time1{nullptr}, time2{nullptr}, tag_embed{nullptr};
  adapters::LoraConv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList down_blocks, downsamplers, up_blocks, upsamplers;
  ResBlock mid1{nullptr}, mid2{nullptr};
  torch::nn::GroupNorm out_norm{nullptr};
};
TORCH_MODULE(Denoiser);

int64_t parameter_count(const torch::nn::Module& module);

}  // namespace tuneloop::model
