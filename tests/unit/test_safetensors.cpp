// safetensors reader/writer and checkpoint directories (spec/model.md 3.1): round trip and every
// corrupt-input class named in the brief, each a CheckpointError naming the file/tensor.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/safetensors.h"

using namespace ds;
namespace fs = std::filesystem;

namespace {

std::string make_tmpdir() {
  std::string t = (fs::temp_directory_path() / "ds_st_XXXXXX").string();
  if (!mkdtemp(t.data())) throw std::runtime_error("mkdtemp");
  return t;
}

struct TmpDir {
  std::string path = make_tmpdir();
  ~TmpDir() { fs::remove_all(path); }
  std::string operator/(const std::string& n) const { return path + "/" + n; }
};

TensorData f32_tensor(const std::string& name, std::vector<int64_t> shape, std::vector<float> v) {
  TensorData t{name, DType::F32, std::move(shape), std::vector<uint8_t>(v.size() * 4)};
  std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
  return t;
}

// Writes a safetensors file from a raw header string (length field = header size unless given).
void write_raw(const std::string& path, const std::string& header, size_t blob_bytes,
               int64_t len_override = -1) {
  std::ofstream o(path, std::ios::binary);
  uint64_t n = len_override >= 0 ? uint64_t(len_override) : header.size();
  for (int i = 0; i < 8; ++i) o.put(char(n >> (8 * i)));
  o << header << std::string(blob_bytes, '\0');
}

// Expects CheckpointError from opening `path` whose message contains every one of `parts`.
void expect_error(const std::string& path, std::initializer_list<std::string> parts) {
  try {
    SafetensorsFile::open(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const CheckpointError& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(Safetensors, RoundTrip) {
  TmpDir d;
  std::vector<TensorData> ts;
  ts.push_back(f32_tensor("b.weight", {2, 3}, {1, 2, 3, 4, 5, 6}));
  ts.push_back({"a.bias", DType::BF16, {2}, {0x80, 0x3f, 0x00, 0xc0}});
  ts.push_back({"c.q", DType::F8_E4M3, {1, 3}, {0x38, 0x7e, 0x01}});
  write_safetensors(d / "x.safetensors", ts, {{"format", "pt"}});
  auto f = SafetensorsFile::open(d / "x.safetensors");
  ASSERT_EQ(f->tensors().size(), 3u);
  EXPECT_EQ(f->metadata().at("format"), "pt");
  const TensorView& b = f->tensors().at("b.weight");
  EXPECT_EQ(b.dtype, DType::F32);
  EXPECT_EQ(b.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(b.numel(), 6);
  EXPECT_EQ(b.nbytes, 24u);
  float v[6];
  std::memcpy(v, b.data, 24);
  EXPECT_EQ(v[5], 6.0f);
  const TensorView& a = f->tensors().at("a.bias");
  EXPECT_EQ(a.dtype, DType::BF16);
  EXPECT_EQ(bf16_to_f32(uint16_t(a.data[2] | (a.data[3] << 8))), -2.0f);
  EXPECT_EQ(a.data - b.data, 24);  // data in the given order
  EXPECT_EQ(f->tensors().at("c.q").data[1], 0x7e);
  EXPECT_EQ(a.file, d / "x.safetensors");
}

TEST(Safetensors, HeaderBytesMatchPythonLibraryLayout) {
  TmpDir d;
  write_safetensors(d / "h.safetensors", {f32_tensor("x", {1}, {1.0f})});
  std::ifstream in(d / "h.safetensors", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), {});
  // {"x":{"data_offsets":[0,4],"dtype":"F32","shape":[1]}} is 54 bytes -> padded with 2 spaces to 56.
  ASSERT_EQ(all.size(), 8u + 56u + 4u);
  EXPECT_EQ(uint8_t(all[0]), 56);
  EXPECT_EQ(all.substr(1, 7), std::string(7, '\0'));
  EXPECT_EQ(all.substr(8, 56), R"({"x":{"data_offsets":[0,4],"dtype":"F32","shape":[1]}}  )");
}

TEST(Safetensors, HeaderLengthPastEndOfFile) {
  TmpDir d;
  write_raw(d / "bad.safetensors", "{}", 0, 1000);
  expect_error(d / "bad.safetensors", {d / "bad.safetensors", "header length 1000 exceeds"});
  write_raw(d / "huge.safetensors", "{}", 0, int64_t(0x7fffffffffffffffLL));
  expect_error(d / "huge.safetensors", {"huge.safetensors", "exceeds"});
}

TEST(Safetensors, InvalidJson) {
  TmpDir d;
  write_raw(d / "j.safetensors", "{\"x\": {\"dtype\": ", 0);
  expect_error(d / "j.safetensors", {"j.safetensors", "not valid JSON"});
  write_raw(d / "arr.safetensors", "[1,2,3]", 0);
  expect_error(d / "arr.safetensors", {"arr.safetensors", "not a JSON object"});
}

TEST(Safetensors, OffsetsPastEndOfBlob) {
  TmpDir d;
  write_raw(d / "o.safetensors", R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8);
  expect_error(d / "o.safetensors", {"o.safetensors", "tensor 'w'", "past the data blob"});
}

TEST(Safetensors, ShapeDoesNotMatchSpan) {
  TmpDir d;
  write_raw(d / "s.safetensors", R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8);
  expect_error(d / "s.safetensors", {"tensor 'w'", "does not match"});
  // A shape whose product overflows 64 bits must be caught, not wrap around to the span.
  write_raw(d / "ov.safetensors",
            R"({"w":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", 0);
  expect_error(d / "ov.safetensors", {"tensor 'w'", "does not match"});
}

TEST(Safetensors, OverlappingTensors) {
  TmpDir d;
  write_raw(d / "ol.safetensors",
            R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
            12);
  expect_error(d / "ol.safetensors", {"ol.safetensors", "tensor 'b' overlaps tensor 'a'"});
}

TEST(Safetensors, UnknownDtypeAndBadEntries) {
  TmpDir d;
  write_raw(d / "u.safetensors", R"({"w":{"dtype":"Q9","shape":[1],"data_offsets":[0,1]}})", 1);
  expect_error(d / "u.safetensors", {"u.safetensors", "tensor 'w'", "unknown dtype 'Q9'"});
  write_raw(d / "n.safetensors", R"({"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})", 1);
  expect_error(d / "n.safetensors", {"tensor 'w'", "non-negative"});
  write_raw(d / "m.safetensors", R"({"__metadata__":{"k":1}})", 0);
  expect_error(d / "m.safetensors", {"__metadata__", "'k'"});
  write_raw(d / "r.safetensors", R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[1,0]}})", 1);
  expect_error(d / "r.safetensors", {"tensor 'w'", "begin 1 > end 0"});
}

TEST(Safetensors, EveryTruncationIsAnErrorNotACrash) {
  TmpDir d;
  std::vector<TensorData> ts{f32_tensor("a", {3}, {1, 2, 3}), f32_tensor("b", {2}, {4, 5})};
  write_safetensors(d / "full.safetensors", ts);
  std::ifstream in(d / "full.safetensors", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), {});
  for (size_t len = 0; len < all.size(); ++len) {
    { std::ofstream o(d / "t.safetensors", std::ios::binary | std::ios::trunc); o << all.substr(0, len); }
    EXPECT_THROW(SafetensorsFile::open(d / "t.safetensors"), CheckpointError) << "length " << len;
  }
  EXPECT_NO_THROW(SafetensorsFile::open(d / "full.safetensors"));
  expect_error(d / "missing.safetensors", {"missing.safetensors", "cannot open"});
}

