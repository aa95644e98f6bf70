// Token sampling (see sampler.h). Filters follow SGLang's sampler order: temperature -> softmax ->
// top-k -> top-p -> min-p -> renormalize -> draw (spec/serving.md 4.2, "Sampling-parameter priority").
#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace ds {

namespace {

/// Temperatures below this are greedy (SGLang's _SAMPLING_EPS).
constexpr float kGreedyEps = 1e-6f;

bool is_greedy(const SamplingParams& p) { return !(p.temperature >= kGreedyEps); }

int32_t argmax_lowest(const float* logits, int vocab) {
  int32_t best = 0;
  float best_v = -std::numeric_limits<float>::infinity();
  bool found = false;
  for (int i = 0; i < vocab; ++i) {
    float v = logits[i];
    if (std::isnan(v)) continue;
    if (!found || v > best_v) {  // strict: ties keep the lowest index
      best = i;
      best_v = v;
      found = true;
    }
  }
  return best;
}

}  // namespace

uint64_t SamplerRng::next_u64() {
  // splitmix64 (Steele, Lea, Flood 2014): golden-ratio increment, two xor-shift-multiply rounds.
  state_ += 0x9e3779b97f4a7c15ULL;
  uint64_t z = state_;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double SamplerRng::next_double() { return double(next_u64() >> 11) * 0x1.0p-53; }

std::vector<double> filtered_probs(const float* logits, int vocab, const SamplingParams& p) {
  std::vector<double> probs(size_t(std::max(vocab, 0)), 0.0);
  if (vocab <= 0) return probs;
  if (is_greedy(p)) {  // a one-hot distribution on the greedy token
    probs[size_t(argmax_lowest(logits, vocab))] = 1.0;
    return probs;
  }
  // Softmax of logits / temperature in double (NaN logits get probability 0).
  const double inv_t = 1.0 / double(p.temperature);
  double max_l = -std::numeric_limits<double>::infinity();
  for (int i = 0; i < vocab; ++i)
    if (!std::isnan(logits[i])) max_l = std::max(max_l, double(logits[i]) * inv_t);
  if (!std::isfinite(max_l)) {  // all -inf / NaN / +inf: fall back to greedy
    probs[size_t(argmax_lowest(logits, vocab))] = 1.0;
    return probs;
  }
  double sum = 0.0;
  for (int i = 0; i < vocab; ++i) {
    double v = std::isnan(logits[i]) ? 0.0 : std::exp(double(logits[i]) * inv_t - max_l);
    probs[size_t(i)] = v;
    sum += v;
  }
  for (double& v : probs) v /= sum;

  const bool use_top_k = p.top_k > 0 && p.top_k < vocab;
  const bool use_top_p = p.top_p < 1.0f;
  const bool use_min_p = p.min_p > 0.0f;
  if (!use_top_k && !use_top_p && !use_min_p) return probs;

  // Descending probability, ties by ascending index (deterministic).
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return probs[size_t(a)] > probs[size_t(b)]; });
  size_t keep = size_t(vocab);
  if (use_top_k) keep = size_t(p.top_k);
  if (use_top_p) {
    // Smallest prefix whose cumulative mass reaches top_p: token r is kept while the mass of the
    // tokens before it is < top_p (mass measured on the softmax probabilities, as SGLang does).
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

int32_t sample_token(const float* logits, int vocab, const SamplingParams& p, SamplerRng& rng) {
  if (vocab <= 0) return 0;
  if (is_greedy(p)) return argmax_lowest(logits, vocab);
  std::vector<double> probs = filtered_probs(logits, vocab, p);
  // Inverse CDF over token ids in ascending order.
  const double u = rng.next_double();
  double cum = 0.0;
  int32_t last_nonzero = 0;
  for (int i = 0; i < vocab; ++i) {
    if (probs[size_t(i)] <= 0.0) continue;
    last_nonzero = i;
    cum += probs[size_t(i)];
    if (u < cum) return i;
  }
  return last_nonzero;  // u beyond the rounded total mass
}

}  // namespace ds
