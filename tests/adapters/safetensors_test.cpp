#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <optional>
#include <random>

#include <torch/torch.h>

#include "adapters/safetensors.hpp"
#include "adapters/tensor_file.hpp"
#include "tests/support/temp_dir.hpp"

namespace tuneloop::adapters {
namespace {

using tuneloop::testing::TempDir;

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// A file whose header text and data section are given verbatim; the length prefix is
// the true header length unless `claimed_len` says otherwise.
std::vector<uint8_t> raw_file(const std::string& header, size_t data_bytes,
                              std::optional<uint64_t> claimed_len = std::nullopt) {
  const uint64_t len = claimed_len.value_or(header.size());
  std::vector<uint8_t> out;
  out.reserve(8 + header.size() + data_bytes);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(len >> (8 * i)));
  for (char c : header) out.push_back(static_cast<uint8_t>(c));
  out.resize(out.size() + data_bytes, 0x3f);
  return out;
}

std::string parse_error(const std::vector<uint8_t>& bytes) {
  try {
    SafetensorsFile::parse(bytes, "fixture.safetensors");
  } catch (const ModelFileError& e) {
    return e.what();
  }
  return "";
}

// A valid two-tensor file written by our own writer.
std::vector<uint8_t> valid_file(const TempDir& dir) {
  std::vector<float> a = {1.5f, -2.f, 3.25f, 0.f, 7.f, 8.f};
  std::vector<int64_t> b = {-1, 1ll << 40};
  const std::string path = dir.file("valid.safetensors");
  write_safetensors(path,
                    {{"a", "F32", {2, 3}, {reinterpret_cast<const uint8_t*>(a.data()), 24}},
                     {"b", "I64", {2}, {reinterpret_cast<const uint8_t*>(b.data()), 16}}},
                    {{"format", "test"}});
  return read_bytes(path);
}

TEST(Safetensors, RoundTripKeepsValuesDtypesShapesAndMetadata) {
  TempDir dir("tuneloop-adapters");
  std::vector<float> f32 = {1.f, -2.5f, 3.75f, 1e-20f};
  std::vector<uint16_t> f16 = {0x3c00, 0xc000};  // 1.0, -2.0
  std::vector<int32_t> i32 = {7, -8, 9};
  std::vector<uint8_t> u8 = {0, 255};
  auto span = [](const auto& v) {
    return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()),
                                    v.size() * sizeof(v[0]));
  };
  const std::string path = dir.file("t.safetensors");
  write_safetensors(path,
                    {{"z.f32", "F32", {2, 2}, span(f32)},
                     {"f16", "F16", {2}, span(f16)},
                     {"i32", "I32", {3}, span(i32)},
                     {"u8", "U8", {1, 2}, span(u8)},
                     {"empty", "F32", {0, 4}, {}}},
                    {{"format", "test"}, {"note", "ünïcode ok"}});
  auto f = SafetensorsFile::read(path);
  EXPECT_EQ(f.names(), (std::vector<std::string>{"empty", "f16", "i32", "u8", "z.f32"}));
  EXPECT_EQ(f.metadata().at("note"), "ünïcode ok");
  EXPECT_EQ(f.info("z.f32").shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(f.info("f16").dtype, "F16");
  EXPECT_EQ(std::memcmp(f.data("z.f32"), f32.data(), 16), 0);
  EXPECT_EQ(std::memcmp(f.data("i32"), i32.data(), 12), 0);
  EXPECT_EQ(std::memcmp(f.data("u8"), u8.data(), 2), 0);
  EXPECT_EQ(f.info("empty").end - f.info("empty").begin, 0u);
  EXPECT_THROW(f.info("nope"), ModelFileError);
}

TEST(Safetensors, DataSectionStartsEightByteAligned) {
  TempDir dir("tuneloop-adapters");
  auto bytes = valid_file(dir);
  uint64_t len = 0;
  for (int i = 7; i >= 0; --i) len = (len << 8) | bytes[static_cast<size_t>(i)];
  EXPECT_EQ((8 + len) % 8, 0u);
}

