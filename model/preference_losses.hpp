#pragma once
// Preference objectives for fine-tuning the denoiser's LoRA adapter against a reference:
// the same denoiser with the adapter switched off (the base model). The implicit reward of
// an example is how much better the adapter denoises it than the reference does,
// r = loss_ref − loss_θ at shared noise and time (Diffusion-DPO, Diffusion-KTO).
#include <string>

#include <torch/torch.h>

#include "model/diffusion.hpp"

namespace tuneloop::model {

struct PreferenceLoss {
  torch::Tensor loss;     // scalar, with gradients for the adapter's factors
  double accuracy = 0;    // share of examples (kto) or pairs (dpo) the adapter orders right
};

// The reference model for the scope: switches `adapter` off on construction and back on at
// the end of the scope, however it ends.
class ReferenceScope {
 public:
  ReferenceScope(Denoiser& denoiser, const std::string& adapter);
  ~ReferenceScope();
  ReferenceScope(const ReferenceScope&) = delete;
  ReferenceScope& operator=(const ReferenceScope&) = delete;

 private:
  Denoiser& denoiser_;
  std::string adapter_;
};

// Per-example v-prediction losses of the reference (adapter `adapter` switched off), no grad.
torch::Tensor reference_losses(Denoiser& denoiser, const std::string& adapter,
                               const torch::Tensor& x0, const DiffusionDraws& draws);

// The objectives on per-example losses [B] of the reference (`ref`, no graph) and of the
// adapter (`own`): what kto_loss and dpo_loss compute once the losses are known, so a batch
// whose losses were computed in slices on several threads gets the very same objective.
// dpo's batch is the liked examples, then the disliked ones, pair by pair.
PreferenceLoss kto_objective(const torch::Tensor& ref, const torch::Tensor& own,
                             const torch::Tensor& desirable, double beta);
PreferenceLoss dpo_objective(const torch::Tensor& ref, const torch::Tensor& own, double beta);

// dpo's draws for a liked-then-disliked batch: each pair shares its noise and time.
DiffusionDraws paired_draws(const DiffusionDraws& draws);

// Diffusion-KTO on unpaired examples x0 [B, …] labelled by `desirable` [B] (bool): desirable
// ones score 1 − σ(β(r − z)), undesirable 1 − σ(β(z − r)), with z = max(0, mean(r)) over the
// batch (detached): Diffusion-KTO's estimate of how far the adapter has drifted from the base.
PreferenceLoss kto_loss(Denoiser& denoiser, const std::string& adapter, const torch::Tensor& x0,
                        const torch::Tensor& desirable, const DiffusionDraws& draws, double beta);

// Diffusion-DPO on pairs: liked[i] with disliked[i] at the same draws; the margin is
// m = r_liked − r_disliked and the loss −log σ(β m).
PreferenceLoss dpo_loss(Denoiser& denoiser, const std::string& adapter, const torch::Tensor& liked,
                        const torch::Tensor& disliked, const DiffusionDraws& draws, double beta);

// β from the listener's own data: 1 / the spread (sd) of the reference's loss differences
// between paired liked and disliked examples at shared draws, so a margin as large as two
// different clips naturally differ by gives a logit of 1. Falls back to 1 / 1e-3.
double calibrated_beta(Denoiser& denoiser, const std::string& adapter, const torch::Tensor& liked,
                       const torch::Tensor& disliked, const DiffusionDraws& draws);

}  // namespace tuneloop::model
