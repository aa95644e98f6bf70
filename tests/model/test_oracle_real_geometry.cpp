// Oracle A (transformers DeepseekV32ForCausalLM, FP32, eager) vs the engine in --numerics exact on
// the real-geometry preset (DeepSeek-V3.2 per-head sizes, index_topk 128). Prompts of 40 and 300
// tokens: in the second, every query at position >= 128 attends only to the indexer's top-128 keys,
// so the sparse selection is exercised. Fixture, tolerances and their derivation:
// tests/fixtures/oracle/real_geometry/ (scripts/reference/oracle_hf_real_geometry.py).
#include "test_oracle_real_geometry.h"

using namespace ds;

namespace {

const rg::Variant kV{128, "real_geometry/oracle_hf_real-geometry"};
const std::string& rg_dir() { return rg::ckpt_dir(kV); }
const oracle::Fixture& fx() { return rg::fx(kV); }
DeepseekV32& exact_model() { return rg::exact_model(kV); }
const std::string fixture_dir = std::string(DEEPSERVE_SOURCE_DIR) + "/tests/fixtures/oracle/real_geometry/";

}  // namespace

// Step 0 of the oracle: the Python generator (scripts/reference/dsv32_presets.py) that built the
// oracle's checkpoint writes the same bytes as make-model for every tensor (D25).
TEST(OracleRealGeometry, PresetTensorsMatchPythonGeneratorSha256) {
  std::ifstream js(fixture_dir + "presets_sha256_real-geometry.json");
  ASSERT_TRUE(js);
  const auto want = nlohmann::json::parse(js)["sha256"];
  Checkpoint ck = Checkpoint::open(rg_dir());
  const auto names = ck.names();
  ASSERT_EQ(names.size(), want.size());
  for (const auto& n : names) {
    const TensorView& t = ck.get(n);
    ASSERT_TRUE(want.contains(n)) << n;
    EXPECT_EQ(oracle::sha256_hex(t.data, t.nbytes), want[n].get<std::string>()) << n;
  }
}

TEST(OracleRealGeometry, MetadataRecordsOracleAndSparseSetup) {
  EXPECT_EQ(fx().meta["transformers"], "5.17.0");
  EXPECT_EQ(fx().meta["preset"], "real-geometry");
  EXPECT_EQ(fx().meta["index_topk"].get<int>(), 128);
  EXPECT_EQ(exact_model().config().index_topk, 128);
  EXPECT_EQ(fx().meta["tol_logits"].get<double>(), 1e-4);
  ASSERT_EQ(fx().meta["prompts"].size(), 2u);
  EXPECT_EQ(fx().meta["prompts"][0]["tokens"].size(), 40u);
  EXPECT_EQ(fx().meta["prompts"][1]["tokens"].size(), 300u);
  // 300 - 128 = 172 positions per layer choose a sparse set.
  EXPECT_EQ(fx().meta["prompts"][1]["index"]["0"]["pos"].size(), 172u);
}

// Logits of the last 8 positions of each prompt, normwise within tol_logits (derivation in the script).
TEST(OracleRealGeometry, LastPositionLogitsExactMode) { rg::check_last_logits(kV); }

// Residual stream after each layer at the recorded positions (before, at and after the
// dense -> sparse switch at position 128 for the 300-token prompt).
TEST(OracleRealGeometry, HiddenStatesPerLayer) { rg::check_hidden(kV); }

// Indexer top-128 sets of every sparse row of the 300-token prompt: equal to the oracle's wherever
// the oracle's relative boundary gap exceeds eps_gap (below it FP32 noise may legitimately flip
// the 128th key); rows at positions < 128 attend densely (empty set in the trace).
TEST(OracleRealGeometry, IndexerTopkSets) {
  // 300 - 128 = 172 sparse rows per layer, 2 layers with an indexer: all recorded.
  EXPECT_EQ(rg::check_index_sets(kV, 1).first, 344);
}

TEST(OracleRealGeometry, GreedyContinuationsD24) {
  auto [checked, agree] = oracle::check_greedy(exact_model(), fx());
  std::printf("[oracle exact real-geometry] greedy: %d strict steps, %d/16 argmax agreements\n", checked, agree);
  EXPECT_GT(checked, 0);
}
