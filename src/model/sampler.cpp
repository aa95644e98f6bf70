// Token sampling (see sampler.h). Filters follow SGLang's sampler order: temperature -> softmax ->
// top-k -> top-p -> min-p -> renormalize -> draw (spec/serving.md 4.2, "Sampling-parameter priority").
#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

namespace ds {

namespace {

/// Temperatures below this are greedy (SGLang's _SAMPLING_EPS).
constexpr float kGreedyEps = 1e-6f;
/// Ranking windows larger than this rank the whole vocabulary by radix sort instead (a first window
/// of 1024 that does not decide top-p / min-p goes there directly when the bound is larger).
constexpr size_t kRadixWindow = 8192;

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

/// Ranks every token (descending probability, ties by ascending index) by a stable LSD radix sort
/// of the probabilities' IEEE bits (non-negative doubles order like their bit patterns), 4 passes
/// of 16 bits over ~bits, starting from ascending indices: O(V), for rankings that need most of a
/// large vocabulary (a flat distribution under top-p 0.95), where a comparison sort costs ~10 ms.
void radix_rank(const std::vector<double>& probs, std::vector<int32_t>& order) {
  const size_t n = probs.size();
  std::vector<uint64_t> key(n);
  for (size_t i = 0; i < n; ++i) {
    uint64_t b;
    std::memcpy(&b, &probs[i], sizeof b);
    key[i] = ~b;  // ascending ~bits = descending probability
  }
  std::vector<int32_t> tmp(n);
  for (size_t i = 0; i < n; ++i) order[i] = int32_t(i);
  std::vector<uint32_t> count(size_t(1) << 16);
  for (int pass = 0; pass < 4; ++pass) {
    const int shift = 16 * pass;
    std::fill(count.begin(), count.end(), 0u);
    for (size_t i = 0; i < n; ++i) ++count[(key[size_t(order[i])] >> shift) & 0xffff];
    uint32_t sum = 0;
    for (uint32_t& c : count) {
      const uint32_t v = c;
      c = sum;
      sum += v;
    }
    for (size_t i = 0; i < n; ++i) tmp[count[(key[size_t(order[i])] >> shift) & 0xffff]++] = order[i];
    order.swap(tmp);
  }
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

  // Rank order: descending probability, ties by ascending index (a total order, so the ranking is
  // unique). Only the head of the ranking decides what is kept, so the ranks are computed for a
  // window of the W best tokens (nth_element + sort: O(V) instead of a full O(V log V) sort of the
  // vocabulary, ~10 ms per token at V = 129280), and the window grows only when top-p or min-p
  // reaches its end undecided; past kRadixWindow the whole vocabulary is ranked by radix sort. The
  // kept set, its order and every sum are those of a full sort.
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  // (probability, index) pairs: the selection reads contiguous memory instead of gathering probs.
  using Cand = std::pair<double, int32_t>;
  std::vector<Cand> cand(probs.size());
  for (size_t i = 0; i < probs.size(); ++i) cand[i] = {probs[i], int32_t(i)};
  auto ranks_before = [](const Cand& a, const Cand& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  const size_t bound = use_top_k ? size_t(p.top_k) : size_t(vocab);  // never more kept than this
  size_t window = use_top_p || use_min_p ? std::min<size_t>(bound, 1024) : bound;
  size_t keep = bound;
  for (;;) {
    if (window > kRadixWindow) {
      radix_rank(probs, order);  // the whole ranking at once (same order as ranks_before)
      window = size_t(vocab);
    } else {
      if (window < size_t(vocab))
        std::nth_element(cand.begin(), cand.begin() + long(window), cand.end(), ranks_before);
      std::sort(cand.begin(), cand.begin() + long(window), ranks_before);
      for (size_t r = 0; r < window; ++r) order[r] = cand[r].second;
    }
    keep = bound;
    bool decided = true;
    if (use_top_p) {
      // Smallest prefix whose cumulative mass reaches top_p: token r is kept while the mass of the
      // tokens before it is < top_p (mass measured on the softmax probabilities, as SGLang does).
      double before = 0.0;
      size_t n = 0;
      while (n < keep && n < window && before < double(p.top_p)) before += probs[size_t(order[n++])];
      if (n == window && window < keep && before < double(p.top_p)) decided = false;
      keep = std::max<size_t>(n, 1);
    }
    if (decided && use_min_p) {
      const double thresh = double(p.min_p) * probs[size_t(order[0])];
      size_t n = 0;
      while (n < keep && n < window && probs[size_t(order[n])] >= thresh) ++n;
      if (n == window && window < keep) decided = false;
      keep = std::max<size_t>(n, 1);
    }
    if (decided) break;
    window = bound > kRadixWindow ? bound : std::min<size_t>(bound, window * 8);  // large: rank it all
  }
  std::vector<double> out(probs.size(), 0.0);
  double kept = 0.0;
  for (size_t r = 0; r < keep; ++r) kept += probs[size_t(order[r])];
  for (size_t r = 0; r < keep; ++r) out[size_t(order[r])] = probs[size_t(order[r])] / kept;
  return out;
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
