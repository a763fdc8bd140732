#include "adapters/tensor_file.hpp"

#include <cstring>
#include <set>
#include <stdexcept>

#include "adapters/lora.hpp"
#include "adapters/messages.hpp"

namespace tuneloop::adapters {
namespace {

void require_unmerged(const torch::nn::Module& module) {
  for (auto& [path, layer] : lora_layers(module))
    if (!layer->merged_adapter().empty())
      throw std::logic_error("adapter \"" + layer->merged_adapter() + "\" is merged into layer \"" +
                             path + "\"; unmerge it before loading base weights");
}

}  // namespace

std::string safetensors_dtype(torch::Dtype dtype) {
  switch (dtype) {
    case torch::kFloat64: return "F64";
    case torch::kFloat32: return "F32";
    case torch::kFloat16: return "F16";
    case torch::kBFloat16: return "BF16";
    case torch::kInt64: return "I64";
    case torch::kInt32: return "I32";
    case torch::kInt16: return "I16";
    case torch::kInt8: return "I8";
    case torch::kUInt8: return "U8";
    case torch::kBool: return "BOOL";
    default: throw ModelFileError(std::string("dtype ") + c10::toString(dtype) +
                                  " has no safetensors name");
  }
}

torch::Dtype torch_dtype(const std::string& dtype) {
  static const std::map<std::string, torch::Dtype> map = {
      {"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16},
      {"BF16", torch::kBFloat16}, {"I64", torch::kInt64}, {"I32", torch::kInt32},
      {"I16", torch::kInt16},   {"I8", torch::kInt8},     {"U8", torch::kUInt8},
      {"BOOL", torch::kBool}};
  auto it = map.find(dtype);
  if (it == map.end()) throw ModelFileError("unknown safetensors dtype \"" + dtype + "\"");
  return it->second;
}

std::map<std::string, torch::Tensor> load_tensors(const std::string& path,
                                                  std::map<std::string, std::string>* metadata) {
  const SafetensorsFile file = SafetensorsFile::read(path);
  std::map<std::string, torch::Tensor> out;
  for (auto& name : file.names()) {
    const TensorInfo& info = file.info(name);
    torch::Dtype dtype;
    try {
      dtype = torch_dtype(info.dtype);
    } catch (const ModelFileError& e) {
      throw ModelFileError(path + ": tensor \"" + name + "\": " + e.what());
    }
    auto t = torch::empty(info.shape, torch::TensorOptions().dtype(dtype));
    if (info.end > info.begin) std::memcpy(t.data_ptr(), file.data(name), info.end - info.begin);
    if (dtype == torch::kBool) {
      // Bytes other than 0/1 are not valid bools; normalise instead of trusting them.
      t = t.view(torch::kUInt8).ne(0);
    }
    out.emplace(name, std::move(t));
  }
  if (metadata) *metadata = file.metadata();
  return out;
}

void save_tensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                  const std::map<std::string, std::string>& metadata) {
  std::vector<torch::Tensor> keep;
  std::vector<TensorEntry> entries;
  keep.reserve(tensors.size());
  for (auto& [name, t] : tensors) {
    if (!t.defined()) throw ModelFileError(path + ": tensor \"" + name + "\" is undefined");
    std::string dtype;
    try {
      dtype = safetensors_dtype(t.scalar_type());
    } catch (const ModelFileError& e) {
      throw ModelFileError(path + ": tensor \"" + name + "\": " + e.what());
    }
    keep.push_back(t.detach().to(torch::kCPU).contiguous());
    auto& c = keep.back();
    entries.push_back({name, dtype, c.sizes().vec(),
                       {static_cast<const uint8_t*>(c.data_ptr()), c.nbytes()}});
  }
  write_safetensors(path, entries, metadata);
}

std::map<std::string, torch::Tensor> base_state_dict(const torch::nn::Module& module) {
  auto ids = lora_factor_ids(module);
  std::set<const void*> factors(ids.begin(), ids.end());
  // Merged layers report their original weight, not W + ΔW.
  std::map<const void*, torch::Tensor> unmerged;
  for (auto& [path, layer] : lora_layers(module))
    if (!layer->merged_adapter().empty())
      unmerged[layer->base_weight().unsafeGetTensorImpl()] = layer->unmerged_weight();
  std::map<std::string, torch::Tensor> out;
  for (auto& item : module.named_parameters()) {
    const void* id = item.value().unsafeGetTensorImpl();
    if (factors.count(id)) continue;
    auto it = unmerged.find(id);
    out[item.key()] = it != unmerged.end() ? it->second : item.value();
  }
  for (auto& item : module.named_buffers())
    if (item.value().defined()) out[item.key()] = item.value();
  return out;
}

StateDictReport load_state_dict(torch::nn::Module& module,
                                const std::map<std::string, torch::Tensor>& tensors, bool strict,
                                const std::string& source) {
  require_unmerged(module);
  auto targets = base_state_dict(module);
  StateDictReport report;
  std::vector<std::string> mismatched;
  for (auto& [name, t] : targets) {
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      report.missing.push_back(name);
    } else if (it->second.sizes() != t.sizes()) {
      mismatched.push_back(name + " is " + shape_string(it->second.sizes()) + " in the file, " +
                           shape_string(t.sizes()) + " in the model");
    }
  }
  for (auto& [name, t] : tensors)
    if (!targets.count(name)) report.unexpected.push_back(name);
  std::string problems;
  if (!mismatched.empty()) problems += "shape mismatch: " + join_for_message(mismatched);
  if (strict && !report.missing.empty())
    problems += (problems.empty() ? "" : "; ") + std::string("missing keys: ") + join_for_message(report.missing);
  if (strict && !report.unexpected.empty())
    problems += (problems.empty() ? "" : "; ") + std::string("unexpected keys: ") +
                join_for_message(report.unexpected);
  if (!problems.empty()) throw ModelFileError(source + ": " + problems);
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : targets) {
    auto it = tensors.find(name);
    if (it != tensors.end()) t.copy_(it->second);
  }
  return report;
}

StateDictReport load_state_dict(torch::nn::Module& module, const std::string& path, bool strict) {
  return load_state_dict(module, load_tensors(path), strict, path);
}

void save_state_dict(const torch::nn::Module& module, const std::string& path,
                     const std::map<std::string, std::string>& metadata) {
  save_tensors(path, base_state_dict(module), metadata);
}

}  // namespace tuneloop::adapters
