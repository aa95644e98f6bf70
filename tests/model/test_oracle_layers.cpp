// Per-layer hidden states and indexer top-k sets of the engine (ForwardTrace) against both oracle
// fixtures, and the size of the documented attention deviations (docs/numerics.md "Oracle parity").
// Hidden state l = the residual stream after layer l (HF decoder-layer output; the demo's Block
// output x + residual summed in FP32), all positions of each prompt.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>

#include "test_oracle_parity.h"

using namespace ds;

namespace {

const oracle::Fixture& fx_hf() {
  static oracle::Fixture f = oracle::load_fixture("oracle_hf_tiny-a");
  return f;
}
const oracle::Fixture& fx_official() {
  static oracle::Fixture f = oracle::load_fixture("oracle_official_tiny-a");
  return f;
}
DeepseekV32& model(Numerics n) {
  static auto exact = DeepseekV32::load(oracle::tiny_a_dir(), Numerics::Exact);
  static auto official = DeepseekV32::load(oracle::tiny_a_dir(), Numerics::Official);
  return n == Numerics::Exact ? *exact : *official;
}

/// One unbatched prefill of fixture prompt i, traced; `demo` = both demo-attention switches.
ForwardTrace run(Numerics n, const oracle::Fixture& f, size_t i, bool demo = false, std::vector<float>* logits = nullptr) {
  DeepseekV32& m = model(n);
  ForwardTrace tr;
  tr.demo_bf16_scores = tr.demo_expanded_prefill = demo;
  auto cache = m.new_cache();
  BatchPlan p;
  p.segments.push_back(Segment{cache.get(), 0, oracle::tokens_of(f.meta["prompts"][i]["tokens"]), true});
  m.set_trace(&tr);
  auto out = m.forward(p);
  m.set_trace(nullptr);
  if (logits) *logits = out.data;
  return tr;
}

std::string key(size_t i, int l) { return "p" + std::to_string(i) + ".hidden." + std::to_string(l); }

/// Normwise distance of oracle B from oracle A (the demo's own FP8/BF16 rounding noise) for a key.
double demo_noise(const std::string& k) {
  auto b = fx_official().array(k), a = fx_hf().array(k);
  return oracle::normwise(b.data(), a.data(), a.size());
}

/// Indexer top-k sets of every scored row of every layer vs the oracle's; EXPECTs equality where
/// the oracle's relative boundary gap exceeds eps(layer); prints the agreement rate.
void check_index_sets(Numerics n, const oracle::Fixture& f, bool demo, const char* name,
                      const std::function<double(int)>& eps) {
  int rows = 0, agree = 0, strict = 0;
  for (size_t i = 0; i < f.meta["prompts"].size(); ++i) {
    const auto& index = f.meta["prompts"][i]["index"];
    if (index.empty()) continue;
    ForwardTrace tr = run(n, f, i, demo);
    for (auto it = index.begin(); it != index.end(); ++it) {
      const int l = std::stoi(it.key());
      const auto& e = it.value();
      for (size_t k = 0; k < e["pos"].size(); ++k) {
        const int pos = e["pos"][k].get<int>();
        const bool eq = tr.index_sets[size_t(l)][size_t(pos)] == e["sets"][k].get<std::vector<int32_t>>();
        ++rows;
        agree += eq;
        if (e["gaps"][k].get<double>() > eps(l)) {
          ++strict;
          EXPECT_TRUE(eq) << name << ": prompt " << i << " layer " << l << " position " << pos << " gap "
                          << e["gaps"][k].get<double>();
        }
      }
    }
  }
  std::printf("[oracle %s] indexer top-k sets: %d/%d rows agree (%.1f%%); %d rows above the gap epsilon\n", name,
              agree, rows, 100.0 * agree / rows, strict);
  EXPECT_GT(strict, 0);
}

}  // namespace

// Exact mode vs transformers (FP32 both): per-layer hidden states within the fixture's tol_hidden
// (1e-4, derived in oracle_hf.py; measured 5.5e-7).
TEST(OracleLayersExact, HiddenStatesPerLayer) {
  const double tol = fx_hf().meta["tol_hidden"].get<double>();
  double worst = 0;
  for (size_t i = 0; i < fx_hf().meta["prompts"].size(); ++i) {
    ForwardTrace tr = run(Numerics::Exact, fx_hf(), i);
    for (int l = 0; l < int(tr.hidden.size()); ++l) {
      auto want = fx_hf().array(key(i, l));
      const double err = oracle::normwise(tr.hidden[size_t(l)].data(), want.data(), want.size());
      worst = std::max(worst, err);
      EXPECT_LE(err, tol) << key(i, l);
    }
  }
  std::printf("[oracle exact] hidden states: largest normwise error %.3e (tol %.0e)\n", worst, tol);
}

