#pragma once
// Weight and checkpoint files of the model parts: safetensors (adapters/tensor_file.hpp)
// whose metadata carries {"format": "tuneloop-model", "kind", "config" (JSON)}; the
// configuration is checked on load and a mismatch is a ModelError naming the file.
#include <map>
#include <string>

#include <torch/torch.h>

#include "model/networks.hpp"

namespace tuneloop::model {

constexpr const char* kAutoencoderFile = "autoencoder.safetensors";
constexpr const char* kDenoiserFile = "denoiser.safetensors";

// The file a command reads: `given` when it names one, else `name` in the weights folder
// `dir` (the shipped folder, model/weights, when `dir` is empty).
std::string weights_file(const std::string& dir, const std::string& given, const std::string& name);

// Throws ModelError if the file can't be written.
void save_autoencoder(const Autoencoder& ae, const std::string& path);
void save_denoiser(const Denoiser& denoiser, const std::string& path,
                   const std::string& autoencoder_hash);

// What a denoiser made for this autoencoder records (its "autoencoder_hash"): the model hash
// of the autoencoder whose latents it reads, which a decoder-only retrain keeps (latent_of).
std::string latent_identity(const Autoencoder& ae);

// Throws ModelError naming the file if it is missing, malformed, not an autoencoder
// (denoiser) file, or its tensors do not fit its configuration.
Autoencoder load_autoencoder(const std::string& path);
// autoencoder_hash (if given) receives the hash of the autoencoder it was trained with.
Denoiser load_denoiser(const std::string& path, std::string* autoencoder_hash = nullptr);

// A training checkpoint: model (and EMA) tensors, optimizer state and the step, in one file.
struct Checkpoint {
  std::map<std::string, torch::Tensor> tensors;
  std::map<std::string, std::string> metadata;
};
// Prefixes `prefix` to every tensor of a state map.
void put_tensors(Checkpoint& c, const std::string& prefix,
                 const std::map<std::string, torch::Tensor>& tensors);
// The tensors under `prefix` with the prefix removed.
std::map<std::string, torch::Tensor> get_tensors(const Checkpoint& c, const std::string& prefix);
void put_optimizer(Checkpoint& c, torch::optim::AdamW& optimizer);
// Throws ModelError naming `where` if the state does not fit the optimizer's parameters.
void get_optimizer(const Checkpoint& c, torch::optim::AdamW& optimizer, const std::string& where);
// Throws ModelError naming the file.
void save_checkpoint(const Checkpoint& c, const std::string& path);
Checkpoint load_checkpoint(const std::string& path);
// The metadata value, or throws ModelError naming `where` and the key.
std::string metadata_value(const std::map<std::string, std::string>& m, const std::string& key,
                           const std::string& where);

// Load a state map into a module strictly; ModelError naming `where` on any mismatch.
void load_state(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& state,
                const std::string& where);

}  // namespace tuneloop::model
