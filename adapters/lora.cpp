#include "adapters/lora.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <regex>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "adapters/messages.hpp"
#include "adapters/tensor_file.hpp"

namespace tuneloop::adapters {
namespace {

// Holds one factor module per adapter name so their parameters show up in the tree.
struct FactorSet : torch::nn::Module {};

void check_adapter_name(const std::string& name) {
  if (name.empty() || name.size() > 64 ||
      !std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
      }))
    throw std::invalid_argument("adapter name \"" + name +
                                "\" must be 1-64 characters of letters, digits, _ or -");
}

// "<path>.lora_A.weight" → path, true. False if the key is not a factor key.
bool split_factor_key(const std::string& key, std::string& module_path, bool& is_a) {
  for (const std::string suffix : {"lora_A.weight", "lora_B.weight"}) {
    if (key == suffix || (key.size() > suffix.size() + 1 && key.ends_with("." + suffix))) {
      module_path = key == suffix ? "" : key.substr(0, key.size() - suffix.size() - 1);
      is_a = suffix[5] == 'A';
      return true;
    }
  }
  return false;
}

std::string format_double(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

}  // namespace

std::string adapter_name_from_path(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  if (const auto dot = name.rfind(".safetensors"); dot != std::string::npos && dot > 0) name.resize(dot);
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') c = '_';
  if (name.size() > 64) name.resize(64);
  return name.empty() ? "adapter" : name;
}

// ---------------------------------------------------------------- LoraLayerImpl

LoraLayerImpl::LoraLayerImpl() {
  lora_A_ = register_module("lora_A", std::make_shared<FactorSet>());
  lora_B_ = register_module("lora_B", std::make_shared<FactorSet>());
}

void LoraLayerImpl::adopt_base(const torch::Tensor& weight, const torch::Tensor& bias) {
  weight_ = register_parameter("weight", weight);
  if (bias.defined()) bias_ = register_parameter("bias", bias);
}

void LoraLayerImpl::add_adapter(const std::string& name, const LoraConfig& config) {
  check_adapter_name(name);
  if (config.rank < 1) throw std::invalid_argument("LoRA rank must be at least 1");
  if (!(config.dropout >= 0 && config.dropout < 1))
    throw std::invalid_argument("LoRA dropout must be in [0, 1)");
  if (!std::isfinite(config.alpha)) throw std::invalid_argument("LoRA alpha must be finite");
  if (has_adapter(name)) throw std::logic_error("adapter \"" + name + "\" is already loaded");
  auto [A, B] = make_factors(config.rank);
  A.ptr()->to(weight_.device(), weight_.scalar_type());
  B.ptr()->to(weight_.device(), weight_.scalar_type());
  Adapter a;
  a.config = config;
  a.scaling = config.alpha / config.rank;
  a.A_weight = A.ptr()->named_parameters(false)["weight"];
  a.B_weight = B.ptr()->named_parameters(false)["weight"];
  {
    torch::NoGradGuard no_grad;
    // PEFT's init: A like a default Linear (kaiming-uniform, a = √5), B zero.
    torch::nn::init::kaiming_uniform_(a.A_weight, std::sqrt(5.0));
    a.B_weight.zero_();
  }
  lora_A_->register_module(name, A.ptr());
  lora_B_->register_module(name, B.ptr());
  a.A = std::move(A);
  a.B = std::move(B);
  adapters_.emplace(name, std::move(a));
}

void LoraLayerImpl::remove_adapter(const std::string& name) {
  adapter(name);
  if (merged_ == name) unmerge();
  if (active_ == name) active_.clear();
  lora_A_->unregister_module(name);
  lora_B_->unregister_module(name);
  adapters_.erase(name);
}

std::vector<std::string> LoraLayerImpl::adapter_names() const {
  std::vector<std::string> out;
  for (auto& [name, a] : adapters_) out.push_back(name);
  return out;
}

void LoraLayerImpl::set_active_adapter(const std::string& name) {
  if (!name.empty()) adapter(name);
  active_ = name;
}

void LoraLayerImpl::merge(const std::string& name, double scale) {
  adapter(name);  // throws if not loaded
  if (!merged_.empty())
    throw std::logic_error("adapter \"" + merged_ + "\" is already merged; unmerge it first");
  torch::NoGradGuard no_grad;
  merged_backup_ = weight_.detach().clone();
  weight_.add_(delta_weight(name).to(weight_.scalar_type()), scale);
  merged_ = name;
  merged_scale_ = scale;
}