class CheckpointDir : public ::testing::Test {
 protected:
  TmpDir d;
  void SetUp() override {
    write_safetensors(d / "model-00001-of-00002.safetensors", {f32_tensor("x.weight", {2}, {1, 2})});
    write_safetensors(d / "model-00002-of-00002.safetensors",
                      {f32_tensor("y.weight", {1}, {3}), f32_tensor("y.bias", {1}, {4})});
  }
  void index(const std::string& wm) {
    std::ofstream(d / "model.safetensors.index.json") << R"({"metadata":{"total_size":16},"weight_map":)" << wm << "}";
  }
  void expect_open_error(std::initializer_list<std::string> parts) {
    try {
      Checkpoint::open(d.path);
      ADD_FAILURE() << "no error";
    } catch (const CheckpointError& e) {
      for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
  }
};

TEST_F(CheckpointDir, IndexWithTwoShards) {
  index(R"({"x.weight":"model-00001-of-00002.safetensors","y.weight":"model-00002-of-00002.safetensors",)"
        R"("y.bias":"model-00002-of-00002.safetensors"})");
  Checkpoint ck = Checkpoint::open(d.path);
  EXPECT_EQ(ck.names(), (std::vector<std::string>{"x.weight", "y.bias", "y.weight"}));
  EXPECT_EQ(ck.get("y.bias").file, d / "model-00002-of-00002.safetensors");
  float v;
  std::memcpy(&v, ck.get("y.bias").data, 4);
  EXPECT_EQ(v, 4.0f);
  EXPECT_EQ(ck.find("z"), nullptr);
  try {
    ck.get("z.weight");
    ADD_FAILURE();
  } catch (const CheckpointError& e) {
    EXPECT_EQ(std::string(e.what()), "missing tensor z.weight in " + d.path);
  }
  Checkpoint copy = ck;  // views stay valid in copies (files are shared)
  std::memcpy(&v, copy.get("x.weight").data + 4, 4);
  EXPECT_EQ(v, 2.0f);
}

TEST_F(CheckpointDir, IndexNamesMissingShard) {
  index(R"({"x.weight":"model-00001-of-00002.safetensors","y.weight":"model-00003-of-00003.safetensors"})");
  expect_open_error({"model.safetensors.index.json", "model-00003-of-00003.safetensors", "y.weight", "does not exist"});
}

TEST_F(CheckpointDir, IndexNamesTensorAbsentFromShard) {
  index(R"({"x.weight":"model-00001-of-00002.safetensors","z.weight":"model-00001-of-00002.safetensors",)"
        R"("y.weight":"model-00002-of-00002.safetensors","y.bias":"model-00002-of-00002.safetensors"})");
  expect_open_error({"model-00001-of-00002.safetensors", "tensor 'z.weight'", "missing from this shard"});
}

TEST_F(CheckpointDir, ShardTensorNotInIndex) {
  index(R"({"x.weight":"model-00001-of-00002.safetensors","y.weight":"model-00002-of-00002.safetensors"})");
  expect_open_error({"model-00002-of-00002.safetensors", "tensor 'y.bias'", "not assigned"});
}

TEST_F(CheckpointDir, BadIndexJson) {
  index(R"("nope")");
  expect_open_error({"model.safetensors.index.json", "weight_map"});
  std::ofstream(d / "model.safetensors.index.json") << "{oops";
  expect_open_error({"model.safetensors.index.json", "not valid JSON"});
  index(R"({"x.weight":"../etc/passwd"})");
  expect_open_error({"invalid shard file '../etc/passwd'"});
}

TEST(Checkpoint, SingleFileMissingDirAndNoWeights) {
  TmpDir d;
  try {
    Checkpoint::open(d.path);
    ADD_FAILURE();
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("no weights in " + d.path), std::string::npos) << e.what();
  }
  try {
    Checkpoint::open(d / "nope");
    ADD_FAILURE();
  } catch (const CheckpointError& e) {
    EXPECT_EQ(std::string(e.what()), "checkpoint directory " + (d / "nope") + " does not exist");
  }
  write_safetensors(d / "model.safetensors", {f32_tensor("w", {1}, {7})});
  Checkpoint ck = Checkpoint::open(d.path);
  EXPECT_EQ(ck.names(), std::vector<std::string>{"w"});
}

