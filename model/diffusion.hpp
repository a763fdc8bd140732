#pragma once
// Continuous-time diffusion with a cosine schedule and v-prediction: x_t = α x0 + σ ε with
// α = cos(πt/2), σ = sin(πt/2), and the denoiser predicts v = α ε − σ x0.
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "model/networks.hpp"

namespace tuneloop::model {

inline torch::Tensor alpha_of(const torch::Tensor& t) { return torch::cos(t * (M_PI / 2)); }
inline torch::Tensor sigma_of(const torch::Tensor& t) { return torch::sin(t * (M_PI / 2)); }
double alpha_of(double t);
double sigma_of(double t);

// Classifier-free-guidance training drops: each tag with p_tag, all tags with p_all.
torch::Tensor drop_tags(const torch::Tensor& tags, double p_tag = 0.1, double p_all = 0.1);

// v-prediction MSE of the denoiser on clean latents x0 [B, C, H, L] with multi-hot tags
// [B, V] (may be undefined), at uniformly random times. Per-example weights [B] optional.
torch::Tensor diffusion_loss(Denoiser& denoiser, const torch::Tensor& x0, const torch::Tensor& tags,
                             const torch::Tensor& weights = {});

// The times [B] and noise (like x0) diffusion_loss draws, drawn ahead: the same draws from
// the same generator state, so a batch split across threads trains as the whole batch would.
struct DiffusionDraws {
  torch::Tensor t, noise;
};
DiffusionDraws draw_diffusion_noise(const torch::Tensor& x0);
// The untagged, unweighted loss on given draws.
torch::Tensor diffusion_loss(Denoiser& denoiser, const torch::Tensor& x0,
                             const DiffusionDraws& draws);
// Each example's loss [B] on given draws, with tags [B, V] (may be undefined).
torch::Tensor diffusion_loss_per_example(Denoiser& denoiser, const torch::Tensor& x0,
                                         const torch::Tensor& tags, const DiffusionDraws& draws);

enum class Solver { ddim, dpmpp_2m };
// Throws ModelError on an unknown name ("ddim", "dpm++2m").
Solver solver_from_name(const std::string& name);

// Where the solver's steps fall between t_start and 0: evenly in t, or Karras et al.'s
// schedule (evenly in (σ/α)^(1/7), so more of them at low noise).
enum class Schedule { uniform, karras };
// Throws ModelError on an unknown name ("uniform", "karras").
Schedule schedule_from_name(const std::string& name);
// The steps + 1 times t_start = t_0 > t_1 > ... > t_steps = 0 the solver visits.
std::vector<double> sample_times(double t_start, int steps, Schedule schedule);

struct SampleOptions {
  int steps = 10;
  Schedule schedule = Schedule::uniform;
  double guidance = 3.0;          // used only when tags has any entry set
  Solver solver = Solver::dpmpp_2m;
  uint64_t seed = 0;
  std::optional<torch::Tensor> init;  // seed latent [1, C, H, L] (img2img)
  double strength = 1.0;           // img2img: start at t = strength; 0 returns init
  // > 0: stop after this many solver steps and return the clean latent predicted there (a
  // cheap preview of where the full run is heading; the same draws as the full run).
  int stop_after = 0;
};

// Draws a latent of shape [1, C, H, length] from the denoiser (in eval mode, no grad).
// tags: multi-hot [1, V] or undefined for none. Deterministic for a seed.
torch::Tensor sample(Denoiser& denoiser, int64_t length, const torch::Tensor& tags,
                     const SampleOptions& options);

// Spherical interpolation of directions with linear interpolation of norms, so the result's
// norm lies between the inputs'. a and b must have the same shape.
torch::Tensor slerp(const torch::Tensor& a, const torch::Tensor& b, double t);
// Equal-weight merge of several latents (cropped to the shortest along the last axis).
// Throws ModelError on an empty list or mismatched leading shapes.
torch::Tensor slerp_all(const std::vector<torch::Tensor>& latents);

}  // namespace tuneloop::model