TEST(Safetensors, TorchTensorsRoundTripInEveryDtype) {
  TempDir dir("tuneloop-adapters");
  torch::manual_seed(1);
  std::map<std::string, torch::Tensor> in = {
      {"f32", torch::randn({3, 4})},
      {"f16", torch::randn({5}).to(torch::kHalf)},
      {"bf16", torch::randn({2, 2}).to(torch::kBFloat16)},
      {"f64", torch::randn({2}, torch::kDouble)},
      {"i64", torch::arange(-3, 3, torch::kLong)},
      {"i32", torch::arange(0, 7, torch::kInt).reshape({7, 1})},
      {"u8", torch::arange(250, 256, torch::kInt).to(torch::kByte)},
      {"bool", torch::tensor({true, false, true})},
      {"scalar", torch::tensor(3.5f)},
      {"strided", torch::randn({4, 6}).t()}};
  save_tensors(dir.file("t.safetensors"), in, {{"k", "v"}});
  std::map<std::string, std::string> meta;
  auto out = load_tensors(dir.file("t.safetensors"), &meta);
  EXPECT_EQ(meta.at("k"), "v");
  ASSERT_EQ(out.size(), in.size());
  for (auto& [name, t] : in) {
    SCOPED_TRACE(name);
    EXPECT_EQ(out.at(name).scalar_type(), t.scalar_type());
    EXPECT_EQ(out.at(name).sizes(), t.sizes());
    EXPECT_TRUE(torch::equal(out.at(name), t));
  }
}

TEST(Safetensors, SavingReplacesAnExistingFileAndLeavesNoTemporaryFiles) {
  TempDir dir("tuneloop-adapters");
  const std::string path = dir.file("t.safetensors");
  save_tensors(path, {{"x", torch::zeros({2})}});
  save_tensors(path, {{"y", torch::ones({3})}});
  auto out = load_tensors(path);
  EXPECT_EQ(out.count("x"), 0u);
  EXPECT_TRUE(torch::equal(out.at("y"), torch::ones({3})));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()),
                          std::filesystem::directory_iterator()),
            1);
}

TEST(Safetensors, WriterRefusesEntriesWhoseShapeDoesNotMatchTheirBytes) {
  TempDir dir("tuneloop-adapters");
  std::vector<float> v(3);
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(v.data()), 12);
  EXPECT_THROW(write_safetensors(dir.file("a"), {{"x", "F32", {4}, bytes}}), ModelFileError);
  EXPECT_THROW(write_safetensors(dir.file("b"), {{"x", "Q4", {3}, bytes}}), ModelFileError);
  EXPECT_THROW(write_safetensors(dir.file("c"), {{"x", "F32", {3}, bytes}, {"x", "F32", {3}, bytes}}),
               ModelFileError);
  EXPECT_FALSE(std::filesystem::exists(dir.file("a")));
}

TEST(Safetensors, MissingFileIsReportedWithItsPath) {
  try {
    SafetensorsFile::read("/nonexistent/dir/model.safetensors");
    FAIL() << "no exception";
  } catch (const ModelFileError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/model.safetensors"), std::string::npos);
  }
}

TEST(Safetensors, EveryTruncationOfAValidFileIsRejected) {
  TempDir dir("tuneloop-adapters");
  auto bytes = valid_file(dir);
  ASSERT_EQ(parse_error(bytes), "");
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<long>(n));
    EXPECT_NE(parse_error(cut), "") << "truncated to " << n << " bytes";
  }
  // Through the file reader too, which checks the length prefix before reading it all.
  write_bytes(dir.file("cut.safetensors"), {bytes.begin(), bytes.begin() + 20});
  try {
    SafetensorsFile::read(dir.file("cut.safetensors"));
    FAIL() << "no exception";
  } catch (const ModelFileError& e) {
    EXPECT_NE(std::string(e.what()).find("cut.safetensors"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("header length"), std::string::npos);
  }
}

TEST(Safetensors, HeaderLengthThatLiesIsRejected) {
  const std::string h = R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})";
  EXPECT_EQ(parse_error(raw_file(h, 4)), "");
  EXPECT_NE(parse_error(raw_file(h, 4, 1000)).find("exceeds the file size"), std::string::npos);
  EXPECT_NE(parse_error(raw_file(h, 4, uint64_t{1} << 40)).find("100 MB"), std::string::npos);
  EXPECT_NE(parse_error(raw_file(h, 4, ~uint64_t{1})).find("100 MB"), std::string::npos);
  // Claiming a shorter header cuts the JSON.
  EXPECT_NE(parse_error(raw_file(h, 4, h.size() - 3)).find("not valid JSON"),
            std::string::npos);
  EXPECT_NE(parse_error({1, 2, 3}).find("shorter than the 8-byte"), std::string::npos);
}

