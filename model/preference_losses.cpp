#include "model/preference_losses.hpp"

#include <algorithm>

#include "adapters/lora.hpp"

namespace tuneloop::model {

ReferenceScope::ReferenceScope(Denoiser& denoiser, const std::string& adapter)
    : denoiser_(denoiser), adapter_(adapter) {
  adapters::set_active_adapter(*denoiser_, "");
}

ReferenceScope::~ReferenceScope() {
  try {
    adapters::set_active_adapter(*denoiser_, adapter_);
  } catch (...) {
  }
}

torch::Tensor reference_losses(Denoiser& denoiser, const std::string& adapter,
                               const torch::Tensor& x0, const DiffusionDraws& draws) {
  torch::NoGradGuard ng;
  const ReferenceScope reference{denoiser, adapter};
  return diffusion_loss_per_example(denoiser, x0, torch::Tensor(), draws);
}

PreferenceLoss kto_objective(const torch::Tensor& ref, const torch::Tensor& own,
                             const torch::Tensor& desirable, double beta) {
  const auto reward = ref - own;
  // The reference point: how far the adapter has moved from the base on this batch as a
  // whole (Diffusion-KTO's KL estimate), never below 0.
  const auto drift = reward.mean().clamp_min(0.0).detach();
  const auto sign = desirable.to(reward.options()) * 2.0 - 1.0;  // +1 desirable, −1 not
  PreferenceLoss out;
  out.loss = (1.0 - torch::sigmoid(beta * sign * (reward - drift))).mean();
  out.accuracy = ((sign * (reward - drift)).detach() > 0).to(torch::kFloat32).mean().item<double>();
  return out;
}

PreferenceLoss kto_loss(Denoiser& denoiser, const std::string& adapter, const torch::Tensor& x0,
                        const torch::Tensor& desirable, const DiffusionDraws& draws, double beta) {
  const auto ref = reference_losses(denoiser, adapter, x0, draws);
  const auto own = diffusion_loss_per_example(denoiser, x0, torch::Tensor(), draws);
  return kto_objective(ref, own, desirable, beta);
}

PreferenceLoss dpo_objective(const torch::Tensor& ref, const torch::Tensor& own, double beta) {
  const auto reward = ref - own;
  const int64_t n = reward.size(0) / 2;
  const auto margin = reward.slice(0, 0, n) - reward.slice(0, n, 2 * n);
  PreferenceLoss out;
  out.loss = -torch::log_sigmoid(beta * margin).mean();
  out.accuracy = (margin.detach() > 0).to(torch::kFloat32).mean().item<double>();
  return out;
}

DiffusionDraws paired_draws(const DiffusionDraws& draws) {
  return {torch::cat({draws.t, draws.t}), torch::cat({draws.noise, draws.noise})};
}

PreferenceLoss dpo_loss(Denoiser& denoiser, const std::string& adapter, const torch::Tensor& liked,
                        const torch::Tensor& disliked, const DiffusionDraws& draws, double beta) {
  const auto x0 = torch::cat({liked, disliked});
  const auto both = paired_draws(draws);
  const auto ref = reference_losses(denoiser, adapter, x0, both);
  const auto own = diffusion_loss_per_example(denoiser, x0, torch::Tensor(), both);
  return dpo_objective(ref, own, beta);
}

double calibrated_beta(Denoiser& denoiser, const std::string& adapter, const torch::Tensor& liked,
                       const torch::Tensor& disliked, const DiffusionDraws& draws) {
  const auto x0 = torch::cat({liked, disliked});
  const auto ref = reference_losses(denoiser, adapter, x0, paired_draws(draws));
  const int64_t n = liked.size(0);
  const auto diff = ref.slice(0, 0, n) - ref.slice(0, n, 2 * n);
  const double sd = n > 1 ? diff.std().item<double>() : 0.0;
  return 1.0 / std::max(sd, 1e-3);
}

}  // namespace tuneloop::model
