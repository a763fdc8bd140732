#include "model/model_files.hpp"

#include <filesystem>

#include "adapters/lora.hpp"
#include "adapters/tensor_file.hpp"

#ifndef TUNELOOP_WEIGHTS_DIR
#define TUNELOOP_WEIGHTS_DIR "model/weights"
#endif

namespace tuneloop::model {

std::string weights_file(const std::string& dir, const std::string& given,
                         const std::string& name) {
  if (!given.empty()) return given;
  return (std::filesystem::path(dir.empty() ? TUNELOOP_WEIGHTS_DIR : dir) / name).string();
}

namespace {

std::map<std::string, std::string> model_metadata(const std::string& kind, const std::string& config) {
  return {{"format", "tuneloop-model"}, {"kind", kind}, {"config", config}, {"version", "1"}};
}

std::map<std::string, torch::Tensor> read(const std::string& path,
                                          std::map<std::string, std::string>& metadata) {
  try {
    return adapters::load_tensors(path, &metadata);
  } catch (const adapters::ModelFileError& e) {
    throw ModelError(e.what());
  }
}

void check_kind(const std::map<std::string, std::string>& m, const std::string& kind,
                const std::string& path) {
  if (metadata_value(m, "format", path) != "tuneloop-model") {
    throw ModelError(path + ": not a tuneloop model file (metadata 'format' is '" +
                     m.at("format") + "')");
  }
  const auto k = metadata_value(m, "kind", path);
  if (k != kind) throw ModelError(path + ": is a " + k + " file, expected a " + kind + " file");
}

}  // namespace

std::string metadata_value(const std::map<std::string, std::string>& m, const std::string& key,
                           const std::string& where) {
  auto it = m.find(key);
  if (it == m.end()) throw ModelError(where + ": metadata lacks the key '" + key + "'");
  return it->second;
}

void load_state(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& state,
                const std::string& where) {
  try {
    torch::NoGradGuard no_grad;
    adapters::load_state_dict(module, state, /*strict=*/true, where);
  } catch (const adapters::ModelFileError& e) {
    throw ModelError(std::string(e.what()) + " (the tensors do not fit the configuration in " +
                     where + ")");
  }
}

std::string latent_identity(const Autoencoder& ae) {
  return ae->latent_of.empty() ? adapters::model_hash(*ae) : ae->latent_of;
}

void save_autoencoder(const Autoencoder& ae, const std::string& path) {
  auto meta = model_metadata("autoencoder", to_json(ae->config));
  if (!ae->latent_of.empty()) meta["latent_of"] = ae->latent_of;
  if (!ae->anchored_to.empty()) meta["anchored_to"] = ae->anchored_to;
  try {
    adapters::save_state_dict(*ae, path, meta);
  } catch (const adapters::ModelFileError& e) {
    throw ModelError(e.what());
  }
}

void save_denoiser(const Denoiser& denoiser, const std::string& path,
                   const std::string& autoencoder_hash) {
  auto meta = model_metadata("denoiser", to_json(denoiser->config));
  meta["autoencoder_hash"] = autoencoder_hash;
  try {
    adapters::save_state_dict(*denoiser, path, meta);
  } catch (const adapters::ModelFileError& e) {
    throw ModelError(e.what());
  }
}

Autoencoder load_autoencoder(const std::string& path) {
  std::map<std::string, std::string> meta;
  auto tensors = read(path, meta);
  check_kind(meta, "autoencoder", path);
  Autoencoder ae(autoencoder_config_from_json(metadata_value(meta, "config", path), path));
  load_state(*ae, tensors, path);
  if (auto it = meta.find("latent_of"); it != meta.end()) ae->latent_of = it->second;
  if (auto it = meta.find("anchored_to"); it != meta.end()) ae->anchored_to = it->second;
  ae->eval();
  return ae;
}

Denoiser load_denoiser(const std::string& path, std::string* autoencoder_hash) {
  std::map<std::string, std::string> meta;
  auto tensors = read(path, meta);
  check_kind(meta, "denoiser", path);
  Denoiser d(denoiser_config_from_json(metadata_value(meta, "config", path), path));
  load_state(*d, tensors, path);
  d->eval();
  if (autoencoder_hash) {
    auto it = meta.find("autoencoder_hash");
    *autoencoder_hash = it == meta.end() ? "" : it->second;
  }
  return d;
}

void put_tensors(Checkpoint& c, const std::string& prefix,
                 const std::map<std::string, torch::Tensor>& tensors) {
  for (const auto& [k, v] : tensors) c.tensors[prefix + k] = v.detach();
}

std::map<std::string, torch::Tensor> get_tensors(const Checkpoint& c, const std::string& prefix) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [k, v] : c.tensors) {
    if (k.rfind(prefix, 0) == 0) out[k.substr(prefix.size())] = v;
  }
  return out;
}

