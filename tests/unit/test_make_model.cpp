// make-model: generator values (reproduced by the Python recipe of docs/make_model.md), byte-identical
// reruns, HF layout, scale shapes, and Checkpoint/expected_tensors agreement (D25, spec 10.1).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "common/safetensors.h"
#include "model/config.h"
#include "model/tensor_names.h"
#include "tools/commands.h"
#include "tools/make_model.h"
#include "tools/make_model_rng.h"

using namespace ds;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

struct TmpDir {
  std::string path;
  TmpDir() {
    path = (fs::temp_directory_path() / "ds_mm_XXXXXX").string();
    if (!mkdtemp(path.data())) throw std::runtime_error("mkdtemp");
  }
  ~TmpDir() { fs::remove_all(path); }
};

float f32_at(const TensorView& t, int64_t i) {
  float v;
  std::memcpy(&v, t.data + 4 * i, 4);
  return v;
}

}  // namespace

TEST(MakeModelRng, KnownValues) {
  EXPECT_EQ(mm::fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(mm::fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(mm::splitmix64_at(0, 0), 0xe220a8397b1dcdafull);  // first splitmix64 output, seed 0
  EXPECT_EQ(mm::uniform_at(0, 0), double(0xe220a8397b1dcdafull >> 11) * 0x1p-53);
  // Independently computed with the Python recipe in docs/make_model.md (tiny-a, seed 1).
  float v[4];
  mm::fill_normal(mm::fnv1a64("model.norm.weight") ^ 1, 1.0, 0.1, v, 4);
  EXPECT_EQ(v[0], 0x1.e1c33cp-1f);
  EXPECT_EQ(v[1], 0x1.de914ap-1f);
  EXPECT_EQ(v[2], 0x1.fd6976p-1f);
  EXPECT_EQ(v[3], 0x1.16ac52p+0f);
  EXPECT_EQ(float(1.0 + 0.1 * mm::normal_at(mm::fnv1a64("model.norm.weight") ^ 1, 3)), v[3]);
}

class TinyA : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TmpDir();
    make_model("tiny-a", dir_->path + "/a");
    make_model("tiny-a", dir_->path + "/b");
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string a() { return dir_->path + "/a"; }
  static inline TmpDir* dir_ = nullptr;
};

TEST_F(TinyA, TwoRunsAreByteIdentical) {
  std::set<std::string> files;
  for (const auto& e : fs::directory_iterator(a())) files.insert(e.path().filename().string());
  EXPECT_EQ(files, (std::set<std::string>{"config.json", "generation_config.json", "tokenizer.json",
                                          "tokenizer_config.json", "model.safetensors.index.json",
                                          "model-00001-of-00005.safetensors", "model-00002-of-00005.safetensors",
                                          "model-00003-of-00005.safetensors", "model-00004-of-00005.safetensors",
                                          "model-00005-of-00005.safetensors"}));
  for (const auto& f : files) EXPECT_TRUE(slurp(a() + "/" + f) == slurp(dir_->path + "/b/" + f)) << f;
  // No temporary directories left beside the outputs.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir_->path)) entries += e.is_directory() ? 1 : 0;
  EXPECT_EQ(entries, 2);
}

TEST_F(TinyA, CheckpointMatchesExpectedTensors) {
  const ModelConfig cfg = ModelConfig::load(a());
  EXPECT_EQ(cfg.vocab_size, 1024);
  EXPECT_EQ(cfg.index_topk, 16);
  EXPECT_NEAR(cfg.softmax_scale(), 1.8738542 / std::sqrt(128.0), 1e-7);  // qk_head_dim 128, m^2 of spec 2
  const Checkpoint ck = Checkpoint::open(a());
  const auto expected = expected_tensors(cfg);
  std::vector<std::string> names;
  for (const auto& t : expected) names.push_back(t.name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(ck.names(), names);
  int fp8 = 0;
  for (const auto& t : expected) {
    const TensorView& v = ck.get(t.name);
    EXPECT_EQ(v.dtype, t.dtype) << t.name;
    EXPECT_EQ(v.shape, t.shape) << t.name;
    if (!t.fp8) continue;
    ++fp8;
    const TensorView& s = ck.get(t.name + "_scale_inv");
    EXPECT_EQ(s.shape, (std::vector<int64_t>{(t.shape[0] + 127) / 128, (t.shape[1] + 127) / 128})) << t.name;
    // scale = amax / 448, so every block holds a +-448 code (0x7e / 0xfe) and no NaN code.
    std::set<int64_t> blocks_with_max;
    for (int64_t i = 0; i < v.numel(); ++i) {
      const uint8_t b = v.data[i];
      ASSERT_NE(b & 0x7f, 0x7f) << t.name;
      if ((b & 0x7f) == 0x7e) blocks_with_max.insert((i / t.shape[1]) / 128 * s.shape[1] + (i % t.shape[1]) / 128);
    }
    EXPECT_EQ(int64_t(blocks_with_max.size()), s.numel()) << t.name;
  }
  EXPECT_EQ(fp8, 4 * 7 + 3 + 3 * (8 * 3 + 3));  // 7 attn+indexer x (3 + MTP), dense FFN, 3 MoE FFNs
  // The partial FP8 edge block of spec 10.1: kv_a_proj out = 128 + 64 = 192 rows -> [2, 2].
  EXPECT_EQ(ck.get("model.layers.0.self_attn.kv_a_proj_with_mqa.weight_scale_inv").shape,
            (std::vector<int64_t>{2, 2}));
  // MTP copies equal the main embedding / head.
  const TensorView& e = ck.get("model.embed_tokens.weight");
  const TensorView& e3 = ck.get("model.layers.3.embed_tokens.weight");
  EXPECT_EQ(std::memcmp(e.data, e3.data, e.nbytes), 0);
  EXPECT_EQ(std::memcmp(ck.get("lm_head.weight").data, ck.get("model.layers.3.shared_head.head.weight").data,
                        e.nbytes), 0);
  EXPECT_NE(std::memcmp(e.data, ck.get("lm_head.weight").data, e.nbytes), 0);
  // Values from the Python recipe (docs/make_model.md): model.norm.weight BF16 bits, and
  // e_score_correction_bias F32 values of layer 1.
  const TensorView& n = ck.get("model.norm.weight");
  EXPECT_EQ(n.data[0] | (n.data[1] << 8), 0x3f71);
  EXPECT_EQ(n.data[6] | (n.data[7] << 8), 0x3f8b);
  const TensorView& bias = ck.get("model.layers.1.mlp.gate.e_score_correction_bias");
  EXPECT_EQ(f32_at(bias, 0), -0x1.30db0ep-3f);
  EXPECT_EQ(f32_at(bias, 1), 0x1.736024p-2f);
  EXPECT_EQ(f32_at(bias, 2), -0x1.307bd0p-1f);
}

TEST_F(TinyA, IndexAndSideFiles) {
  const json idx = json::parse(slurp(a() + "/model.safetensors.index.json"));
  uint64_t total = 0;
  std::set<std::string> shards;
  const Checkpoint ck = Checkpoint::open(a());
  for (const auto& n : ck.names()) total += ck.get(n).nbytes;
  for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) shards.insert(it.value());
  EXPECT_EQ(idx["metadata"]["total_size"].get<uint64_t>(), total);
  EXPECT_GE(shards.size(), 2u);
  EXPECT_EQ(idx["weight_map"]["lm_head.weight"], "model-00001-of-00005.safetensors");
  EXPECT_EQ(idx["weight_map"]["model.layers.3.eh_proj.weight"], "model-00005-of-00005.safetensors");

  const json tc = json::parse(slurp(a() + "/tokenizer_config.json"));
  EXPECT_EQ(tc["add_bos_token"], false);
  EXPECT_EQ(tc["add_eos_token"], false);
  EXPECT_EQ(tc["tokenizer_class"], "LlamaTokenizerFast");
  EXPECT_EQ(tc["model_max_length"], 131072);
  EXPECT_EQ(tc["bos_token"], "<｜begin▁of▁sentence｜>");
  EXPECT_EQ(tc["eos_token"], "<｜end▁of▁sentence｜>");
  EXPECT_FALSE(tc.contains("chat_template"));
  const json gc = json::parse(slurp(a() + "/generation_config.json"));
  EXPECT_EQ(gc, json::parse(R"({"bos_token_id":0,"eos_token_id":1,"do_sample":true,"temperature":1.0,"top_p":0.95})"));
  const json cfg = json::parse(slurp(a() + "/config.json"));
  EXPECT_EQ(cfg["architectures"], json::array({"DeepseekV32ForCausalLM"}));
  EXPECT_EQ(cfg["rope_scaling"]["type"], "yarn");
  EXPECT_EQ(cfg["quantization_config"]["weight_block_size"], json::array({128, 128}));
  const json tok = json::parse(slurp(a() + "/tokenizer.json"));
  EXPECT_TRUE(tok.contains("model"));
  EXPECT_TRUE(tok.contains("added_tokens"));
}

TEST_F(TinyA, PythonRecipeInDocsReproducesEveryShardByte) {
  // Extracts the reference script from docs/make_model.md and runs it on the written config.json
  // (tiny-a seed 1): the docs must describe the generator precisely enough to rebuild every byte.
  if (std::system("python3 -c pass >/dev/null 2>&1") != 0) GTEST_SKIP() << "python3 not installed";
  const std::string doc = slurp(std::string(DEEPSERVE_SOURCE_DIR) + "/docs/make_model.md");
  const auto b = doc.find("```python\n"), e = doc.find("```", b + 10);
  ASSERT_NE(b, std::string::npos);
  ASSERT_NE(e, std::string::npos);
  const std::string script = dir_->path + "/ref.py", out = dir_->path + "/py";
  std::ofstream(script) << doc.substr(b + 10, e - b - 10);
  ASSERT_EQ(std::system(("python3 " + script + " " + a() + "/config.json 1 " + out).c_str()), 0);
  int compared = 0;
  for (const auto& f : fs::directory_iterator(out)) {
    EXPECT_TRUE(slurp(f.path()) == slurp(a() + "/" + f.path().filename().string())) << f.path();
    ++compared;
  }
  EXPECT_EQ(compared, 6);  // 5 shards + index
  fs::remove_all(out);
  fs::remove(script);
}

TEST(MakeModel, RealGeometryWithIndexTopkOverride) {
  TmpDir d;
  make_model("real-geometry", d.path + "/rg", 2048);
  const ModelConfig cfg = ModelConfig::load(d.path + "/rg");
  EXPECT_EQ(cfg.index_topk, 2048);
  EXPECT_EQ(cfg.kv_lora_rank, 512);
  EXPECT_EQ(cfg.index_n_heads, 64);
  EXPECT_EQ(cfg.num_hidden_layers, 2);
  const Checkpoint ck = Checkpoint::open(d.path + "/rg");
  EXPECT_EQ(ck.names().size(), expected_tensors(cfg).size());
  EXPECT_EQ(ck.get("model.layers.1.self_attn.kv_a_proj_with_mqa.weight").shape, (std::vector<int64_t>{576, 512}));
  EXPECT_EQ(ck.get("model.layers.1.self_attn.kv_a_proj_with_mqa.weight_scale_inv").shape,
            (std::vector<int64_t>{5, 4}));  // last row block covers 64 rows, as in the real model
  EXPECT_EQ(ck.get("model.layers.2.self_attn.indexer.wq_b.weight").shape, (std::vector<int64_t>{8192, 256}));
}

TEST(MakeModel, ErrorsAndReplacement) {
  TmpDir d;
  EXPECT_THROW(make_model("huge", d.path + "/x"), std::invalid_argument);
  EXPECT_FALSE(fs::exists(d.path + "/x"));
  fs::create_directories(d.path + "/mine");
  std::ofstream(d.path + "/mine/notes.txt") << "keep me";
  try {
    make_model("tiny-a", d.path + "/mine");
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("notes.txt"), std::string::npos) << e.what();
  }
  EXPECT_EQ(slurp(d.path + "/mine/notes.txt"), "keep me");
  // An existing make-model output is replaced in one rename.
  make_model("tiny-a", d.path + "/ck");
  make_model("tiny-a", d.path + "/ck", 32);
  EXPECT_EQ(ModelConfig::load(d.path + "/ck").index_topk, 32);
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(d.path)) ++entries;
  EXPECT_EQ(entries, 2);  // mine, ck: no temporaries left
}

TEST(MakeModel, CommandLineFlags) {
  TmpDir d;
  const std::string out = d.path + "/c";
  std::vector<std::string> args{"make-model", "--preset", "nope", "--output", out};
  auto run = [](std::vector<std::string> a) {
    std::vector<char*> argv;
    for (auto& s : a) argv.push_back(s.data());
    return make_model_command(int(argv.size()), argv.data());
  };
  EXPECT_EQ(run(args), 2);
  EXPECT_EQ(run({"make-model", "--preset", "tiny-a"}), 2);  // --output is required
  EXPECT_EQ(run({"make-model", "--preset", "tiny-a", "--output", out, "--index-topk", "-3"}), 2);
  EXPECT_EQ(run({"make-model", "--preset", "tiny-a", "--output", out, "--index-topk", "24"}), 0);
  EXPECT_EQ(ModelConfig::load(out).index_topk, 24);
}
