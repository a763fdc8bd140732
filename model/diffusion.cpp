#include "model/diffusion.hpp"

#include <cmath>

#include "model/model_error.hpp"

namespace tuneloop::model {

double alpha_of(double t) { return std::cos(t * M_PI / 2); }
double sigma_of(double t) { return std::sin(t * M_PI / 2); }

torch::Tensor drop_tags(const torch::Tensor& tags, double p_tag, double p_all) {
  if (!tags.defined() || tags.numel() == 0) return tags;
  auto keep_tag = (torch::rand(tags.sizes(), tags.options()) >= p_tag).to(tags.dtype());
  auto keep_all = (torch::rand({tags.size(0), 1}, tags.options()) >= p_all).to(tags.dtype());
  return tags * keep_tag * keep_all;
}

torch::Tensor diffusion_loss_per_example(Denoiser& denoiser, const torch::Tensor& x0,
                                         const torch::Tensor& tags, const DiffusionDraws& draws) {
  const auto b = x0.size(0);
  auto a = alpha_of(draws.t).view({b, 1, 1, 1});
  auto s = sigma_of(draws.t).view({b, 1, 1, 1});
  auto xt = a * x0 + s * draws.noise;
  auto target = a * draws.noise - s * x0;
  auto v = denoiser->forward(xt, draws.t, tags);
  return (v - target).pow(2).mean({1, 2, 3});
}

namespace {

torch::Tensor loss_on(Denoiser& denoiser, const torch::Tensor& x0, const torch::Tensor& tags,
                      const torch::Tensor& weights, const DiffusionDraws& draws) {
  auto per_example = diffusion_loss_per_example(denoiser, x0, tags, draws);
  if (weights.defined()) return (per_example * weights).sum() / weights.sum().clamp_min(1e-8);
  return per_example.mean();
}

}  // namespace

DiffusionDraws draw_diffusion_noise(const torch::Tensor& x0) {
  auto t = torch::rand({x0.size(0)}, x0.options());
  return {t, torch::randn_like(x0)};
}

torch::Tensor diffusion_loss(Denoiser& denoiser, const torch::Tensor& x0, const torch::Tensor& tags,
                             const torch::Tensor& weights) {
  return loss_on(denoiser, x0, tags, weights, draw_diffusion_noise(x0));
}

torch::Tensor diffusion_loss(Denoiser& denoiser, const torch::Tensor& x0,
                             const DiffusionDraws& draws) {
  return loss_on(denoiser, x0, torch::Tensor(), torch::Tensor(), draws);
}

Solver solver_from_name(const std::string& name) {
  if (name == "ddim") return Solver::ddim;
  if (name == "dpm++2m" || name == "dpmpp_2m") return Solver::dpmpp_2m;
  throw ModelError("unknown solver '" + name + "' (use ddim or dpm++2m)");
}

Schedule schedule_from_name(const std::string& name) {
  if (name == "uniform") return Schedule::uniform;
  if (name == "karras") return Schedule::karras;
  throw ModelError("unknown schedule '" + name + "' (use uniform or karras)");
}

namespace {

// v from the denoiser, with classifier-free guidance when tags are given: the conditional
// and unconditional passes run as one batch of two.
torch::Tensor predict_v(Denoiser& denoiser, const torch::Tensor& x, double t,
                        const torch::Tensor& tags, double guidance) {
  const bool guided = tags.defined() && tags.sum().item<double>() > 0 && guidance != 1.0;
  if (!guided) {
    auto tt = torch::full({x.size(0)}, t, x.options());
    return denoiser->forward(x, tt, tags.defined() ? tags : torch::Tensor());
  }
  auto xx = torch::cat({x, x}, 0);
  auto tt = torch::full({2 * x.size(0)}, t, x.options());
  auto cond = torch::cat({tags, torch::zeros_like(tags)}, 0);
  auto v = denoiser->forward(xx, tt, cond);
  auto vc = v.narrow(0, 0, x.size(0));
  auto vu = v.narrow(0, x.size(0), x.size(0));
  return vu + guidance * (vc - vu);
}

}  // namespace

std::vector<double> sample_times(double t_start, int steps, Schedule schedule) {
  std::vector<double> times(static_cast<size_t>(steps) + 1, 0.0);
  constexpr double rho = 7.0, r_min = 0.002, r_cap = 80.0;
  const double r_max = std::min(r_cap, std::tan(t_start * M_PI / 2));
  // An img2img start below r_min (strength under ~0.0013) has no room for Karras's spacing.
  if (schedule == Schedule::uniform || steps < 2 || r_max <= r_min) {
    for (int i = 0; i <= steps; ++i) times[i] = t_start * (1.0 - static_cast<double>(i) / steps);
    return times;
  }
  // Karras et al. 2022 (EDM): noise-to-signal ratios r = σ/α spaced evenly in r^(1/ρ) from
  // r_max down to r_min, then 0; the steps crowd toward low noise, where detail is decided.
  const double a = std::pow(r_max, 1.0 / rho), b = std::pow(r_min, 1.0 / rho);
  times[0] = t_start;
  for (int i = 1; i < steps; ++i) {
    const double r = std::pow(a + static_cast<double>(i) / (steps - 1) * (b - a), rho);
    times[i] = std::min(t_start, 2.0 / M_PI * std::atan(r));
  }
  return times;
}

torch::Tensor sample(Denoiser& denoiser, int64_t length, const torch::Tensor& tags,
                     const SampleOptions& o) {
  torch::NoGradGuard no_grad;
  // Only when needed: generate_all samples from several threads at once, in eval mode.
  if (denoiser->is_training()) denoiser->eval();
  const auto& c = denoiser->config;
  if (length <= 0 || length % c.length_multiple() != 0) {
    throw ModelError("latent length " + std::to_string(length) + " is not a positive multiple of " +
                     std::to_string(c.length_multiple()));
  }
  if (o.steps < 1 || o.steps > 1000) throw ModelError("steps must be in 1..1000");
  if (o.strength < 0.0 || o.strength > 1.0) throw ModelError("strength must be in [0, 1]");
  auto gen = at::detail::createCPUGenerator(o.seed);
  const std::vector<int64_t> shape{1, c.latent_channels, c.latent_height, length};
  auto noise = torch::randn(shape, gen, torch::TensorOptions().dtype(torch::kFloat32));

  double t_start = 1.0;
  torch::Tensor x;
  int steps = o.steps;
  if (o.init) {
    auto init = o.init->to(torch::kFloat32);
    if (init.sizes() != torch::IntArrayRef(shape)) {
      throw ModelError("seed latent has the wrong shape for this denoiser");
    }
    if (o.strength <= 0.0) return init.clone();
    t_start = o.strength;
    steps = std::max(1, static_cast<int>(std::lround(o.steps * o.strength)));
    x = alpha_of(t_start) * init + sigma_of(t_start) * noise;
  } else {
    x = noise;
  }

  const auto times = sample_times(t_start, steps, o.schedule);
  torch::Tensor previous_x0;
  double previous_h = 0.0;
  for (int i = 0; i < steps; ++i) {
    const double t = times[i];
    const double tn = times[i + 1];
    const double a = alpha_of(t), s = sigma_of(t), an = alpha_of(tn), sn = sigma_of(tn);
    auto v = predict_v(denoiser, x, t, tags, o.guidance);
    auto x0 = a * x - s * v;
    if (tn <= 0.0 || (o.stop_after > 0 && i + 1 >= o.stop_after)) {
      x = x0;
      break;
    }
    if (o.solver == Solver::ddim || previous_h <= 0.0) {
      auto eps = s * x + a * v;
      x = an * x0 + sn * eps;
    } else {
      // DPM-Solver++(2M) in data prediction, with λ = log(α/σ).
      const double h = std::log(an / sn) - std::log(a / s);
      const double r = previous_h / h;
      auto d = (1.0 + 1.0 / (2.0 * r)) * x0 - (1.0 / (2.0 * r)) * previous_x0;
      x = (sn / s) * x - an * (std::exp(-h) - 1.0) * d;
    }
    // From pure noise (α ≈ 0) λ is -∞: the next step must be first order again.
    previous_h = a > 1e-4 ? std::log(an / sn) - std::log(a / s) : 0.0;
    previous_x0 = x0;
  }
  return x;
}

torch::Tensor slerp(const torch::Tensor& a, const torch::Tensor& b, double t) {
  auto fa = a.flatten().to(torch::kFloat64), fb = b.flatten().to(torch::kFloat64);
  const double na = fa.norm().item<double>(), nb = fb.norm().item<double>();
  if (na == 0.0 || nb == 0.0) return ((1 - t) * a + t * b);
  auto ua = fa / na, ub = fb / nb;
  const double dot = std::clamp((ua * ub).sum().item<double>(), -1.0, 1.0);
  const double omega = std::acos(dot);
  torch::Tensor dir;
  if (omega < 1e-6) {
    dir = (1 - t) * ua + t * ub;
    dir = dir / dir.norm();
  } else {
    dir = (std::sin((1 - t) * omega) * ua + std::sin(t * omega) * ub) / std::sin(omega);
  }
  return (dir * ((1 - t) * na + t * nb)).view(a.sizes()).to(a.dtype());
}

torch::Tensor slerp_all(const std::vector<torch::Tensor>& latents) {
  if (latents.empty()) throw ModelError("slerp needs at least one latent");
  int64_t length = latents[0].size(-1);
  for (const auto& l : latents) {
    if (l.dim() != latents[0].dim() ||
        l.sizes().slice(0, l.dim() - 1) != latents[0].sizes().slice(0, l.dim() - 1)) {
      throw ModelError("slerp: latents have different shapes");
    }
    length = std::min(length, l.size(-1));
  }
  auto merged = latents[0].narrow(-1, 0, length);
  for (size_t i = 1; i < latents.size(); ++i) {
    merged = slerp(merged, latents[i].narrow(-1, 0, length), 1.0 / static_cast<double>(i + 1));
  }
  return merged.clone();
}

}  // namespace tuneloop::model