TEST(Safetensors, CorruptedHeaderBytesNeverCrash) {
  // Every header byte replaced by a few troublesome values: open() must either succeed with views
  // inside the file or throw CheckpointError (run under ASan/UBSan in the sanitizer build).
  TmpDir d;
  write_safetensors(d / "ok.safetensors", {f32_tensor("a", {3}, {1, 2, 3}), f32_tensor("b", {2}, {4, 5})});
  std::ifstream in(d / "ok.safetensors", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), {});
  const size_t header_end = 8 + size_t(uint8_t(all[0]));
  int ok = 0, errors = 0;
  for (size_t i = 0; i < header_end; ++i) {
    for (char c : {'0', '9', '"', '}', '[', '-', char(0xff), char(0)}) {
      std::string bad = all;
      bad[i] = c;
      { std::ofstream o(d / "c.safetensors", std::ios::binary | std::ios::trunc); o << bad; }
      try {
        auto f = SafetensorsFile::open(d / "c.safetensors");
        for (const auto& [n, t] : f->tensors()) {
          volatile uint8_t sink = 0;
          for (size_t k = 0; k < t.nbytes; ++k) sink = sink + t.data[k];  // must stay in the mapping
        }
        ++ok;
      } catch (const CheckpointError&) {
        ++errors;
      }
    }
  }
  EXPECT_GT(errors, 0);
  EXPECT_GT(ok, 0);  // e.g. a digit swapped inside a name still parses
}