TEST(Safetensors, OffsetsThatLieAreRejected) {
  auto err = [](const std::string& tensors, size_t data) {
    return parse_error(raw_file("{" + tensors + "}", data));
  };
  // Past the end of the data.
  EXPECT_NE(err(R"("a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]})", 4).find("run past"),
            std::string::npos);
  // Begin after end.
  EXPECT_NE(err(R"("a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]})", 4).find("begin > end"),
            std::string::npos);
  // Two tensors sharing bytes.
  EXPECT_NE(err(R"("a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                R"("b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]})",
                8)
                .find("overlapping"),
            std::string::npos);
  // A gap between tensors.
  EXPECT_NE(err(R"("a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                R"("b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]})",
                6)
                .find("gap"),
            std::string::npos);
  // Trailing bytes nobody owns.
  EXPECT_NE(err(R"("a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]})", 6).find("cover 2 of 6"),
            std::string::npos);
  // Shape × dtype size disagrees with the byte range.
  EXPECT_NE(err(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]})", 4).find("does not match"),
            std::string::npos);
  // Shape product overflows.
  EXPECT_NE(err(R"("a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]})", 4)
                .find("does not match"),
            std::string::npos);
  EXPECT_NE(err(R"("a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]})", 4).find("non-negative"),
            std::string::npos);
  EXPECT_NE(err(R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0]})", 4).find("data_offsets"),
            std::string::npos);
}

TEST(Safetensors, UnknownDtypeIsRejectedByName) {
  const std::string msg =
      parse_error(raw_file(R"({"w":{"dtype":"Q4_K","shape":[2],"data_offsets":[0,2]}})", 2));
  EXPECT_NE(msg.find("unknown dtype \"Q4_K\""), std::string::npos);
  EXPECT_NE(msg.find("fixture.safetensors"), std::string::npos);
  EXPECT_NE(msg.find("\"w\""), std::string::npos);
}

TEST(Safetensors, HeaderThatIsNotAJsonObjectIsRejected) {
  EXPECT_NE(parse_error(raw_file("{\"a\": [1, 2", 0)).find("not valid JSON"), std::string::npos);
  EXPECT_NE(parse_error(raw_file("\x80\xff garbage", 0)).find("not valid JSON"), std::string::npos);
  EXPECT_NE(parse_error(raw_file("[1, 2, 3]", 0)).find("not a JSON object"), std::string::npos);
  EXPECT_NE(parse_error(raw_file(R"({"__metadata__": {"k": 3}})", 0)).find("not a string"),
            std::string::npos);
  EXPECT_NE(parse_error(raw_file(R"({"a": 5})", 0)).find("not a JSON object"), std::string::npos);
  EXPECT_NE(parse_error(raw_file(std::string(10000, '[') + std::string(10000, ']'), 0))
                .find("nested too deeply"),
            std::string::npos);
  EXPECT_EQ(parse_error(raw_file("{}", 0)), "");  // an empty file is valid
}

TEST(Safetensors, RandomByteFlipsNeverCrashTheReader) {
  TempDir dir("tuneloop-adapters");
  const auto good = valid_file(dir);
  std::mt19937 rng(1234);
  int rejected = 0;
  for (int round = 0; round < 200; ++round) {
    auto bytes = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < flips; ++i) {
      // Bias toward the length prefix and header, where the interesting checks are.
      const size_t pos = rng() % 2 ? rng() % std::min<size_t>(bytes.size(), 96) : rng() % bytes.size();
      bytes[pos] = rng() % 3 == 0 ? static_cast<uint8_t>(rng()) : bytes[pos] ^ (1u << (rng() % 8));
    }
    if (rng() % 5 == 0) bytes.resize(rng() % bytes.size());
    try {
      auto f = SafetensorsFile::parse(bytes, "fuzz");
      // If it was accepted every advertised byte must be readable.
      uint64_t sum = 0;
      for (auto& name : f.names()) {
        const auto& info = f.info(name);
        for (size_t k = info.begin; k < info.end; ++k) sum += f.data(name)[k - info.begin];
      }
      (void)sum;
    } catch (const ModelFileError&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 50);
}

}  // namespace
}  // namespace tuneloop::adapters
