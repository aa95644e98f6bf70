// Token sampling from logits: greedy, temperature, top-k, top-p, min-p (SGLang's order).
#pragma once
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace ds {

/// Per-request sampling parameters (OpenAI / SGLang request fields).
/// temperature 0 = greedy; top_k <= 0 disables; top_p 1 disables; min_p 0 disables.
struct SamplingParams {
  float temperature = 1.0f;
  float top_p = 1.0f;
  int top_k = -1;
  float min_p = 0.0f;
  std::optional<uint64_t> seed;
  /// OpenAI/SGLang penalties over the generated ids (model/logit_processing.h): 0, 0, 1 disable.
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  float repetition_penalty = 1.0f;
  /// OpenAI logit_bias: (token id, bias) added to the raw logits before penalties and sampling
  /// (model/logit_processing.h); ids outside the vocabulary are ignored.
  std::vector<std::pair<int32_t, float>> logit_bias;
};

/// Counter-free reproducible generator (splitmix64 stream), seeded per request.
class SamplerRng {
 public:
  explicit SamplerRng(uint64_t seed) : state_(seed) {}
  uint64_t next_u64();
  /// Uniform in [0, 1) with 53 random bits.
  double next_double();

 private:
  uint64_t state_;
};

/// Picks the next token from `logits` [vocab] (FP32). Order: temperature scaling -> softmax ->
/// top-k -> top-p (smallest set with cumulative mass >= top_p) -> min-p (drop p < min_p * p_max)
/// -> renormalize -> inverse-CDF draw with `rng`. Greedy (temperature 0) takes the lowest index
/// among maximal logits and does not consume randomness.
int32_t sample_token(const float* logits, int vocab, const SamplingParams& p, SamplerRng& rng);

/// The probabilities after all filters (zeros for removed tokens); exposed for tests.
std::vector<double> filtered_probs(const float* logits, int vocab, const SamplingParams& p);

}  // namespace ds
