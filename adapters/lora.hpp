#pragma once
// LoRA (low-rank adaptation) for Linear and Conv layers, after PEFT: a layer computes
// base(x) + (alpha / rank) · B(A(dropout(x))) for its active adapter; B starts at zero so
// a fresh adapter changes nothing. Models are built from these layer types; the free
// functions below add, switch, merge, save and load adapters over a whole module tree.
//
// Adapter files are safetensors with PEFT-style keys `<module path>.lora_A.weight` and
// `<module path>.lora_B.weight`, and metadata {"format": "tuneloop-lora", "rank", "alpha",
// "dropout", "targets" (JSON list), "base_model_hash", "name"}.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "adapters/safetensors.hpp"

namespace tuneloop::adapters {

struct LoraConfig {
  int rank = 8;
  double alpha = 8;
  double dropout = 0;
  /// Regexes, each matched against the whole dotted module path (std::regex_match), e.g.
  /// "mid\\..*" or ".*attn.*". A layer is adapted if any one matches.
  std::vector<std::string> targets = {".*"};
};

/// What LoraLinear, LoraConv1d and LoraConv2d share: the adapters loaded on one layer.
/// The base weight and bias are registered on the layer itself ("weight", "bias"), so a
/// model's state-dict names are those of plain layers; factors live under
/// "lora_A.<adapter>" and "lora_B.<adapter>".
class LoraLayerImpl : public torch::nn::Module {
 public:
  /// Throws std::invalid_argument on a bad name or config (rank < 1, dropout outside
  /// [0, 1), a grouped conv), std::logic_error if the name is already loaded.
  void add_adapter(const std::string& name, const LoraConfig& config);
  /// Unmerges first if this adapter is merged. Throws std::logic_error if not loaded.
  void remove_adapter(const std::string& name);
  bool has_adapter(const std::string& name) const { return adapters_.count(name) != 0; }
  std::vector<std::string> adapter_names() const;
  /// "" = none. Throws std::logic_error if the name is not loaded here.
  void set_active_adapter(const std::string& name);
  const std::string& active_adapter() const noexcept { return active_; }

  /// Folds scale · ΔW of the adapter into the base weight (keeping an exact copy of the
  /// original); scale 1 is the adapter as trained, > 1 extrapolates past it.
  /// Throws std::logic_error if not loaded or another adapter is merged.
  void merge(const std::string& name, double scale = 1.0);
  /// Restores the exact original base weight; no-op if nothing is merged.
  void unmerge();
  const std::string& merged_adapter() const noexcept { return merged_; }

  const LoraConfig& adapter_config(const std::string& name) const;
  /// The factor weights: A is [rank, in, k...], B is [out, rank, 1...] (conv) or
  /// [rank, in] / [out, rank] (linear). Throws std::logic_error if not loaded.
  torch::Tensor lora_A(const std::string& name) const;
  torch::Tensor lora_B(const std::string& name) const;
  /// (alpha / rank) · B·A reshaped like the base weight.
  torch::Tensor delta_weight(const std::string& name) const;

  /// The base weight as it is without any merged adapter.
  torch::Tensor unmerged_weight() const;
  torch::Tensor& base_weight() noexcept { return weight_; }
  const torch::Tensor& base_weight() const noexcept { return weight_; }
  const torch::Tensor& base_bias() const noexcept { return bias_; }

 protected:
  LoraLayerImpl();
  /// Registers the base layer's weight and bias as this module's own "weight"/"bias".
  void adopt_base(const torch::Tensor& weight, const torch::Tensor& bias);
  /// base(x) plus the active branch, minus the merged one when another is active.
  torch::Tensor lora_forward(const torch::Tensor& x);

  virtual torch::Tensor base_forward(const torch::Tensor& x) = 0;
  /// base(x) and A(x) from one pass over x when the layer can share that work (a frozen
  /// Conv2d: one convolution with B's rank extra output channels); {} otherwise.
  virtual std::optional<std::pair<torch::Tensor, torch::Tensor>> base_and_down(const torch::Tensor& x,
                                                                              const torch::Tensor& A_weight) {
    return std::nullopt;
  }
  /// Builds the A and B factor modules for a rank. Throws std::invalid_argument if the
  /// layer cannot carry LoRA (e.g. a grouped conv).
  virtual std::pair<torch::nn::AnyModule, torch::nn::AnyModule> make_factors(int rank) = 0;

 private:
  struct Adapter {
    LoraConfig config;
    double scaling = 1;
    torch::nn::AnyModule A, B;
    torch::Tensor A_weight, B_weight;
  };
  const Adapter& adapter(const std::string& name) const;
  torch::Tensor branch(Adapter& a, const torch::Tensor& x, bool with_dropout);

  std::shared_ptr<torch::nn::Module> lora_A_, lora_B_;
  std::map<std::string, Adapter> adapters_;
  std::string active_, merged_;
  double merged_scale_ = 1.0;
  torch::Tensor weight_, bias_, merged_backup_;
};

struct LoraLinearImpl : LoraLayerImpl {
  explicit LoraLinearImpl(const torch::nn::LinearOptions& options);
  torch::Tensor forward(const torch::Tensor& x) { return lora_forward(x); }
  torch::nn::Linear base{nullptr};