void LoraLayerImpl::unmerge() {
  if (merged_.empty()) return;
  torch::NoGradGuard no_grad;
  weight_.copy_(merged_backup_);
  merged_backup_ = torch::Tensor();
  merged_.clear();
  merged_scale_ = 1.0;
}

const LoraLayerImpl::Adapter& LoraLayerImpl::adapter(const std::string& name) const {
  auto it = adapters_.find(name);
  if (it == adapters_.end())
    throw std::logic_error("adapter \"" + name + "\" is not loaded on this layer");
  return it->second;
}

const LoraConfig& LoraLayerImpl::adapter_config(const std::string& name) const {
  return adapter(name).config;
}
torch::Tensor LoraLayerImpl::lora_A(const std::string& name) const { return adapter(name).A_weight; }
torch::Tensor LoraLayerImpl::lora_B(const std::string& name) const { return adapter(name).B_weight; }

torch::Tensor LoraLayerImpl::delta_weight(const std::string& name) const {
  const Adapter& a = adapter(name);
  const int64_t out = a.B_weight.size(0);
  const int64_t rank = a.A_weight.size(0);
  auto delta = a.B_weight.reshape({out, rank}).matmul(a.A_weight.reshape({rank, -1}));
  return (delta * a.scaling).reshape(weight_.sizes());
}

torch::Tensor LoraLayerImpl::unmerged_weight() const {
  return merged_.empty() ? weight_ : merged_backup_;
}

torch::Tensor LoraLayerImpl::branch(Adapter& a, const torch::Tensor& x,
                                    bool with_dropout) {
  torch::Tensor in = x;
  if (with_dropout && a.config.dropout > 0)
    in = torch::dropout(x, a.config.dropout, is_training());
  // Scaling the rank-r intermediate rather than B's output touches rank/out as much memory.
  return a.B.forward(a.A.forward(in) * a.scaling);
}

torch::Tensor LoraLayerImpl::lora_forward(const torch::Tensor& x) {
  if (!active_.empty() && merged_.empty()) {
    Adapter& a = adapters_.at(active_);
    if (a.config.dropout == 0 || !is_training()) {
      if (auto both = base_and_down(x, a.A_weight)) {
        // B is a 1x1 convolution: base + scaling * B·low as one batched GEMM per example
        // writes the output once (a 1x1 conv would unfold its input first on one thread).
        const auto& [base_out, low] = *both;
        const int64_t n = base_out.size(0), out = base_out.size(1), rank = low.size(1);
        auto y = torch::baddbmm(base_out.reshape({n, out, -1}), a.B_weight.reshape({1, out, rank}).expand({n, out, rank}),
                                low.reshape({n, rank, -1}), /*beta=*/1.0, /*alpha=*/a.scaling);
        return y.view(base_out.sizes());
      }
    }
  }
  torch::Tensor out = base_forward(x);
  if (!active_.empty() && active_ != merged_)
    out = out + branch(adapters_.at(active_), x, /*with_dropout=*/true);
  if (!merged_.empty() && merged_ != active_)
    out = out - merged_scale_ * branch(adapters_.at(merged_), x, /*with_dropout=*/false);
  return out;
}

// ---------------------------------------------------------------- concrete layers

LoraLinearImpl::LoraLinearImpl(const torch::nn::LinearOptions& options)
    : base(torch::nn::Linear(options)) {
  adopt_base(base->weight, base->bias);
}

std::pair<torch::nn::AnyModule, torch::nn::AnyModule> LoraLinearImpl::make_factors(int rank) {
  const auto& o = base->options;
  return {torch::nn::AnyModule(
              torch::nn::Linear(torch::nn::LinearOptions(o.in_features(), rank).bias(false))),
          torch::nn::AnyModule(
              torch::nn::Linear(torch::nn::LinearOptions(rank, o.out_features()).bias(false)))};
}

LoraConv1dImpl::LoraConv1dImpl(const torch::nn::Conv1dOptions& options)
    : base(torch::nn::Conv1d(options)) {
  adopt_base(base->weight, base->bias);
}

std::pair<torch::nn::AnyModule, torch::nn::AnyModule> LoraConv1dImpl::make_factors(int rank) {
  const auto& o = base->options;
  if (o.groups() != 1)
    throw std::invalid_argument("LoRA does not support grouped convolutions (groups = " +
                                std::to_string(o.groups()) + ")");
  auto a = torch::nn::Conv1dOptions(o.in_channels(), rank, o.kernel_size())
               .stride(o.stride())
               .padding(o.padding())
               .dilation(o.dilation())
               .padding_mode(o.padding_mode())
               .bias(false);
  auto b = torch::nn::Conv1dOptions(rank, o.out_channels(), 1).bias(false);
  return {torch::nn::AnyModule(torch::nn::Conv1d(a)), torch::nn::AnyModule(torch::nn::Conv1d(b))};
}

