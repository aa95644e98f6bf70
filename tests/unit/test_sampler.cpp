// Sampler: each filter on hand-computed probability vectors, greedy ties, rng reproducibility.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "model/sampler.h"

namespace {

using ds::SamplingParams;

// Logits whose softmax at temperature 1 is exactly {0.4, 0.3, 0.2, 0.1} (up to exp/log rounding).
std::vector<float> four() {
  return {std::log(0.4f), std::log(0.3f), std::log(0.2f), std::log(0.1f)};
}

// Float logits -> double probabilities: log/exp round trip in float is good to ~1e-7 relative.
constexpr double kTol = 1e-6;

void expect_probs(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], kTol) << "index " << i;
}

TEST(Sampler, SplitMix64KnownOutputs) {
  // Reference values of splitmix64 seeded with 0 (Vigna's splitmix64.c).
  ds::SamplerRng rng(0);
  EXPECT_EQ(rng.next_u64(), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(rng.next_u64(), 0x6e789e6aa1b965f4ULL);
  ds::SamplerRng r2(7);
  for (int i = 0; i < 100; ++i) {
    double u = r2.next_double();
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
  }
}

TEST(Sampler, PlainSoftmax) {
  auto l = four();
  SamplingParams p;
  expect_probs(ds::filtered_probs(l.data(), 4, p), {0.4, 0.3, 0.2, 0.1});
}

TEST(Sampler, Temperature) {
  auto l = four();
  SamplingParams p;
  p.temperature = 2.0f;  // p_i ∝ sqrt(q_i)
  double s = std::sqrt(0.4) + std::sqrt(0.3) + std::sqrt(0.2) + std::sqrt(0.1);
  expect_probs(ds::filtered_probs(l.data(), 4, p),
               {std::sqrt(0.4) / s, std::sqrt(0.3) / s, std::sqrt(0.2) / s, std::sqrt(0.1) / s});
}

TEST(Sampler, TopK) {
  auto l = four();
  SamplingParams p;
  p.top_k = 2;
  expect_probs(ds::filtered_probs(l.data(), 4, p), {4.0 / 7, 3.0 / 7, 0, 0});
  p.top_k = 4;  // == vocab: no-op
  expect_probs(ds::filtered_probs(l.data(), 4, p), {0.4, 0.3, 0.2, 0.1});
}

TEST(Sampler, TopP) {
  auto l = four();
  SamplingParams p;
  p.top_p = 0.6f;  // 0.4 < 0.6 -> need 0.3 too
  expect_probs(ds::filtered_probs(l.data(), 4, p), {4.0 / 7, 3.0 / 7, 0, 0});
  p.top_p = 0.75f;  // 0.7 < 0.75 -> need 0.2 too
  expect_probs(ds::filtered_probs(l.data(), 4, p), {4.0 / 9, 3.0 / 9, 2.0 / 9, 0});
  p.top_p = 0.1f;  // the top token alone
  expect_probs(ds::filtered_probs(l.data(), 4, p), {1, 0, 0, 0});
}

TEST(Sampler, MinP) {
  auto l = four();
  SamplingParams p;
  p.min_p = 0.6f;  // threshold 0.24
  expect_probs(ds::filtered_probs(l.data(), 4, p), {4.0 / 7, 3.0 / 7, 0, 0});
  p.min_p = 0.45f;  // threshold 0.18
  expect_probs(ds::filtered_probs(l.data(), 4, p), {4.0 / 9, 3.0 / 9, 2.0 / 9, 0});
}

TEST(Sampler, FiltersCompose) {
  auto l = four();
  SamplingParams p;
  p.top_k = 3;
  p.top_p = 0.75f;
  p.min_p = 0.6f;  // top-k keeps 3, top-p keeps 3, min-p keeps 2
  expect_probs(ds::filtered_probs(l.data(), 4, p), {4.0 / 7, 3.0 / 7, 0, 0});
}

TEST(Sampler, GreedyTakesLowestIndexOfMax) {
  std::vector<float> l = {1.0f, 3.0f, 3.0f, 2.0f};
  SamplingParams p;
  p.temperature = 0.0f;
  ds::SamplerRng rng(1);
  EXPECT_EQ(ds::sample_token(l.data(), 4, p, rng), 1);
  expect_probs(ds::filtered_probs(l.data(), 4, p), {0, 1, 0, 0});
  // Greedy consumes no randomness.
  ds::SamplerRng fresh(1);
  EXPECT_EQ(rng.next_u64(), fresh.next_u64());
}

TEST(Sampler, NeverPicksFilteredToken) {
  auto l = four();
  SamplingParams p;
  p.top_k = 2;
  ds::SamplerRng rng(123);
  for (int i = 0; i < 2000; ++i) {
    int t = ds::sample_token(l.data(), 4, p, rng);
    EXPECT_TRUE(t == 0 || t == 1) << t;
  }
}

TEST(Sampler, DrawFrequenciesMatchProbabilities) {
  auto l = four();
  SamplingParams p;
  ds::SamplerRng rng(42);
  const int n = 20000;
  std::vector<int> count(4, 0);
  for (int i = 0; i < n; ++i) ++count[size_t(ds::sample_token(l.data(), 4, p, rng))];
  // Binomial std of a frequency is <= sqrt(0.25 / n) = 0.0035; 0.02 is > 5 sigma.
  std::vector<double> want = {0.4, 0.3, 0.2, 0.1};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(count[size_t(i)] / double(n), want[size_t(i)], 0.02) << i;
}

std::vector<int32_t> draws(uint64_t seed, int n) {
  std::vector<float> flat(1000, 0.0f);
  SamplingParams p;
  p.temperature = 1.0f;
  ds::SamplerRng rng(seed);
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) out.push_back(ds::sample_token(flat.data(), 1000, p, rng));
  return out;
}