 protected:
  torch::Tensor base_forward(const torch::Tensor& x) override { return base->forward(x); }
  std::pair<torch::nn::AnyModule, torch::nn::AnyModule> make_factors(int rank) override;
};
TORCH_MODULE(LoraLinear);

struct LoraConv1dImpl : LoraLayerImpl {
  explicit LoraConv1dImpl(const torch::nn::Conv1dOptions& options);
  torch::Tensor forward(const torch::Tensor& x) { return lora_forward(x); }
  torch::nn::Conv1d base{nullptr};

 protected:
  torch::Tensor base_forward(const torch::Tensor& x) override { return base->forward(x); }
  std::pair<torch::nn::AnyModule, torch::nn::AnyModule> make_factors(int rank) override;
};
TORCH_MODULE(LoraConv1d);

struct LoraConv2dImpl : LoraLayerImpl {
  explicit LoraConv2dImpl(const torch::nn::Conv2dOptions& options);
  torch::Tensor forward(const torch::Tensor& x) { return lora_forward(x); }
  torch::nn::Conv2d base{nullptr};

 protected:
  torch::Tensor base_forward(const torch::Tensor& x) override { return base->forward(x); }
  std::optional<std::pair<torch::Tensor, torch::Tensor>> base_and_down(const torch::Tensor& x,
                                                                      const torch::Tensor& A_weight) override;
  std::pair<torch::nn::AnyModule, torch::nn::AnyModule> make_factors(int rank) override;
};
TORCH_MODULE(LoraConv2d);

/// An adapter name made from a file path: the file name without ".safetensors", every
/// character other than letters, digits, _ and - replaced by _, at most 64 characters
/// ("my.song.lora.safetensors" -> "my_song_lora"; "" -> "adapter").
std::string adapter_name_from_path(const std::string& path);

/// Every LoRA-capable layer under root (root included), by dotted path ("" for root).
std::vector<std::pair<std::string, LoraLayerImpl*>> lora_layers(torch::nn::Module& root);
std::vector<std::pair<std::string, const LoraLayerImpl*>> lora_layers(
    const torch::nn::Module& root);

/// Adds adapter `name` (A kaiming-uniform, B zero) to every LoRA layer whose path matches
/// one of config.targets. Does not make it active.
/// Throws std::invalid_argument if nothing matched, a regex or the config is invalid;
/// std::logic_error if the name is already loaded.
void add_adapter(torch::nn::Module& root, const std::string& name, const LoraConfig& config);
/// Makes `name` the active adapter on every layer that has it ("" = none anywhere).
/// Throws std::logic_error if no layer has it.
void set_active_adapter(torch::nn::Module& root, const std::string& name);
/// The active adapter ("" if none).
std::string active_adapter(const torch::nn::Module& root);
/// Names of the adapters loaded anywhere under root, sorted.
std::vector<std::string> adapter_names(const torch::nn::Module& root);
/// Throws std::logic_error if no layer has it.
void remove_adapter(torch::nn::Module& root, const std::string& name);
/// The LoRA factors of one adapter (give the optimizer only these).
/// Throws std::logic_error if no layer has it.
std::vector<torch::Tensor> adapter_parameters(torch::nn::Module& root, const std::string& name);
/// requires_grad = false on every parameter that is not a LoRA factor.
void freeze_base(torch::nn::Module& root);
/// Folds scale · ΔW of the adapter into the base weights of every layer that has it;
/// forward then skips its branch. Throws std::logic_error if no layer has it or another is
/// merged.
void merge_adapter(torch::nn::Module& root, const std::string& name, double scale = 1.0);
/// Restores the exact base weights. Throws std::logic_error if `name` is not merged.
void unmerge_adapter(torch::nn::Module& root, const std::string& name);

/// Writes the adapter's factors and metadata (see top of file), plus `extra_metadata`
/// (keys other than the ones above), atomically.
/// Throws std::logic_error if no layer has it; ModelFileError if it cannot be written.
void save_adapter(const torch::nn::Module& root, const std::string& name,
                  const std::string& path, const std::string& base_model_hash,
                  const std::map<std::string, std::string>& extra_metadata = {});
/// Loads an adapter file as adapter `name` (default: the name in its metadata, else the
/// file's stem), replacing one of that name; returns the name. Does not make it active.
/// All-or-nothing: nothing changes unless the whole file fits.
/// Throws ModelFileError if the file is malformed, not a tuneloop-lora file, was made for
/// another base model than `expected_base_hash` (skipped if that is ""), names modules
/// that are not LoRA layers here, or has factor shapes that do not fit them.
std::string load_adapter(torch::nn::Module& root, const std::string& path,
                         const std::string& expected_base_hash, const std::string& name = "");
/// The metadata of an adapter file without loading it. Throws ModelFileError.
std::map<std::string, std::string> adapter_metadata(const std::string& path);

/// A stable hex hash (FNV-1a 64) of the base parameters and buffers: names, dtypes,
/// shapes and bytes, LoRA factors excluded, merged adapters ignored.
std::string model_hash(const torch::nn::Module& root);

/// Identities of every LoRA factor tensor under root (for excluding them from base state).
std::vector<const void*> lora_factor_ids(const torch::nn::Module& root);

}  // namespace tuneloop::adapters
