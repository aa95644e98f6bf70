// Oracle B (DeepSeek's Nov-2025 demo model.py with third-party FP8/Hadamard glue, D28) vs the
// engine in its default --numerics official on tiny-a. Fixture: tests/fixtures/oracle/
// oracle_official_tiny-a.json (scripts/reference/oracle_official.py). Per-layer checks and the
// derivation of the tolerances: test_oracle_layers.cpp and docs/numerics.md "Oracle parity".
#include <gtest/gtest.h>

#include <cmath>

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

// The engine as shipped keeps D23's FP32 attention scores and the absorbed form in prefill
// (documented deviations 1-2, ~4e-3 on the layer-0 attention output). Every later FP8 quantizer
// amplifies such a difference (d -> sqrt(d q), q the E4M3 step) until the engine's and the demo's
// FP8 rounding decisions are decorrelated, so the logits end up as far apart as two computations
// with independent rounding noise of the demo's own size: sqrt(2) x ||oracle B - oracle A|| per
// prompt (the fixture's 2e-2, derived assuming no amplification, was wrong for that reason).
// Measured 5.6e-2 / 5.4e-2 / 9.0e-2 / 1.9e-1 against 8.9e-2 / 1.06e-1 / 2.1e-1 / 4.8e-1.
const std::vector<double>& decorrelated_tols() {
  static const std::vector<double> t = [] {
    static oracle::Fixture hf = oracle::load_fixture("oracle_hf_tiny-a");
    std::vector<double> v;
    for (size_t i = 0; i < fx().meta["prompts"].size(); ++i) {
      auto b = fx().array("p" + std::to_string(i) + ".logits"), a = hf.array("p" + std::to_string(i) + ".logits");
      v.push_back(std::sqrt(2.0) * oracle::normwise(b.data(), a.data(), a.size()));
    }
    return v;
  }();
  return t;
}

// With the demo's attention emulated (ForwardTrace switches), the engine equals the demo up to
// FP32-summation-order flips (test_oracle_layers.cpp: 6.6e-3 at most): 1e-2 for every prompt.
const std::vector<double> kEmulatedTols(4, 1e-2);

/// Runs `f` with the demo-attention emulation attached to the official model.
template <class F>
void with_demo_attention(F f) {
  ForwardTrace tr;
  tr.demo_bf16_scores = tr.demo_expanded_prefill = true;
  official_model().set_trace(&tr);
  f();
  official_model().set_trace(nullptr);
}

}  // namespace

TEST(OracleOfficial, MetadataRecordsDemoSha256AndPatches) {
  EXPECT_EQ(fx().meta["model_py_sha256"], "6e2a664e8d024d625c9d1a2dd85b66ecd477af9994c8c7d7cd9d0521e028f0ef");
  EXPECT_EQ(fx().meta["mode"], "official");
  EXPECT_EQ(fx().meta["patches"].size(), 2u);
}

TEST(OracleOfficial, PromptLogitsOfficialMode) { oracle::check_prompt_logits(official_model(), fx(), &decorrelated_tols()); }

TEST(OracleOfficial, MixedLengthBatch) { oracle::check_mixed_batch(official_model(), fx(), &decorrelated_tols()); }

// D24 literally: the oracle's token must be the engine's argmax where the oracle's top-2 margin
// exceeds 10 x this test's derived tolerance (the decorrelated one above, per prompt) x rms(logits).
// At that tolerance no step qualifies (largest oracle margin 1.33 rms against 10 x 0.21 rms), so
// D24 requires nothing of the shipped mode's decode here; the D24 greedy check with strict steps
// is GreedyDemoAttentionEmulated (the same rule at the emulation's 1e-2).
TEST(OracleOfficial, GreedyContinuationsD24) {
  auto [checked, agree] = oracle::check_greedy(official_model(), fx(), &decorrelated_tols());
  std::printf("[oracle official] greedy (D24, 10 x tol): %d strict steps, %d/32 argmax agreements\n", checked, agree);
  RecordProperty("strict_steps", checked);
}

// ADDITIONAL check, stricter than D24 (it demands equality at more steps): each logit carries
// ~tol x rms of independent noise on either side, the top-2 difference sqrt(2) x that, so a step
// whose margin exceeds 3 sqrt(2) x tol x rms (3 sigma; 4.2 instead of D24's 10) should still keep
// its argmax. Measured: 3 strict steps, 22/32 agreements.
TEST(OracleOfficial, GreedyContinuationsThreeSigmaStricterThanD24) {
  auto [checked, agree] = oracle::check_greedy(official_model(), fx(), &decorrelated_tols(), 3.0 * std::sqrt(2.0));
  std::printf("[oracle official] greedy (3 sigma, stricter than D24): %d strict steps, %d/32 argmax agreements\n",
              checked, agree);
  EXPECT_GT(checked, 0);
}

TEST(OracleOfficial, PromptLogitsDemoAttentionEmulated) {
  with_demo_attention([] { oracle::check_prompt_logits(official_model(), fx(), &kEmulatedTols); });
}

TEST(OracleOfficial, MixedLengthBatchDemoAttentionEmulated) {
  with_demo_attention([] { oracle::check_mixed_batch(official_model(), fx(), &kEmulatedTols); });
}

// Decode steps run the demo's absorbed BF16-einsum path (mla_demo.cpp) against the demo's own
// one-token decode: strict D24 greedy with the 1e-2 bar.
TEST(OracleOfficial, GreedyDemoAttentionEmulated) {
  with_demo_attention([] {
    auto [checked, agree] = oracle::check_greedy(official_model(), fx(), &kEmulatedTols);
    std::printf("[oracle official+demo attention] greedy: %d strict steps, %d/32 argmax agreements\n", checked, agree);
    EXPECT_GT(checked, 16);
  });
}
