#include "model/logit_processing.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

namespace ds {

bool has_penalties(const SamplingParams& p) {
  return p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f || p.repetition_penalty != 1.0f;
}

void apply_penalties(std::vector<float>& logits, const SamplingParams& p, std::span<const int32_t> generated) {
  if (!has_penalties(p) || generated.empty()) return;
  std::unordered_map<int32_t, int> counts;
  for (int32_t t : generated)
    if (t >= 0 && size_t(t) < logits.size()) ++counts[t];
  for (const auto& [t, c] : counts) {
    float& v = logits[size_t(t)];
    if (p.repetition_penalty != 1.0f) v = v > 0 ? v / p.repetition_penalty : v * p.repetition_penalty;
    v -= p.frequency_penalty * float(c) + p.presence_penalty;
  }
}

void apply_logit_bias(std::vector<float>& logits, const SamplingParams& p) {
  for (const auto& [t, b] : p.logit_bias)
    if (t >= 0 && size_t(t) < logits.size()) logits[size_t(t)] += b;
}

TokenLogprobs token_logprobs(const float* logits, int vocab, int32_t token, int top_k) {
  TokenLogprobs out;
  if (vocab <= 0) return out;
  double mx = -std::numeric_limits<double>::infinity();
  for (int i = 0; i < vocab; ++i)
    if (!std::isnan(logits[i])) mx = std::max(mx, double(logits[i]));
  double sum = 0.0;
  for (int i = 0; i < vocab; ++i)
    if (!std::isnan(logits[i])) sum += std::exp(double(logits[i]) - mx);
  const double lse = mx + std::log(sum);
  auto lp = [&](int32_t i) {
    const double v = double(logits[i]);
    return std::isnan(v) ? -std::numeric_limits<float>::infinity() : float(std::min(0.0, v - lse));
  };
  out.logprob = (token >= 0 && token < vocab) ? lp(token) : -std::numeric_limits<float>::infinity();
  const int k = std::clamp(top_k, 0, vocab);
  if (k > 0) {
    std::vector<int32_t> ids(static_cast<size_t>(vocab));
    for (int i = 0; i < vocab; ++i) ids[size_t(i)] = i;
    auto better = [&](int32_t a, int32_t b) {
      const float va = std::isnan(logits[a]) ? -std::numeric_limits<float>::infinity() : logits[a], vb = std::isnan(logits[b]) ? -std::numeric_limits<float>::infinity() : logits[b];
      return va > vb || (va == vb && a < b);
    };
    std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), better);
    for (int i = 0; i < k; ++i) out.top.emplace_back(ids[size_t(i)], lp(ids[size_t(i)]));
  }
  return out;
}

}  // namespace ds