TEST(Sampler, SameSeedSameDraws) { EXPECT_EQ(draws(5, 20), draws(5, 20)); }

TEST(Sampler, DifferentSeedsDiffer) {
  // 20 draws from 1000 equally likely tokens: equal sequences have probability 1e-60.
  EXPECT_NE(draws(5, 20), draws(6, 20));
  auto d = draws(5, 20);
  int distinct = 0;
  for (size_t i = 1; i < d.size(); ++i) distinct += d[i] != d[0];
  EXPECT_GT(distinct, 0);
}

}  // namespace

// The filters rank only a window of the best tokens and grow it when top-p / min-p reaches its end
// (sampler.cpp). Whatever the window does, the result must be bit-identical to ranking the whole
// vocabulary: a full stable sort by descending probability (ties by ascending index), the same
// prefix rules, the same sums in rank order. Checked at DeepSeek's vocabulary size on peaked, flat
// (top-p needs most of the vocabulary: the window grows to its end) and tied distributions.
namespace {

std::vector<double> full_sort_reference(const std::vector<double>& softmax, const SamplingParams& p) {
  const int vocab = int(softmax.size());
  std::vector<double> probs = softmax;
  const bool use_top_k = p.top_k > 0 && p.top_k < vocab, use_top_p = p.top_p < 1.0f, use_min_p = p.min_p > 0.0f;
  std::vector<int32_t> order(softmax.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = int32_t(i);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return probs[size_t(a)] > probs[size_t(b)]; });
  size_t keep = use_top_k ? size_t(p.top_k) : size_t(vocab);
  if (use_top_p) {
    double before = 0.0;
    size_t n = 0;
    while (n < keep && before < double(p.top_p)) before += probs[size_t(order[n++])];
    keep = std::max<size_t>(n, 1);
  }
  if (use_min_p) {
    const double thresh = double(p.min_p) * probs[size_t(order[0])];
    size_t n = 0;
    while (n < keep && probs[size_t(order[n])] >= thresh) ++n;
    keep = std::max<size_t>(n, 1);
  }
  for (size_t r = keep; r < order.size(); ++r) probs[size_t(order[r])] = 0.0;
  double kept = 0.0;
  for (size_t r = 0; r < keep; ++r) kept += probs[size_t(order[r])];
  for (double& v : probs) v /= kept;
  return probs;
}

}  // namespace

TEST(Sampler, WindowedRankingEqualsFullSortBitForBit) {
  constexpr int kVocab = 129280;
  uint64_t state = 12345;
  auto uniform = [&] {  // splitmix-style LCG for test data
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return double(state >> 11) * 0x1.0p-53;
  };
  struct Dist {
    const char* name;
    double spread;  // logit scale: large = peaked, 0 = flat
    bool ties;      // quantized logits: many exact ties
  };
  const Dist dists[] = {{"peaked", 12.0, false}, {"flat", 0.05, false}, {"tied", 4.0, true}};
  const SamplingParams params[] = {
      {1.0f, 0.95f, 0, 0.0f}, {1.0f, 0.999f, 0, 0.0f}, {0.7f, 0.9f, 40, 0.0f}, {1.0f, 1.0f, 50, 0.0f},
      {1.0f, 1.0f, 0, 0.05f}, {1.0f, 1.0f, 0, 1e-9f},  {1.3f, 0.8f, 0, 0.01f}, {1.0f, 0.9999f, 100000, 0.0f}};
  for (const Dist& d : dists) {
    std::vector<float> logits(kVocab);
    for (float& l : logits) {
      double v = d.spread * (uniform() - 0.5) * 2.0;
      if (d.ties) v = std::round(v * 2.0) / 2.0;
      l = float(v);
    }
    for (const SamplingParams& p : params) {
      SamplingParams plain = p;
      plain.top_p = 1.0f, plain.top_k = 0, plain.min_p = 0.0f;
      const std::vector<double> softmax = ds::filtered_probs(logits.data(), kVocab, plain);
      const std::vector<double> got = ds::filtered_probs(logits.data(), kVocab, p);
      const std::vector<double> want = full_sort_reference(softmax, p);
      ASSERT_EQ(got.size(), want.size());
      size_t differ = 0, kept = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        differ += got[i] != want[i];
        kept += got[i] > 0.0;
      }
      EXPECT_EQ(differ, 0u) << d.name << " top_p " << p.top_p << " top_k " << p.top_k << " min_p " << p.min_p
                            << " (kept " << kept << ")";
    }
  }
}
