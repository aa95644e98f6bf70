// Oracle B (DeepSeek's Nov-2025 demo model.py, D28) vs the engine's default --numerics official on
// the real-geometry preset (index_topk 128; 40- and 300-token prompts, so positions >= 128 of the
// second attend to the demo's sparse top-128 selection). Fixture: tests/fixtures/oracle/
// real_geometry/oracle_official_real-geometry (scripts/reference/oracle_official.py); last-8 logits
// and hidden states at the recorded positions (the same positions as the Oracle A real-geometry
// fixture, whose distance from oracle B measures the demo's own rounding noise).
// Tolerances: fixed by the tiny-a derivation (test_oracle_layers.cpp, test_oracle_official.cpp)
// before this fixture was made: 1e-2 with the demo's attention emulated; sqrt(2) x ||B - A|| for the
// shipped mode (decorrelated FP8 rounding noise of the demo's own size).
#include "test_oracle_real_geometry.h"

#include <cmath>

using namespace ds;

namespace {

const rg::Variant kA{128, "real_geometry/oracle_hf_real-geometry"};
const rg::Variant kB{128, "real_geometry/oracle_official_real-geometry"};

DeepseekV32& official_model() {
  static auto m = DeepseekV32::load(rg::ckpt_dir(kB), Numerics::Official);
  return *m;
}
const oracle::Fixture& fx() { return rg::fx(kB); }

/// One traced unbatched prefill of prompt i in official mode (demo attention emulated or not).
struct Run {
  ForwardTrace tr;
  std::vector<float> logits;
};
const Run& run(size_t i, bool demo) {
  static std::map<std::pair<size_t, bool>, Run> runs;
  auto it = runs.find({i, demo});
  if (it != runs.end()) return it->second;
  Run& r = runs[{i, demo}];
  r.tr.demo_bf16_scores = r.tr.demo_expanded_prefill = demo;
  auto cache = official_model().new_cache();
  BatchPlan p;
  p.segments.push_back(Segment{cache.get(), 0, oracle::tokens_of(fx().meta["prompts"][i]["tokens"]), true});
  official_model().set_trace(&r.tr);
  r.logits = official_model().forward(p).data;
  official_model().set_trace(nullptr);
  return r;
}

/// normwise(B, A) of array `key` (the demo's own distance from FP32 transformers).
double demo_noise(const std::string& key) {
  auto b = fx().array(key), a = rg::fx(kA).array(key);
  return oracle::normwise(b.data(), a.data(), a.size());
}

/// Last-8 logits and hidden states at the recorded positions vs oracle B; `tol(key)` gives the bar.
template <class Tol>
void check_vs_demo(bool demo, Tol tol, const char* name) {
  const size_t V = size_t(official_model().config().vocab_size), H = size_t(official_model().config().hidden_size);
  const size_t last = fx().meta["last"].get<size_t>();
  for (size_t i = 0; i < fx().meta["prompts"].size(); ++i) {
    const Run& r = run(i, demo);
    const std::string lk = "p" + std::to_string(i) + ".logits_last";
    auto want = fx().array(lk);
    ASSERT_EQ(want.size(), last * V);
    const double err = oracle::normwise(r.logits.data() + (r.logits.size() - want.size()), want.data(), want.size());
    std::printf("[oracle %s real-geometry] prompt %zu last-%zu logits normwise %.3e (tol %.3e)\n", name, i, last, err,
                tol(lk, -1));
    EXPECT_LE(err, tol(lk, -1)) << lk;
    const auto pos = fx().meta["prompts"][i]["hidden_pos"].get<std::vector<size_t>>();
    for (size_t l = 0; l < r.tr.hidden.size(); ++l) {
      const std::string hk = "p" + std::to_string(i) + ".hidden." + std::to_string(l);
      auto wh = fx().array(hk);
      std::vector<float> got;
      for (size_t p : pos)
        got.insert(got.end(), r.tr.hidden[l].begin() + long(p * H), r.tr.hidden[l].begin() + long((p + 1) * H));
      const double e = oracle::normwise(got.data(), wh.data(), wh.size());

      std::printf("[oracle %s real-geometry] prompt %zu layer %zu hidden normwise %.3e (tol %.3e)\n", name, i, l, e,
                  tol(hk, int(l)));
      EXPECT_LE(e, tol(hk, int(l))) << hk;
    }
  }
}

/// Index sets of prompt 1 vs the demo's where the demo's boundary gap exceeds eps(layer).
void check_sets(bool demo, double eps0, double eps_later, const char* name) {
  const Run& r = run(1, demo);
  int rows = 0, agree = 0, strict = 0;
  const auto& idx = fx().meta["prompts"][1]["index"];
  for (auto it = idx.begin(); it != idx.end(); ++it) {
    const int l = std::stoi(it.key());
    const auto& e = it.value();
    for (size_t k = 0; k < e["pos"].size(); ++k) {
      const int pos = e["pos"][k].get<int>();
      const bool eq = r.tr.index_sets[size_t(l)][size_t(pos)] == e["sets"][k].get<std::vector<int32_t>>();
      ++rows;
      agree += eq;
      if (e["gaps"][k].get<double>() > (l == 0 ? eps0 : eps_later)) {
        ++strict;
        EXPECT_TRUE(eq) << name << ": layer " << l << " position " << pos;
      }
    }
  }
  std::printf("[oracle %s real-geometry] indexer top-128 sets: %d/%d rows agree; %d above the gap\n", name, agree,
              rows, strict);
  EXPECT_EQ(rows, 344);
  EXPECT_GT(strict, 0);
}

}  // namespace