// Exact mode vs transformers: the same top-k sets wherever the boundary gap exceeds the fixture's
// eps_gap (1e-4 relative: FP32 noise of a score is ~1e-6 of the row max).
TEST(OracleLayersExact, IndexerTopkAgreement) {
  const double eps = fx_hf().meta["eps_gap"].get<double>();
  check_index_sets(Numerics::Exact, fx_hf(), false, "exact", [eps](int) { return eps; });
}

// Official mode with the demo's attention emulated (ForwardTrace demo switches: BF16 scores and
// probabilities, expanded MHA prefill): every other rounding point of D23 is then the demo's, so
// the engine must reproduce oracle B bit for bit except where FP32 summation order (cuBLAS vs the
// engine's fixed tree) flips a BF16 rounding. Measured: a single flip (prompt 3, layer 1, position
// 60: 1.6e-4 in that row) cascades through the FP8 quantizers to ~2e-2 in the rows that attend to
// it one layer later (11 of 100 rows at layer 2: 5.9e-3 normwise, logits 6.6e-3). Bar: >= 80% of
// the rows of every prompt and layer bit-identical, and 1e-2 normwise (room for ~1 such flip per
// prompt: sqrt(20%) x 2e-2 = 9e-3).
TEST(OracleLayersOfficial, DemoAttentionEmulationMatchesDemoBitForBit) {
  double worst = 0, worst_logits = 0;
  for (size_t i = 0; i < fx_official().meta["prompts"].size(); ++i) {
    std::vector<float> logits;
    ForwardTrace tr = run(Numerics::Official, fx_official(), i, true, &logits);
    for (int l = 0; l < int(tr.hidden.size()); ++l) {
      auto want = fx_official().array(key(i, l));
      const size_t R = fx_official().meta["prompts"][i]["tokens"].size(), D = want.size() / R;
      size_t same = 0;
      for (size_t r = 0; r < R; ++r)
        same += std::equal(want.begin() + long(r * D), want.begin() + long((r + 1) * D),
                           tr.hidden[size_t(l)].begin() + long(r * D));
      const double err = oracle::normwise(tr.hidden[size_t(l)].data(), want.data(), want.size());
      worst = std::max(worst, err);
      EXPECT_LE(err, 1e-2) << key(i, l);
      EXPECT_GE(double(same), 0.8 * double(R)) << key(i, l) << ": " << same << "/" << R << " rows bit-identical";
    }
    auto want = fx_official().array("p" + std::to_string(i) + ".logits");
    const double err = oracle::normwise(logits.data(), want.data(), want.size());
    worst_logits = std::max(worst_logits, err);
    EXPECT_LE(err, 1e-2) << "prompt " << i;
  }
  std::printf("[oracle official+demo attention] largest normwise error: hidden %.3e, logits %.3e\n", worst,
              worst_logits);
}

// Same emulation, indexer: the demo's sets wherever the gap exceeds the fixture's eps_gap (2e-2).
TEST(OracleLayersOfficial, DemoAttentionEmulationIndexerTopk) {
  const double eps = fx_official().meta["eps_gap"].get<double>();
  check_index_sets(Numerics::Official, fx_official(), true, "official+demo attention", [eps](int) { return eps; });
}

