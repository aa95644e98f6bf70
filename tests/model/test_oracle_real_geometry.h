// Shared checks of Oracle A (transformers DeepseekV32ForCausalLM, FP32, eager) against the engine in
// --numerics exact on the real-geometry preset, for one fixture variant: index_topk 128 (CI fixture,
// test_oracle_real_geometry.cpp) or index_topk 2048 (the GPU-machine oracle run,
// test_oracle_real_geometry_topk2048.cpp). Fixtures, tolerances and their derivation:
// tests/fixtures/oracle/real_geometry/ (scripts/reference/oracle_hf_real_geometry.py).
#pragma once
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>

#include "common/safetensors.h"
#include "test_oracle_parity.h"

namespace rg {

/// One fixture variant: the checkpoint's index_topk and the fixture's file stem.
struct Variant {
  int index_topk;
  std::string stem;  // under tests/fixtures/oracle/
};

inline std::string fixture_path(const Variant& v) {
  return std::string(DEEPSERVE_SOURCE_DIR) + "/tests/fixtures/oracle/" + v.stem;
}

/// The real-geometry checkpoint with v.index_topk from make_model, made once per process, removed at exit.
inline const std::string& ckpt_dir(const Variant& v) {
  struct Dir {
    std::string path;
    explicit Dir(int topk) {
      path = (std::filesystem::temp_directory_path() /
              ("ds_oracle_rg" + std::to_string(topk) + "_" + std::to_string(::getpid()))).string();
      ds::make_model("real-geometry", path, topk == 128 ? 0 : topk);
    }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static std::map<int, std::unique_ptr<Dir>> dirs;
  auto& d = dirs[v.index_topk];
  if (!d) d = std::make_unique<Dir>(v.index_topk);
  return d->path;
}

inline const oracle::Fixture& fx(const Variant& v) {
  static std::map<std::string, oracle::Fixture> f;
  auto it = f.find(v.stem);
  if (it == f.end()) it = f.emplace(v.stem, oracle::load_fixture(v.stem)).first;
  return it->second;
}

inline ds::DeepseekV32& exact_model(const Variant& v) {
  static std::map<int, std::unique_ptr<ds::DeepseekV32>> m;
  auto& p = m[v.index_topk];
  if (!p) p = ds::DeepseekV32::load(ckpt_dir(v), ds::Numerics::Exact);
  return *p;
}

/// One traced, unbatched prefill of fixture prompt i (all-position logits), cached per prompt.
struct TracedRun {
  ds::ForwardTrace trace;
  std::vector<float> logits;  // [T, vocab]
};
inline const TracedRun& run(const Variant& v, size_t i) {
  static std::map<std::pair<std::string, size_t>, TracedRun> runs;
  auto it = runs.find({v.stem, i});
  if (it != runs.end()) return it->second;
  TracedRun& r = runs[{v.stem, i}];
  ds::DeepseekV32& m = exact_model(v);
  auto cache = m.new_cache();
  ds::BatchPlan p;
  p.segments.push_back(ds::Segment{cache.get(), 0, oracle::tokens_of(fx(v).meta["prompts"][i]["tokens"]), true});
  m.set_trace(&r.trace);
  r.logits = m.forward(p).data;
  m.set_trace(nullptr);
  return r;
}

/// Logits of the last `last` positions of each prompt, normwise within tol_logits.
inline void check_last_logits(const Variant& v) {
  const auto& f = fx(v);
  const size_t last = f.meta["last"].get<size_t>();
  const size_t V = size_t(exact_model(v).config().vocab_size);
  for (size_t i = 0; i < f.meta["prompts"].size(); ++i) {
    const TracedRun& r = run(v, i);
    auto want = f.array("p" + std::to_string(i) + ".logits_last");
    ASSERT_EQ(want.size(), last * V);
    ASSERT_GE(r.logits.size(), want.size());
    const float* got = r.logits.data() + (r.logits.size() - want.size());
    const double err = oracle::normwise(got, want.data(), want.size());
    std::printf("[oracle exact %s] prompt %zu: last-%zu logits normwise %.3e\n", v.stem.c_str(), i, last, err);
    EXPECT_LE(err, f.meta["tol_logits"].get<double>()) << "prompt " << i;
  }
}

/// Residual stream after each layer at the recorded positions, normwise within tol_hidden.
inline void check_hidden(const Variant& v) {
  const auto& f = fx(v);
  const size_t H = size_t(exact_model(v).config().hidden_size);
  for (size_t i = 0; i < f.meta["prompts"].size(); ++i) {
    const TracedRun& r = run(v, i);
    const auto pos = f.meta["prompts"][i]["hidden_pos"].get<std::vector<size_t>>();
    for (size_t l = 0; l < r.trace.hidden.size(); ++l) {
      auto want = f.array("p" + std::to_string(i) + ".hidden." + std::to_string(l));
      ASSERT_EQ(want.size(), pos.size() * H);
      std::vector<float> got;
      for (size_t p : pos)
        got.insert(got.end(), r.trace.hidden[l].begin() + long(p * H), r.trace.hidden[l].begin() + long((p + 1) * H));
      const double err = oracle::normwise(got.data(), want.data(), want.size());
      std::printf("[oracle exact %s] prompt %zu layer %zu: hidden normwise %.3e\n", v.stem.c_str(), i, l, err);
      EXPECT_LE(err, f.meta["tol_hidden"].get<double>()) << "prompt " << i << " layer " << l;
    }
  }
}

/// Indexer top-k sets of the recorded sparse rows of prompt `pi`: equal to the oracle's wherever the
/// oracle's relative boundary gap exceeds eps_gap (below it FP32 noise may legitimately flip the
/// k-th key); the row at position topk - 1 has exactly topk keys and attends densely (empty set).
/// Returns {rows compared, rows equal}.
inline std::pair<int, int> check_index_sets(const Variant& v, size_t pi) {
  const auto& f = fx(v);
  const TracedRun& r = run(v, pi);
  const double eps = f.meta["eps_gap"].get<double>();
  const size_t k = size_t(v.index_topk);
  int rows = 0, agree = 0, strict = 0;
  const auto& idx = f.meta["prompts"][pi]["index"];
  for (auto it = idx.begin(); it != idx.end(); ++it) {
    const int l = std::stoi(it.key());
    const auto& e = it.value();
    const auto sets = f.array("p" + std::to_string(pi) + ".index." + it.key());
    const auto& got_l = r.trace.index_sets.at(size_t(l));
    EXPECT_TRUE(got_l.at(k - 1).empty()) << "layer " << l << ": position " << k - 1 << " is dense";
    for (size_t j = 0; j < e["pos"].size(); ++j) {
      const int pos = e["pos"][j].get<int>();
      std::vector<int32_t> want(k);
      for (size_t t = 0; t < k; ++t) want[t] = int32_t(sets[j * k + t]);
      const bool eq = got_l.at(size_t(pos)) == want;
      ++rows;
      agree += eq;
      if (e["gaps"][j].get<double>() > eps) {
        ++strict;
        EXPECT_TRUE(eq) << "layer " << l << " position " << pos << " gap " << e["gaps"][j].get<double>();
      }
    }
  }
  std::printf("[oracle exact %s] indexer top-%zu sets: %d/%d rows agree; %d above the gap\n", v.stem.c_str(), k,
              agree, rows, strict);
  return {rows, agree};
}

}  // namespace rg
