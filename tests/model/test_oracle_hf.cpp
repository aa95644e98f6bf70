// Oracle A (transformers DeepseekV32ForCausalLM, FP32, eager) vs the engine in --numerics exact on
// tiny-a; and the D25 preset sha256 list vs make-model's tensors. Fixtures and tolerances:
// tests/fixtures/oracle/oracle_hf_tiny-a.json (scripts/reference/oracle_hf.py, README there).
#include <gtest/gtest.h>

#include "common/safetensors.h"
#include "test_oracle_parity.h"

using namespace ds;

namespace {

DeepseekV32& exact_model() {
  static auto m = DeepseekV32::load(oracle::tiny_a_dir(), Numerics::Exact);
  return *m;
}

const oracle::Fixture& fx() {
  static oracle::Fixture f = oracle::load_fixture("oracle_hf_tiny-a");
  return f;
}

}  // namespace

// Every tensor make-model writes hashes to the sha256 that scripts/reference/dsv32_presets.py
// computed (on the GPU machine) for the same preset: the two generators are bit-identical (D25).
TEST(OraclePresets, TinyATensorsMatchPythonGeneratorSha256) {
  std::ifstream js(std::string(DEEPSERVE_SOURCE_DIR) + "/tests/fixtures/oracle/presets_sha256_tiny-a.json");
  ASSERT_TRUE(js);
  const auto want = nlohmann::json::parse(js)["sha256"];
  Checkpoint ck = Checkpoint::open(oracle::tiny_a_dir());
  const auto names = ck.names();
  ASSERT_EQ(names.size(), want.size());
  for (const auto& n : names) {
    const TensorView& t = ck.get(n);
    ASSERT_TRUE(want.contains(n)) << n;
    EXPECT_EQ(oracle::sha256_hex(t.data, t.nbytes), want[n].get<std::string>()) << n;
  }
}

TEST(OracleSha256, KnownVectors) {
  const std::string abc = "abc";
  EXPECT_EQ(oracle::sha256_hex(reinterpret_cast<const uint8_t*>(abc.data()), 3),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(oracle::sha256_hex(nullptr, 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(OracleHf, MetadataRecordsOracleAndTolerances) {
  EXPECT_EQ(fx().meta["transformers"], "5.17.0");
  EXPECT_EQ(fx().meta["attn_implementation"], "eager");
  EXPECT_EQ(fx().meta["experts_implementation"], "eager");
  EXPECT_EQ(fx().meta["tol_logits"].get<double>(), 1e-4);
  EXPECT_EQ(fx().meta["prompts"].size(), 4u);
}

TEST(OracleHf, PromptLogitsExactMode) { oracle::check_prompt_logits(exact_model(), fx()); }

TEST(OracleHf, MixedLengthBatch) { oracle::check_mixed_batch(exact_model(), fx()); }

// start_pos > 0: prefill `split` tokens, then the rest as a second chunk against the cache; the
// oracle is HF's own cache path (D20: the demo cannot do this).
TEST(OracleHf, ChunkedPrefillThroughCache) {
  const auto& ch = fx().meta["chunked"];
  auto toks = oracle::tokens_of(fx().meta["prompts"][ch["prompt"].get<size_t>()]["tokens"]);
  const int split = ch["split"].get<int>();
  DeepseekV32& m = exact_model();
  auto cache = m.new_cache();
  BatchPlan a, b;
  a.segments.push_back(Segment{cache.get(), 0, {toks.begin(), toks.begin() + split}, false});
  m.forward(a);
  b.segments.push_back(Segment{cache.get(), split, {toks.begin() + split, toks.end()}, true});
  auto got = m.forward(b).data;
  auto want = fx().array("chunk.logits");
  ASSERT_EQ(got.size(), want.size());
  const double err = oracle::normwise(got.data(), want.data(), want.size());
  std::printf("[oracle exact] chunked prefill logits normwise %.3e\n", err);
  EXPECT_LE(err, fx().meta["tol_logits"].get<double>());
}

TEST(OracleHf, GreedyContinuationsD24) {
  auto [checked, agree] = oracle::check_greedy(exact_model(), fx());
  std::printf("[oracle exact] greedy: %d strict steps, %d/32 argmax agreements\n", checked, agree);
  EXPECT_GT(checked, 0);
}
