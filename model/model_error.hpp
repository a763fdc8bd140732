#pragma once
#include <stdexcept>

namespace tuneloop::model {

// A failure of the model: a missing, corrupt or mismatched weight file, bad generation
// parameters, a training input that can't be used. The message names the file or parameter.
class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace tuneloop::model
