// Oracle A (transformers DeepseekV32ForCausalLM, FP32, eager) vs the engine in --numerics exact on
// the real-geometry preset (DeepSeek-V3.2 per-head sizes, index_topk 128). Prompts of 40 and 300
// tokens: in the second, every query at position >= 128 attends only to the indexer's top-128 keys,
// so the sparse selection is exercised. Fixture, tolerances and their derivation:
// tests/fixtures/oracle/real_geometry/ (scripts/reference/oracle_hf_real_geometry.py).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <map>

#include "common/safetensors.h"
#include "test_oracle_parity.h"

using namespace ds;

namespace {

/// real-geometry (index_topk 128, the preset's own) from make_model, made once, removed at exit.
const std::string& rg_dir() {
  struct Dir {
    std::string path;
    Dir() {
      path = (std::filesystem::temp_directory_path() / ("ds_oracle_rg_" + std::to_string(::getpid()))).string();
      ds::make_model("real-geometry", path);
    }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static Dir d;
  return d.path;
}

const oracle::Fixture& fx() {
  static oracle::Fixture f = oracle::load_fixture("real_geometry/oracle_hf_real-geometry");
  return f;
}

DeepseekV32& exact_model() {
  static auto m = DeepseekV32::load(rg_dir(), Numerics::Exact);
  return *m;
}

/// One traced, unbatched prefill of fixture prompt i (all-position logits), cached per prompt.
struct TracedRun {
  ForwardTrace trace;
  std::vector<float> logits;  // [T, vocab]
};
const TracedRun& run(size_t i) {
  static std::map<size_t, TracedRun> runs;
  auto it = runs.find(i);
  if (it != runs.end()) return it->second;
  TracedRun& r = runs[i];
  DeepseekV32& m = exact_model();
  auto cache = m.new_cache();
  BatchPlan p;
  p.segments.push_back(Segment{cache.get(), 0, oracle::tokens_of(fx().meta["prompts"][i]["tokens"]), true});
  m.set_trace(&r.trace);
  r.logits = m.forward(p).data;
  m.set_trace(nullptr);
  return r;
}

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
TEST(OracleRealGeometry, LastPositionLogitsExactMode) {
  const size_t last = fx().meta["last"].get<size_t>();
  for (size_t i = 0; i < fx().meta["prompts"].size(); ++i) {
    const TracedRun& r = run(i);
    auto want = fx().array("p" + std::to_string(i) + ".logits_last");
    ASSERT_EQ(want.size(), last * 1024u);
    ASSERT_GE(r.logits.size(), want.size());
    const float* got = r.logits.data() + (r.logits.size() - want.size());
    const double err = oracle::normwise(got, want.data(), want.size());
    std::printf("[oracle exact real-geometry] prompt %zu: last-%zu logits normwise %.3e\n", i, last, err);
    EXPECT_LE(err, fx().meta["tol_logits"].get<double>()) << "prompt " << i;
  }
}

// Residual stream after each layer at the recorded positions (before, at and after the
// dense -> sparse switch at position 128 for the 300-token prompt).
TEST(OracleRealGeometry, HiddenStatesPerLayer) {
  const size_t H = size_t(exact_model().config().hidden_size);
  for (size_t i = 0; i < fx().meta["prompts"].size(); ++i) {
    const TracedRun& r = run(i);
    const auto pos = fx().meta["prompts"][i]["hidden_pos"].get<std::vector<size_t>>();
    for (size_t l = 0; l < r.trace.hidden.size(); ++l) {
      auto want = fx().array("p" + std::to_string(i) + ".hidden." + std::to_string(l));
      ASSERT_EQ(want.size(), pos.size() * H);
      std::vector<float> got;
      for (size_t p : pos) got.insert(got.end(), r.trace.hidden[l].begin() + long(p * H),
                                       r.trace.hidden[l].begin() + long((p + 1) * H));
      const double err = oracle::normwise(got.data(), want.data(), want.size());
      std::printf("[oracle exact real-geometry] prompt %zu layer %zu: hidden normwise %.3e\n", i, l, err);
      EXPECT_LE(err, fx().meta["tol_hidden"].get<double>()) << "prompt " << i << " layer " << l;
    }
  }
}

// Indexer top-128 sets of every sparse row of the 300-token prompt: equal to the oracle's wherever
// the oracle's relative boundary gap exceeds eps_gap (below it FP32 noise may legitimately flip
// the 128th key); rows at positions < 128 attend densely (empty set in the trace).
TEST(OracleRealGeometry, IndexerTopkSets) {
  const TracedRun& r = run(1);
  const double eps = fx().meta["eps_gap"].get<double>();
  int rows = 0, agree = 0, strict = 0;
  for (auto it = fx().meta["prompts"][1]["index"].begin(); it != fx().meta["prompts"][1]["index"].end(); ++it) {
    const int l = std::stoi(it.key());
    const auto& e = it.value();
    const auto sets = fx().array("p1.index." + it.key());
    const auto& got_l = r.trace.index_sets.at(size_t(l));
    EXPECT_TRUE(got_l.at(127).empty()) << "layer " << l << ": position 127 has exactly 128 keys (dense)";
    for (size_t k = 0; k < e["pos"].size(); ++k) {
      const int pos = e["pos"][k].get<int>();
      std::vector<int32_t> want(128);
      for (size_t j = 0; j < 128; ++j) want[j] = int32_t(sets[k * 128 + j]);
      const bool eq = got_l.at(size_t(pos)) == want;
      ++rows;
      agree += eq;
      if (e["gaps"][k].get<double>() > eps) {
        ++strict;
        EXPECT_TRUE(eq) << "layer " << l << " position " << pos << " gap " << e["gaps"][k].get<double>();
      }
    }
  }
  std::printf("[oracle exact real-geometry] indexer top-128 sets: %d/%d rows agree; %d above the gap\n", agree,
              rows, strict);
  EXPECT_EQ(rows, 344);
}

TEST(OracleRealGeometry, GreedyContinuationsD24) {
  auto [checked, agree] = oracle::check_greedy(exact_model(), fx());
  std::printf("[oracle exact real-geometry] greedy: %d strict steps, %d/16 argmax agreements\n", checked, agree);
  EXPECT_GT(checked, 0);
}
