#pragma once
// LibTorch tensors and module state to and from safetensors files.

#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "adapters/safetensors.hpp"

namespace tuneloop::adapters {

/// Loads every tensor of a safetensors file onto the CPU (copies; the file is not kept).
/// If `metadata` is given it receives the file's "__metadata__".
/// Throws ModelFileError if the file is missing, malformed or uses an unknown dtype.
std::map<std::string, torch::Tensor> load_tensors(
    const std::string& path, std::map<std::string, std::string>* metadata = nullptr);

/// Saves tensors (any device; copied to the CPU, made contiguous) atomically.
/// Throws ModelFileError if a dtype has no safetensors name or the file cannot be written.
void save_tensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                  const std::map<std::string, std::string>& metadata = {});

/// Keys that did not line up in a non-strict load.
struct StateDictReport {
  std::vector<std::string> missing;     // in the module, not in the file
  std::vector<std::string> unexpected;  // in the file, not in the module
};

/// The base state of a module: parameters and buffers by dotted name, LoRA factors
/// excluded (adapters live in their own files). A merged LoRA layer contributes its
/// unmerged base weight.
std::map<std::string, torch::Tensor> base_state_dict(const torch::nn::Module& module);

/// Copies tensors into the module's parameters and buffers by dotted name (converting
/// dtype and device to the module's). LoRA factors are not part of the state.
/// Strict: any missing or unexpected key is an error. Non-strict: those are reported and
/// skipped. A shape mismatch is always an error.
/// Throws ModelFileError listing the offending keys (with `source` named); throws
/// std::logic_error if a LoRA adapter is merged into the module.
StateDictReport load_state_dict(torch::nn::Module& module,
                                const std::map<std::string, torch::Tensor>& tensors,
                                bool strict = true, const std::string& source = "state dict");

/// load_state_dict from a safetensors file. Throws ModelFileError as load_tensors and the
/// map overload do.
StateDictReport load_state_dict(torch::nn::Module& module, const std::string& path,
                                bool strict = true);

/// Saves base_state_dict(module) atomically with the given metadata.
/// Throws ModelFileError if the file cannot be written.
void save_state_dict(const torch::nn::Module& module, const std::string& path,
                     const std::map<std::string, std::string>& metadata = {});

/// The safetensors dtype name of a torch dtype. Throws ModelFileError if it has none.
std::string safetensors_dtype(torch::Dtype dtype);
/// The torch dtype of a safetensors dtype name. Throws ModelFileError if unknown.
torch::Dtype torch_dtype(const std::string& dtype);

}  // namespace tuneloop::adapters
