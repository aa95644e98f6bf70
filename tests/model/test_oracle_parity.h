// Logit / greedy parity checks of the engine against an oracle fixture (docs/numerics.md "Oracle
// parity"); shared by test_oracle_hf.cpp (exact mode) and test_oracle_official.cpp (official mode).
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "model/deepseek_v32.h"
#include "test_oracle_common.h"

namespace oracle {

inline std::vector<int32_t> tokens_of(const nlohmann::json& j) { return j.get<std::vector<int32_t>>(); }

/// Per-prompt logits tolerances: `tols` if given, else the fixture's tol_logits for every prompt.
inline double tol_of(const Fixture& fx, const std::vector<double>* tols, size_t prompt) {
  return tols ? tols->at(prompt) : fx.meta["tol_logits"].get<double>();
}

/// Every prompt in one unbatched prefill, all-position logits within tol_of(prompt) (normwise per prompt).
inline void check_prompt_logits(ds::DeepseekV32& m, const Fixture& fx, const std::vector<double>* tols = nullptr) {
  const auto& prompts = fx.meta["prompts"];
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto toks = tokens_of(prompts[i]["tokens"]);
    auto cache = m.new_cache();
    ds::BatchPlan p;
    p.segments.push_back(ds::Segment{cache.get(), 0, toks, true});
    auto got = m.forward(p).data;
    auto want = fx.array("p" + std::to_string(i) + ".logits");
    const double tol = tol_of(fx, tols, i);
    ASSERT_EQ(got.size(), want.size());
    const double err = normwise(got.data(), want.data(), want.size());
    std::printf("[oracle %s] prompt %zu (%zu tokens): logits normwise %.3e (tol %.1e)\n",
                fx.meta["mode"].get<std::string>().c_str(), i, toks.size(), err, tol);
    EXPECT_LE(err, tol) << "prompt " << i;
  }
}

/// All prompts as segments of ONE batch plan (mixed lengths); each segment's logits vs the oracle's
/// unbatched run of that prompt.
inline void check_mixed_batch(ds::DeepseekV32& m, const Fixture& fx, const std::vector<double>* tols = nullptr) {
  const auto& prompts = fx.meta["prompts"];
  std::vector<std::unique_ptr<ds::SequenceCache>> caches;
  ds::BatchPlan p;
  for (const auto& pr : prompts) {
    caches.push_back(m.new_cache());
    p.segments.push_back(ds::Segment{caches.back().get(), 0, tokens_of(pr["tokens"]), true});
  }
  auto out = m.forward(p);
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto want = fx.array("p" + std::to_string(i) + ".logits");
    const float* got = out.row(int(i));
    const double err = normwise(got, want.data(), want.size());
    EXPECT_LE(err, tol_of(fx, tols, i)) << "batched segment " << i;
  }
}

/// D24 greedy: the oracle's token must be the engine's argmax wherever the oracle's top-2 margin
/// exceeds strict_factor (D24: 10) x tol x rms(logits) (tol = tol_of(prompt)); the oracle's token is
/// fed (teacher forcing) in every case. Returns {checked steps, agreeing steps}.
inline std::pair<int, int> check_greedy(ds::DeepseekV32& m, const Fixture& fx, const std::vector<double>* tols = nullptr,
                                        double strict_factor = 10.0) {
  int checked = 0, agree = 0;
  for (const auto& g : fx.meta["greedy"]) {
    const double tol = tol_of(fx, tols, g["prompt"].get<size_t>());
    auto toks = tokens_of(fx.meta["prompts"][g["prompt"].get<size_t>()]["tokens"]);
    auto cache = m.new_cache();
    ds::BatchPlan p;
    p.segments.push_back(ds::Segment{cache.get(), 0, toks, false});
    auto out = m.forward(p);
    int32_t pos = int32_t(toks.size());
    for (const auto& st : g["steps"]) {
      const float* lg = out.last(0);
      const int argmax = int(std::max_element(lg, lg + out.vocab) - lg);
      const int want = st["token"].get<int>();
      const bool strict = st["margin"].get<double>() > strict_factor * tol * st["rms"].get<double>();
      if (strict) {
        ++checked;
        EXPECT_EQ(argmax, want) << "greedy prompt " << g["prompt"] << " step at pos " << pos;
      }
      agree += argmax == want;
      ds::BatchPlan d;
      d.segments.push_back(ds::Segment{cache.get(), pos, {want}, false});
      out = m.forward(d);
      ++pos;
    }
  }
  return {checked, agree};
}

}  // namespace oracle