LoraConv2dImpl::LoraConv2dImpl(const torch::nn::Conv2dOptions& options)
    : base(torch::nn::Conv2d(options)) {
  adopt_base(base->weight, base->bias);
}

std::pair<torch::nn::AnyModule, torch::nn::AnyModule> LoraConv2dImpl::make_factors(int rank) {
  const auto& o = base->options;
  if (o.groups() != 1)
    throw std::invalid_argument("LoRA does not support grouped convolutions (groups = " +
                                std::to_string(o.groups()) + ")");
  auto a = torch::nn::Conv2dOptions(o.in_channels(), rank, o.kernel_size())
               .stride(o.stride())
               .padding(o.padding())
               .dilation(o.dilation())
               .padding_mode(o.padding_mode())
               .bias(false);
  auto b = torch::nn::Conv2dOptions(rank, o.out_channels(), 1).bias(false);
  return {torch::nn::AnyModule(torch::nn::Conv2d(a)), torch::nn::AnyModule(torch::nn::Conv2d(b))};
}

namespace {

// A frozen convolution and a LoRA factor A over the same input, as one convolution with
// weight [W; A]: the input is unfolded once and the GEMM is wider, which on a CPU costs
// less than two convolutions when A has only `rank` output channels. Outputs W*x + b and
// A*x. Backward gives gradients for x (one pass with [W; A]) and A only: W and b are frozen.
struct FrozenConvWithDown : torch::autograd::Function<FrozenConvWithDown> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, torch::Tensor x,
                                                torch::Tensor weight, torch::Tensor bias, torch::Tensor down,
                                                std::vector<int64_t> stride, std::vector<int64_t> padding,
                                                std::vector<int64_t> dilation) {
    const int64_t out = weight.size(0), rank = down.size(0);
    auto both = torch::cat({weight, down});
    torch::Tensor b;
    if (bias.defined()) b = torch::cat({bias, torch::zeros({rank}, bias.options())});
    auto y = torch::conv2d(x, both, b, stride, padding, dilation);
    ctx->save_for_backward({x, down});
    ctx->saved_data["both"] = both;
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["padding"] = padding;
    ctx->saved_data["dilation"] = dilation;
    return {y.narrow(1, 0, out).contiguous(), y.narrow(1, out, rank).contiguous()};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& down = saved[1];
    const auto both = ctx->saved_data["both"].toTensor();
    const auto stride = ctx->saved_data["stride"].toIntVector();
    const auto padding = ctx->saved_data["padding"].toIntVector();
    const auto dilation = ctx->saved_data["dilation"].toIntVector();
    const int64_t out = both.size(0) - down.size(0);
    // An output that reached no loss has no gradient: it contributes zeros.
    auto zeros_with_channels = [](const torch::Tensor& like, int64_t channels) {
      auto shape = like.sizes().vec();
      shape[1] = channels;
      return torch::zeros(shape, like.options());
    };
    auto g_base = grads[0], g_down = grads[1];
    if (!g_base.defined() && !g_down.defined()) return torch::autograd::variable_list(7);
    if (!g_base.defined()) g_base = zeros_with_channels(g_down, out);
    if (!g_down.defined()) g_down = zeros_with_channels(g_base, down.size(0));
    torch::Tensor dx, ddown;
    if (ctx->needs_input_grad(0)) {
      dx = std::get<0>(at::convolution_backward(torch::cat({g_base, g_down}, 1), x, both, c10::nullopt, stride,
                                                padding, dilation, false, {0, 0}, 1, {true, false, false}));
    }
    if (ctx->needs_input_grad(3)) {
      ddown = std::get<1>(at::convolution_backward(g_down.contiguous(), x, down, c10::nullopt, stride, padding,
                                                   dilation, false, {0, 0}, 1, {false, true, false}));
    }
    return {dx, torch::Tensor(), torch::Tensor(), ddown, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

std::optional<std::pair<torch::Tensor, torch::Tensor>> LoraConv2dImpl::base_and_down(
    const torch::Tensor& x, const torch::Tensor& A_weight) {
  const auto& o = base->options;
  const auto* padding = c10::get_if<torch::ExpandingArray<2>>(&o.padding());
  const bool frozen = !base_weight().requires_grad() && !(base_bias().defined() && base_bias().requires_grad());
  // Only worth it when gradients flow (a fine-tune); plain forwards keep the two convolutions.
  if (!frozen || !A_weight.requires_grad() || !torch::GradMode::is_enabled() || padding == nullptr ||
      !c10::holds_alternative<torch::enumtype::kZeros>(o.padding_mode()) || o.groups() != 1 || x.dim() != 4)
    return std::nullopt;
  auto outs = FrozenConvWithDown::apply(x, base_weight(), base_bias(), A_weight, at::IntArrayRef(o.stride()).vec(),
                                        at::IntArrayRef(*padding).vec(), at::IntArrayRef(o.dilation()).vec());
  return std::pair{outs[0], outs[1]};
}

// ---------------------------------------------------------------- tree functions

std::vector<std::pair<std::string, LoraLayerImpl*>> lora_layers(torch::nn::Module& root) {
  std::vector<std::pair<std::string, LoraLayerImpl*>> out;
  if (auto* self = dynamic_cast<LoraLayerImpl*>(&root)) out.emplace_back("", self);
  for (auto& item : root.named_modules("", /*include_self=*/false))
    if (auto* layer = dynamic_cast<LoraLayerImpl*>(item.value().get()))
      out.emplace_back(item.key(), layer);
  return out;
}

std::vector<std::pair<std::string, const LoraLayerImpl*>> lora_layers(
    const torch::nn::Module& root) {
  std::vector<std::pair<std::string, const LoraLayerImpl*>> out;
  for (auto& [path, layer] : lora_layers(const_cast<torch::nn::Module&>(root)))
    out.emplace_back(path, layer);
  return out;
}

namespace {

template <typename Layers>
size_t count_with(const Layers& layers, const std::string& name) {
  size_t n = 0;
  for (auto& [path, layer] : layers) n += layer->has_adapter(name) ? 1 : 0;
  return n;
}

template <typename Layers>
void require_loaded(const Layers& layers, const std::string& name) {
  if (count_with(layers, name) == 0)
    throw std::logic_error("no layer has an adapter named \"" + name + "\"");
}

}  // namespace

void add_adapter(torch::nn::Module& root, const std::string& name, const LoraConfig& config) {
  check_adapter_name(name);
  std::vector<std::regex> patterns;
  for (auto& t : config.targets) {
    try {
      patterns.emplace_back(t, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      throw std::invalid_argument("LoRA target \"" + t + "\" is not a valid regex: " + e.what());
    }
  }
  auto layers = lora_layers(root);
  if (count_with(layers, name) != 0)
    throw std::logic_error("adapter \"" + name + "\" is already loaded");
  std::vector<LoraLayerImpl*> matched;
  for (auto& [path, layer] : layers)
    for (auto& re : patterns)
      if (std::regex_match(path, re)) {
        matched.push_back(layer);
        break;
      }
  if (matched.empty())
    throw std::invalid_argument("LoRA targets [" + join_for_message(config.targets) +
                                "] match none of the " + std::to_string(layers.size()) +
                                " LoRA layers");
  try {
    for (auto* layer : matched) layer->add_adapter(name, config);
  } catch (...) {
    for (auto* layer : matched)
      if (layer->has_adapter(name)) layer->remove_adapter(name);
    throw;
  }
}

void set_active_adapter(torch::nn::Module& root, const std::string& name) {
  auto layers = lora_layers(root);
  if (!name.empty()) require_loaded(layers, name);
  for (auto& [path, layer] : layers)
    layer->set_active_adapter(layer->has_adapter(name) ? name : "");
}

std::string active_adapter(const torch::nn::Module& root) {
  for (auto& [path, layer] : lora_layers(root))
    if (!layer->active_adapter().empty()) return layer->active_adapter();
  return "";
}

std::vector<std::string> adapter_names(const torch::nn::Module& root) {
  std::set<std::string> names;
  for (auto& [path, layer] : lora_layers(root))
    for (auto& n : layer->adapter_names()) names.insert(n);
  return {names.begin(), names.end()};
}

void remove_adapter(torch::nn::Module& root, const std::string& name) {
  auto layers = lora_layers(root);
  require_loaded(layers, name);
  for (auto& [path, layer] : layers)
    if (layer->has_adapter(name)) layer->remove_adapter(name);
}

std::vector<torch::Tensor> adapter_parameters(torch::nn::Module& root, const std::string& name) {
  auto layers = lora_layers(root);
  require_loaded(layers, name);
  std::vector<torch::Tensor> out;
  for (auto& [path, layer] : layers)
    if (layer->has_adapter(name)) {
      out.push_back(layer->lora_A(name));
      out.push_back(layer->lora_B(name));
    }
  return out;
}

std::vector<const void*> lora_factor_ids(const torch::nn::Module& root) {
  std::vector<const void*> ids;
  for (auto& [path, layer] : lora_layers(root))
    for (auto& n : layer->adapter_names()) {
      ids.push_back(layer->lora_A(n).unsafeGetTensorImpl());
      ids.push_back(layer->lora_B(n).unsafeGetTensorImpl());
    }
  return ids;
}

void freeze_base(torch::nn::Module& root) {
  auto ids = lora_factor_ids(root);
  std::set<const void*> factors(ids.begin(), ids.end());
  for (auto& p : root.parameters())
    if (!factors.count(p.unsafeGetTensorImpl())) p.set_requires_grad(false);
}

void merge_adapter(torch::nn::Module& root, const std::string& name, double scale) {
  auto layers = lora_layers(root);
  require_loaded(layers, name);
  for (auto& [path, layer] : layers)
    if (!layer->merged_adapter().empty())
      throw std::logic_error("adapter \"" + layer->merged_adapter() +
                             "\" is already merged; unmerge it first");
  for (auto& [path, layer] : layers)
    if (layer->has_adapter(name)) layer->merge(name, scale);
}

void unmerge_adapter(torch::nn::Module& root, const std::string& name) {
  bool any = false;
  for (auto& [path, layer] : lora_layers(root))
    if (layer->merged_adapter() == name && !name.empty()) {
      layer->unmerge();
      any = true;
    }
  if (!any) throw std::logic_error("adapter \"" + name + "\" is not merged");
}

void save_adapter(const torch::nn::Module& root, const std::string& name, const std::string& path,
                  const std::string& base_model_hash, const std::map<std::string, std::string>& extra_metadata) {
  auto layers = lora_layers(root);
  require_loaded(layers, name);
  std::map<std::string, torch::Tensor> tensors;
  const LoraConfig* config = nullptr;
  for (auto& [p, layer] : layers) {
    if (!layer->has_adapter(name)) continue;
    const std::string prefix = p.empty() ? "" : p + ".";
    tensors[prefix + "lora_A.weight"] = layer->lora_A(name).detach();
    tensors[prefix + "lora_B.weight"] = layer->lora_B(name).detach();
    config = &layer->adapter_config(name);
  }
  nlohmann::json targets = config->targets;
  std::map<std::string, std::string> metadata{{"format", "tuneloop-lora"},
                                              {"name", name},
                                              {"rank", std::to_string(config->rank)},
                                              {"alpha", format_double(config->alpha)},
                                              {"dropout", format_double(config->dropout)},
                                              {"targets", targets.dump()},
                                              {"base_model_hash", base_model_hash}};
  metadata.insert(extra_metadata.begin(), extra_metadata.end());  // the keys above win
  save_tensors(path, tensors, metadata);
}

std::map<std::string, std::string> adapter_metadata(const std::string& path) {
  return SafetensorsFile::read(path).metadata();
}

std::string load_adapter(torch::nn::Module& root, const std::string& path,
                         const std::string& expected_base_hash, const std::string& name_in) {
  std::map<std::string, std::string> meta;
  auto tensors = load_tensors(path, &meta);
  auto bad = [&](const std::string& what) -> ModelFileError {
    return ModelFileError(path + ": " + what);
  };
  auto get = [&](const std::string& key) {
    auto it = meta.find(key);
    if (it == meta.end()) throw bad("metadata has no \"" + key + "\"; not a tuneloop adapter");
    return it->second;
  };
  if (get("format") != "tuneloop-lora")
    throw bad("format is \"" + get("format") + "\", expected \"tuneloop-lora\"");
  const std::string file_hash = get("base_model_hash");
  if (!expected_base_hash.empty() && file_hash != expected_base_hash)
    throw ModelFileError("adapter " + path + " was made for base model " + file_hash +
                         ", this model is " + expected_base_hash);

  LoraConfig config;
  try {
    size_t used = 0;
    const std::string rank = get("rank");
    config.rank = std::stoi(rank, &used);
    if (used != rank.size()) throw std::invalid_argument("rank");
    config.alpha = std::stod(get("alpha"));
    config.dropout = std::stod(get("dropout"));
    auto targets = nlohmann::json::parse(get("targets"));
    config.targets = targets.get<std::vector<std::string>>();
  } catch (const ModelFileError&) {
    throw;
  } catch (const std::exception& e) {
    throw bad(std::string("bad rank/alpha/dropout/targets metadata: ") + e.what());
  }
  if (config.rank < 1 || config.rank > 65536 || !std::isfinite(config.alpha) ||
      !(config.dropout >= 0 && config.dropout < 1))
    throw bad("rank, alpha or dropout out of range");

  std::string name = name_in;
  if (name.empty()) name = meta.count("name") ? meta["name"] : "";
  if (name.empty()) name = adapter_name_from_path(path);
  try {
    check_adapter_name(name);
  } catch (const std::invalid_argument& e) {
    throw bad(e.what());
  }

  // Check every key and shape before touching the model, so a bad file changes nothing.
  auto layers = lora_layers(root);
  std::map<std::string, LoraLayerImpl*> by_path(layers.begin(), layers.end());
  std::map<LoraLayerImpl*, std::pair<torch::Tensor, torch::Tensor>> plan;
  std::vector<std::string> unknown, problems;
  for (auto& [key, t] : tensors) {
    std::string module_path;
    bool is_a = false;
    if (!split_factor_key(key, module_path, is_a)) {
      unknown.push_back(key);
      continue;
    }
    auto it = by_path.find(module_path);
    if (it == by_path.end()) {
      unknown.push_back(key);
      continue;
    }
    auto& slot = plan[it->second];
    (is_a ? slot.first : slot.second) = t;
  }
  if (!unknown.empty())
    throw bad("keys that are not LoRA factors of this model's layers: " + join_for_message(unknown));
  if (plan.empty()) throw bad("holds no LoRA factors");
  for (auto& [layer, ab] : plan) {
    std::string p;
    for (auto& [lp, l] : layers)
      if (l == layer) p = lp;
    if (!ab.first.defined() || !ab.second.defined()) {
      problems.push_back(p + ": only one of lora_A/lora_B");
      continue;
    }
    // Build a throwaway adapter on the layer's geometry to learn the expected shapes.
    auto w = layer->base_weight();
    std::vector<int64_t> a_shape{config.rank, w.dim() > 1 ? w.size(1) : 0};
    std::vector<int64_t> b_shape{w.size(0), config.rank};
    for (int64_t d = 2; d < w.dim(); ++d) {
      a_shape.push_back(w.size(d));
      b_shape.push_back(1);
    }
    if (ab.first.sizes() != at::IntArrayRef(a_shape))
      problems.push_back(p + ".lora_A.weight is " + shape_string(ab.first.sizes()) +
                         ", the layer needs " + shape_string(a_shape));
    if (ab.second.sizes() != at::IntArrayRef(b_shape))
      problems.push_back(p + ".lora_B.weight is " + shape_string(ab.second.sizes()) +
                         ", the layer needs " + shape_string(b_shape));
    if (!ab.first.is_floating_point() || !ab.second.is_floating_point())
      problems.push_back(p + ": LoRA factors must be floating point");
  }
  if (!problems.empty()) throw bad("does not fit this model: " + join_for_message(problems));
  for (auto& [p, layer] : layers)
    if (layer->merged_adapter() == name)
      throw std::logic_error("adapter \"" + name + "\" is merged; unmerge it before replacing it");

  const std::string was_active = active_adapter(root);
  for (auto& [p, layer] : layers)
    if (layer->has_adapter(name)) layer->remove_adapter(name);
  torch::NoGradGuard no_grad;
  for (auto& [layer, ab] : plan) {
    layer->add_adapter(name, config);
    layer->lora_A(name).copy_(ab.first);
    layer->lora_B(name).copy_(ab.second);
  }
  if (was_active == name) set_active_adapter(root, name);
  return name;
}

std::string model_hash(const torch::nn::Module& root) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](const void* p, size_t n) {
    const auto* c = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) {
      h ^= c[i];
      h *= 1099511628211ull;
    }
  };
  for (auto& [name, t] : base_state_dict(root)) {
    mix(name.data(), name.size() + 1);
    const auto dtype = safetensors_dtype(t.scalar_type());
    mix(dtype.data(), dtype.size() + 1);
    for (int64_t d : t.sizes()) mix(&d, sizeof d);
    auto c = t.detach().to(torch::kCPU).contiguous();
    mix(c.data_ptr(), c.nbytes());
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace tuneloop::adapters
