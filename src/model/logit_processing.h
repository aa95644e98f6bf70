// Logit processing before sampling and the log-probabilities reported to clients (spec/serving.md
// 4.2-4.5: frequency/presence/repetition penalties, min_tokens, logprobs/top_logprobs).
#pragma once
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "model/sampler.h"

namespace ds {

/// True when any penalty of `p` changes logits (frequency/presence != 0, repetition != 1).
bool has_penalties(const SamplingParams& p);

/// Applies the penalties in place over the ids generated so far (`generated`; the prompt is not
/// penalized, as SGLang's penalizers accumulate output tokens): for a token seen c > 0 times,
/// repetition: logit / r when logit > 0 else logit * r; then logit -= frequency * c + presence.
/// `logits` has one FP32 entry per vocabulary id; ids outside it are ignored.
void apply_penalties(std::vector<float>& logits, const SamplingParams& p, std::span<const int32_t> generated);

/// Adds p.logit_bias to `logits` in place (OpenAI logit_bias; ids outside the vocabulary ignored).
/// The caller applies it before apply_penalties (vLLM's order).
void apply_logit_bias(std::vector<float>& logits, const SamplingParams& p);

/// The log-softmax (natural log, FP64 accumulation) of `token` and of the `top_k` most likely ids
/// (descending; ties: lower id first) over `logits` [vocab] (the processed logits before
/// temperature, so greedy and sampled requests report the same numbers). All values are <= 0.
struct TokenLogprobs {
  float logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> top;
};
TokenLogprobs token_logprobs(const float* logits, int vocab, int32_t token, int top_k);

}  // namespace ds
