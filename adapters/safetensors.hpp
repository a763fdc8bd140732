#pragma once
// Reading and writing safetensors files (8-byte little-endian header length, a JSON
// header, then raw tensor bytes). Pure C++: no LibTorch types here, so code outside
// model/ and adapters/ can inspect model and adapter files (e.g. their metadata).

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace tuneloop::adapters {

/// A model, checkpoint or adapter file that cannot be used; the message names the file and
/// the problem.
class ModelFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One tensor as described by the header; begin/end are byte offsets into the data
/// section (after the header).
struct TensorInfo {
  std::string dtype;           // "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"
  std::vector<int64_t> shape;  // empty = scalar
  size_t begin = 0;
  size_t end = 0;
};

/// Bytes per element of a safetensors dtype name, or 0 if the name is unknown.
size_t dtype_size(const std::string& dtype) noexcept;

/// A parsed safetensors file held in memory. Every offset, length and dtype has been
/// validated by read()/parse(), so data(name) is always safe to read info(name).end -
/// info(name).begin bytes from.
class SafetensorsFile {
 public:
  /// Reads and validates the whole file.
  /// Throws ModelFileError (naming the file) if it cannot be opened or read, is shorter
  /// than 8 bytes, its header length exceeds the file or 100 MB, the header is not a
  /// JSON object, a dtype is unknown, a shape does not match its byte length, or the
  /// offsets are out of range, overlap or do not cover the data section exactly.
  static SafetensorsFile read(const std::string& path);

  /// Validates bytes already in memory; `source` names them in error messages.
  /// Throws ModelFileError as read() does.
  static SafetensorsFile parse(std::vector<uint8_t> bytes, const std::string& source);

  const std::string& path() const noexcept { return path_; }
  /// The "__metadata__" string map (empty if the file has none).
  const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }
  bool contains(const std::string& name) const noexcept { return tensors_.count(name) != 0; }
  /// Throws ModelFileError if the file has no tensor of that name.
  const TensorInfo& info(const std::string& name) const;
  /// Start of the tensor's bytes (little-endian, row-major). Throws ModelFileError if the
  /// file has no tensor of that name.
  const uint8_t* data(const std::string& name) const;
  /// Tensor names in sorted order.
  std::vector<std::string> names() const;

 private:
  std::string path_;
  std::vector<uint8_t> bytes_;
  size_t data_start_ = 0;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

/// One tensor to write. `bytes` is not owned and must stay valid during the call.
struct TensorEntry {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::span<const uint8_t> bytes;
};

/// Writes a safetensors file atomically: a temporary file in the same folder, fsync, then
/// rename over `path`, so a crash never leaves a half-written file under that name.
/// Throws ModelFileError if an entry is inconsistent (unknown dtype, shape × dtype size ≠
/// byte length, duplicate or empty name, the name "__metadata__") or the file cannot be
/// written.
void write_safetensors(const std::string& path, const std::vector<TensorEntry>& entries,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace tuneloop::adapters