// The documented deviations at their source: the layer-0 attention output (inputs bit-identical
// to the demo's there). Expected size: deviation 1 = BF16 rounding of scores (|s| of a few units,
// 2^-9 relative) and of the probabilities (2^-9) ~ 2e-3; deviation 2 = BF16 rounding of W_UV
// (fp8 x non-power-of-two scale), q~ and o_lat instead of BF16 k/v ~ sqrt(3) x 2^-9 = 3.4e-3;
// together ~4e-3. Bar 8e-3 (2x); each deviation alone must be visible (> 5e-4).
TEST(OracleLayersOfficial, AttentionDeviationsAtLayer0) {
  for (size_t i = 0; i < fx_official().meta["prompts"].size(); ++i) {
    ForwardTrace demo = run(Numerics::Official, fx_official(), i, true);
    const std::vector<float>& ref = demo.attn[0];
    double err[3];
    for (int v = 0; v < 3; ++v) {  // 0: engine; 1: deviation 1 left (expanded prefill on); 2: deviation 2 left
      DeepseekV32& m = model(Numerics::Official);
      ForwardTrace tr;
      tr.demo_expanded_prefill = v == 1;
      tr.demo_bf16_scores = v == 2;
      auto cache = m.new_cache();
      BatchPlan p;
      p.segments.push_back(Segment{cache.get(), 0, oracle::tokens_of(fx_official().meta["prompts"][i]["tokens"]), false});
      m.set_trace(&tr);
      m.forward(p);
      m.set_trace(nullptr);
      err[v] = oracle::normwise(tr.attn[0].data(), ref.data(), ref.size());
    }
    std::printf("[oracle official] prompt %zu layer-0 attention output vs demo: engine %.2e, FP32 scores only %.2e, "
                "absorbed form only %.2e\n", i, err[0], err[1], err[2]);
    EXPECT_LE(err[0], 8e-3);
    EXPECT_GT(err[1], 5e-4);
    EXPECT_GT(err[2], 5e-4);
  }
}

// Official mode as shipped (D23: FP32 scores; absorbed form in prefill) vs the demo, per layer.
// The ~4e-3 source difference above crosses an FP8 quantizer (wo input) right away: an input
// change d flips an E4M3 rounding (relative step q ~ 2^-3..2^-4) with probability ~d/q, each flip
// worth q, so the quantized vector moves by sqrt(d q) ~ sqrt(4e-3 x 0.09) = 1.9e-2; every further
// quantizer (ffn_norm input, SwiGLU product, next layer) repeats the map d -> sqrt(d q), whose fixed
// point is q: the engine's and the demo's FP8 rounding decisions decorrelate within ~2 layers
// (measured: layer 0 2.6e-2..3.2e-2, then 5e-2 like the demo's own distance from exact FP32,
// larger where indexer sets then differ). Two computations with decorrelated rounding noise of
// size s are sqrt(2) s apart; s = ||oracle B - oracle A|| (the demo vs FP32 transformers, per
// prompt and layer, from the fixtures). Bar: sqrt(2) x that; at layer 0 also the two-quantizer
// value of the map above, (d q^3)^(1/4) = (4e-3 x 0.09^3)^(1/4) = 4.1e-2, rounded up to 5e-2.
TEST(OracleLayersOfficial, HiddenStatesPerLayerDefaultMode) {
  double worst = 0;
  for (size_t i = 0; i < fx_official().meta["prompts"].size(); ++i) {
    ForwardTrace tr = run(Numerics::Official, fx_official(), i);
    for (int l = 0; l < int(tr.hidden.size()); ++l) {
      auto want = fx_official().array(key(i, l));
      const double err = oracle::normwise(tr.hidden[size_t(l)].data(), want.data(), want.size());
      double tol = std::sqrt(2.0) * demo_noise(key(i, l));
      if (l == 0) tol = std::min(tol, 5e-2);
      std::printf("[oracle official] prompt %zu layer %d hidden normwise %.3e (tol %.3e)\n", i, l, err, tol);
      worst = std::max(worst, err);
      EXPECT_LE(err, tol) << key(i, l);
    }
  }
  std::printf("[oracle official] hidden states: largest normwise error %.3e\n", worst);
}

// Indexer as shipped: at layer 0 its inputs (attn_norm output, q_norm output) are bit-identical to
// the demo's, so the fixture's eps_gap (2e-2) holds there. Later layers see the decorrelated
// hidden states above (~5e-2 relative): q, k and the head weights each move by ~5e-2, a score by
// ~sqrt(3) x 5e-2 ~ 9e-2 of itself, the difference of two boundary scores by sqrt(2) x that
// ~1.2e-1 of the row max, so a gap is only safe beyond ~2.5 sigma = 0.3.
TEST(OracleLayersOfficial, IndexerTopkDefaultMode) {
  const double eps = fx_official().meta["eps_gap"].get<double>();
  check_index_sets(Numerics::Official, fx_official(), false, "official", [eps](int l) { return l == 0 ? eps : 0.3; });
}
