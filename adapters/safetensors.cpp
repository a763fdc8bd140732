#include "adapters/safetensors.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

namespace tuneloop::adapters {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull * 1024 * 1024;
// nlohmann parses iteratively, but deep nesting still costs memory for nothing; real
// headers are two levels deep.
constexpr int kMaxJsonDepth = 64;

[[noreturn]] void fail(const std::string& source, const std::string& what) {
  throw ModelFileError(source + ": " + what);
}

bool json_too_deep(const uint8_t* p, size_t n) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < n; ++i) {
    const char c = static_cast<char>(p[i]);
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth) return true;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return false;
}

// Product of dims times element size, or nullopt-like false on overflow/negative dims.
bool byte_length(const std::vector<int64_t>& shape, size_t elem, size_t& out) {
  size_t n = elem;
  for (int64_t d : shape) {
    if (d < 0) return false;
    const auto ud = static_cast<size_t>(d);
    if (ud != 0 && n > std::numeric_limits<size_t>::max() / ud) return false;
    n *= ud;
  }
  out = n;
  return true;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

size_t dtype_size(const std::string& dtype) noexcept {
  static const std::map<std::string, size_t> sizes = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4},
      {"I16", 2}, {"I8", 1},  {"U8", 1},  {"BOOL", 1}};
  auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

SafetensorsFile SafetensorsFile::read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) fail(path, "cannot determine the file size");
  in.seekg(0, std::ios::beg);
  // Check the declared header length before reading a possibly huge file into memory.
  if (size >= 8) {
    uint8_t len_bytes[8];
    in.read(reinterpret_cast<char*>(len_bytes), 8);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
    if (header_len > kMaxHeaderBytes)
      fail(path, "header length " + std::to_string(header_len) + " exceeds the 100 MB limit");
    if (header_len > static_cast<uint64_t>(size) - 8)
      fail(path, "header length " + std::to_string(header_len) + " exceeds the file size " +
                     std::to_string(size));
    in.seekg(0, std::ios::beg);
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size))
    fail(path, "read error");
  return parse(std::move(bytes), path);
}

SafetensorsFile SafetensorsFile::parse(std::vector<uint8_t> bytes, const std::string& source) {
  using nlohmann::json;
  SafetensorsFile f;
  f.path_ = source;
  if (bytes.size() < 8)
    fail(source, "file is " + std::to_string(bytes.size()) +
                     " bytes, shorter than the 8-byte header length");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[static_cast<size_t>(i)];
  if (header_len > kMaxHeaderBytes)
    fail(source, "header length " + std::to_string(header_len) + " exceeds the 100 MB limit");
  if (header_len > bytes.size() - 8)
    fail(source, "header length " + std::to_string(header_len) + " exceeds the file size " +
                     std::to_string(bytes.size()));
  const uint8_t* hp = bytes.data() + 8;
  const size_t hn = static_cast<size_t>(header_len);
  if (json_too_deep(hp, hn)) fail(source, "header JSON is nested too deeply");
  json header = json::parse(hp, hp + hn, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) fail(source, "header is not valid JSON");
  if (!header.is_object()) fail(source, "header is not a JSON object");

  f.data_start_ = 8 + hn;
  const size_t data_len = bytes.size() - f.data_start_;
  for (auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) fail(source, "__metadata__ is not a JSON object");
      for (auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) fail(source, "metadata value of \"" + mk + "\" is not a string");
        f.metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor \"" + key + "\"";
    if (!value.is_object()) fail(source, where + ": entry is not a JSON object");
    auto dt = value.find("dtype");
    auto sh = value.find("shape");
    auto off = value.find("data_offsets");
    if (dt == value.end() || !dt->is_string()) fail(source, where + ": missing string dtype");
    if (sh == value.end() || !sh->is_array()) fail(source, where + ": missing shape list");
    if (off == value.end() || !off->is_array() || off->size() != 2)
      fail(source, where + ": data_offsets is not a list of two numbers");
    TensorInfo info;
    info.dtype = dt->get<std::string>();
    const size_t elem = dtype_size(info.dtype);
    if (elem == 0) fail(source, where + ": unknown dtype \"" + info.dtype + "\"");
    for (auto& d : *sh) {
      if (!d.is_number_unsigned())
        fail(source, where + ": shape entries must be non-negative integers");
      const auto v = d.get<uint64_t>();
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail(source, where + ": shape entry too large");
      info.shape.push_back(static_cast<int64_t>(v));
    }
    for (int i = 0; i < 2; ++i)
      if (!(*off)[i].is_number_unsigned())
        fail(source, where + ": data_offsets must be non-negative integers");
    const auto b = (*off)[0].get<uint64_t>();
    const auto e = (*off)[1].get<uint64_t>();
    if (b > e) fail(source, where + ": data_offsets begin > end");
    if (e > data_len)
      fail(source, where + ": data_offsets [" + std::to_string(b) + ", " + std::to_string(e) +
                       "] run past the data section of " + std::to_string(data_len) +
                       " bytes");
    info.begin = static_cast<size_t>(b);
    info.end = static_cast<size_t>(e);
    size_t expected = 0;
    if (!byte_length(info.shape, elem, expected) || expected != info.end - info.begin)
      fail(source, where + ": shape " + shape_string(info.shape) + " of " + info.dtype +
                       " does not match its " + std::to_string(info.end - info.begin) +
                       " bytes");
    f.tensors_.emplace(key, std::move(info));
  }

  // The tensors must tile the data section exactly: no gaps, no overlaps, nothing after.
  std::vector<std::pair<const std::string*, const TensorInfo*>> order;
  for (auto& [name, info] : f.tensors_) order.emplace_back(&name, &info);
  std::sort(order.begin(), order.end(), [](auto& a, auto& b) {
    return std::pair(a.second->begin, a.second->end) < std::pair(b.second->begin, b.second->end);
  });
  size_t cursor = 0;
  for (auto& [name, info] : order) {
    if (info->begin != cursor)
      fail(source, "tensor \"" + *name + "\" starts at byte " + std::to_string(info->begin) +
                       (info->begin < cursor ? ", overlapping the tensor before it"
                                             : ", leaving a gap after byte " +
                                                   std::to_string(cursor)));
    cursor = info->end;
  }
  if (cursor != data_len)
    fail(source, "tensors cover " + std::to_string(cursor) + " of " + std::to_string(data_len) +
                     " data bytes");
  f.bytes_ = std::move(bytes);
  return f;
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) fail(path_, "no tensor named \"" + name + "\"");
  return it->second;
}