TEST(OracleOfficialRealGeometry, MetadataRecordsDemoAndPrompts) {
  EXPECT_EQ(fx().meta["model_py_sha256"], "6e2a664e8d024d625c9d1a2dd85b66ecd477af9994c8c7d7cd9d0521e028f0ef");
  EXPECT_EQ(fx().meta["preset"], "real-geometry");
  EXPECT_EQ(fx().meta["index_topk"].get<int>(), 128);
  ASSERT_EQ(fx().meta["prompts"].size(), 2u);
  EXPECT_EQ(fx().meta["prompts"][1]["tokens"].size(), 300u);
  // Both oracles saw the same prompts and recorded the same positions.
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(fx().meta["prompts"][i]["tokens"], rg::fx(kA).meta["prompts"][i]["tokens"]);
    EXPECT_EQ(fx().meta["prompts"][i]["hidden_pos"], rg::fx(kA).meta["prompts"][i]["hidden_pos"]);
  }
}

// Demo attention emulated: only FP32 summation-order flips remain (tiny-a: <= 6.6e-3): 1e-2, which
// holds for the 40-token prompt (bit-identical hidden states, logits 1e-7). The 300-token prompt
// cannot meet it (1.2e-2 at layer 0 already at position 127; 6.1e-2 on the logits): localised op
// by op in test_oracle_official_dump.cpp: the layer-0 attn_norm of ONE position (56) differs by an
// FP32 ulp of its normalization factor (PyTorch's reduction / CUDA rsqrtf vs the engine's order),
// its FP8-quantized key then differs, and every later row attends to it; from there the FP8
// quantizers decorrelate both sides' roundings (docs/numerics.md "Why the 300-token prompt is not
// bit-identical"). That prompt is therefore held to the decorrelated-noise bar, sqrt(2) x ||B - A||.
TEST(OracleOfficialRealGeometry, DemoAttentionEmulated) {
  check_vs_demo(true, [](const std::string& k, int) {
    return k.rfind("p0.", 0) == 0 ? 1e-2 : std::sqrt(2.0) * demo_noise(k);
  }, "official+demo attention");
}

// Shipped mode: sqrt(2) x the demo's own noise; layer 0 also capped by the two-quantizer value 5e-2
// (test_oracle_layers.cpp HiddenStatesPerLayerDefaultMode).
TEST(OracleOfficialRealGeometry, DefaultMode) {
  check_vs_demo(false, [](const std::string& k, int l) {
    double t = std::sqrt(2.0) * demo_noise(k);
    return l == 0 ? std::min(t, 5e-2) : t;
  }, "official");
}

// Index sets: the fixture's eps_gap at layer 0 (inputs bit-identical there), 0.3 later (hidden
// states as far apart as decorrelated noise, test_oracle_layers.cpp), with or without emulation
// (the emulation's layer-1 inputs differ too on this prompt, see DemoAttentionEmulated).
TEST(OracleOfficialRealGeometry, IndexerTopkSets) {
  const double eps = fx().meta["eps_gap"].get<double>();
  check_sets(true, eps, 0.3, "official+demo attention");
  check_sets(false, eps, 0.3, "official");
}

/// The tolerance of prompt i's logits in this file: emulated 1e-2 (prompt 0) else sqrt(2) ||B - A||.
std::vector<double> greedy_tols(bool demo) {
  std::vector<double> t;
  for (size_t i = 0; i < 2; ++i) {
    const std::string k = "p" + std::to_string(i) + ".logits_last";
    t.push_back(demo && i == 0 ? 1e-2 : std::sqrt(2.0) * demo_noise(k));
  }
  return t;
}

/// check_greedy with the given rule factor, emulation on or off; prints and returns {strict, agree}.
std::pair<int, int> greedy(bool demo, double factor, const char* name) {
  ForwardTrace tr;
  tr.demo_bf16_scores = tr.demo_expanded_prefill = demo;
  if (demo) official_model().set_trace(&tr);
  const std::vector<double> tols = greedy_tols(demo);
  auto r = oracle::check_greedy(official_model(), fx(), &tols, factor);
  official_model().set_trace(nullptr);
  std::printf("[oracle %s real-geometry] greedy: %d strict steps, %d/16 agree\n", name, r.first, r.second);
  return r;
}

// D24 greedy with the demo's attention emulated (its decode path is the demo's absorbed BF16
// einsum), at 10 x this file's tolerance per prompt (1e-2 for the 40-token prompt, the
// decorrelated bar for the 300-token one, whose emulation is not bit-identical). Measured: 5 strict
// steps, 15/16 agree (11 strict when both prompts were held to 1e-2, which the dump showed to be
// unjustified for the 300-token prompt).
TEST(OracleOfficialRealGeometry, GreedyDemoAttentionEmulated) {
  auto [checked, agree] = greedy(true, 10.0, "official+demo attention, D24");
  EXPECT_GT(checked, 0);
  (void)agree;
}

// D24 literally for the shipped mode: 10 x sqrt(2) ||B - A|| x rms. No step qualifies at that
// tolerance (measured 0 strict steps, 13/16 agree): D24 requires nothing here;
// GreedyDemoAttentionEmulated is the D24 check with strict steps. (The 3-sigma rule that
// test_oracle_official.cpp keeps as an additional check has no strict step here either.)
TEST(OracleOfficialRealGeometry, GreedyDefaultModeD24) {
  auto [checked, agree] = greedy(false, 10.0, "official, D24");
  RecordProperty("strict_steps", checked);
  (void)agree;
}