void put_optimizer(Checkpoint& c, torch::optim::AdamW& optimizer) {
  auto& state = optimizer.state();
  const auto& params = optimizer.param_groups().at(0).params();
  for (size_t i = 0; i < params.size(); ++i) {
    auto it = state.find(c10::guts::to_string(params[i].unsafeGetTensorImpl()));
    if (it == state.end()) continue;
    auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
    const auto p = "optim." + std::to_string(i) + ".";
    c.tensors[p + "exp_avg"] = s.exp_avg();
    c.tensors[p + "exp_avg_sq"] = s.exp_avg_sq();
    c.tensors[p + "step"] = torch::tensor(static_cast<int64_t>(s.step()));
  }
  c.metadata["optimizer"] = "adamw";
  c.metadata["optimizer_params"] = std::to_string(params.size());
}

void get_optimizer(const Checkpoint& c, torch::optim::AdamW& optimizer, const std::string& where) {
  const auto& params = optimizer.param_groups().at(0).params();
  if (metadata_value(c.metadata, "optimizer_params", where) != std::to_string(params.size())) {
    throw ModelError(where + ": optimizer state is for " + c.metadata.at("optimizer_params") +
                     " parameters, this model trains " + std::to_string(params.size()));
  }
  auto& state = optimizer.state();
  for (size_t i = 0; i < params.size(); ++i) {
    const auto p = "optim." + std::to_string(i) + ".";
    auto a = c.tensors.find(p + "exp_avg");
    auto b = c.tensors.find(p + "exp_avg_sq");
    auto n = c.tensors.find(p + "step");
    if (a == c.tensors.end() || b == c.tensors.end() || n == c.tensors.end()) continue;
    if (a->second.sizes() != params[i].sizes() || b->second.sizes() != params[i].sizes()) {
      throw ModelError(where + ": optimizer state '" + p + "' has the wrong shape");
    }
    auto s = std::make_unique<torch::optim::AdamWParamState>();
    s->step(n->second.item<int64_t>());
    s->exp_avg(a->second.to(params[i].options()).clone());
    s->exp_avg_sq(b->second.to(params[i].options()).clone());
    state[c10::guts::to_string(params[i].unsafeGetTensorImpl())] = std::move(s);
  }
}

void save_checkpoint(const Checkpoint& c, const std::string& path) {
  auto meta = c.metadata;
  meta["format"] = "tuneloop-checkpoint";
  try {
    adapters::save_tensors(path, c.tensors, meta);
  } catch (const adapters::ModelFileError& e) {
    throw ModelError(e.what());
  }
}

Checkpoint load_checkpoint(const std::string& path) {
  Checkpoint c;
  c.tensors = read(path, c.metadata);
  if (metadata_value(c.metadata, "format", path) != "tuneloop-checkpoint") {
    throw ModelError(path + ": not a tuneloop checkpoint file");
  }
  return c;
}

}  // namespace tuneloop::model