const uint8_t* SafetensorsFile::data(const std::string& name) const {
  return bytes_.data() + data_start_ + info(name).begin;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (auto& [name, info] : tensors_) out.push_back(name);
  return out;
}

void write_safetensors(const std::string& path, const std::vector<TensorEntry>& entries,
                       const std::map<std::string, std::string>& metadata) {
  using nlohmann::json;
  json header = json::object();
  if (!metadata.empty()) {
    json m = json::object();
    for (auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = m;
  }
  // Written in name order so the same content always gives the same bytes.
  std::vector<const TensorEntry*> order;
  std::set<std::string> seen;
  for (auto& e : entries) {
    if (e.name.empty() || e.name == "__metadata__")
      fail(path, "invalid tensor name \"" + e.name + "\"");
    if (!seen.insert(e.name).second) fail(path, "duplicate tensor name \"" + e.name + "\"");
    const size_t elem = dtype_size(e.dtype);
    if (elem == 0) fail(path, "tensor \"" + e.name + "\": unknown dtype \"" + e.dtype + "\"");
    size_t expected = 0;
    if (!byte_length(e.shape, elem, expected) || expected != e.bytes.size())
      fail(path, "tensor \"" + e.name + "\": shape " + shape_string(e.shape) + " of " + e.dtype +
                     " does not match its " + std::to_string(e.bytes.size()) + " bytes");
    order.push_back(&e);
  }
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->name < b->name; });
  size_t offset = 0;
  for (auto* e : order) {
    header[e->name] = {{"dtype", e->dtype},
                       {"shape", e->shape},
                       {"data_offsets", {offset, offset + e->bytes.size()}}};
    offset += e->bytes.size();
  }
  std::string text = header.dump();
  // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
  while ((text.size() + 8) % 8 != 0) text.push_back(' ');

  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string tmp_name = ".";  // built by appending: GCC 12 warns falsely on "." + string
  tmp_name += target.filename().string();
  tmp_name += ".tmp.XXXXXX";
  std::string tmpl = (dir / tmp_name).string();
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) fail(path, std::string("cannot create a temporary file: ") + std::strerror(errno));
  auto write_all = [&](const void* p, size_t n) {
    const auto* c = static_cast<const uint8_t*>(p);
    while (n > 0) {
      const ssize_t w = ::write(fd, c, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        const std::string err = std::strerror(errno);
        ::close(fd);
        ::unlink(tmpl.c_str());
        fail(path, "write failed: " + err);
      }
      c += w;
      n -= static_cast<size_t>(w);
    }
  };
  uint8_t len[8];
  uint64_t hl = text.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(hl >> (8 * i));
  write_all(len, 8);
  write_all(text.data(), text.size());
  for (auto* e : order) write_all(e->bytes.data(), e->bytes.size());
  if (::fsync(fd) != 0 || ::fchmod(fd, 0644) != 0) {
    const std::string err = std::strerror(errno);
    ::close(fd);
    ::unlink(tmpl.c_str());
    fail(path, "fsync failed: " + err);
  }
  ::close(fd);
  if (::rename(tmpl.c_str(), path.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    ::unlink(tmpl.c_str());
    fail(path, "rename failed: " + err);
  }
  // Make the rename itself durable.
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace tuneloop::adapters
