#pragma once
// Pieces of error messages shared by the adapter and tensor-file loaders.
#include <string>
#include <vector>

#include <torch/torch.h>

namespace tuneloop::adapters {

// "a, b, c" — at most `limit` items, then how many there were in all.
inline std::string join_for_message(const std::vector<std::string>& items, size_t limit = 10) {
  std::string s;
  for (size_t i = 0; i < items.size() && i < limit; ++i) s += (i ? ", " : "") + items[i];
  if (items.size() > limit) s += ", … (" + std::to_string(items.size()) + " in all)";
  return s;
}

// "[2, 8, 16]"
inline std::string shape_string(at::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace tuneloop::adapters
