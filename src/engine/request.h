// What the HTTP side hands the engine (Request) and gets back (TokenEvent through a RequestStream).
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/sampler.h"
#include "text/token_mask.h"

namespace ds {

/// One generation request. Token ids only; the server did the prompt rendering and tokenization.
struct Request {
  std::string id;
  std::vector<int32_t> prompt_ids;
  SamplingParams sampling;
  /// Upper bound on generated tokens (the engine also stops at the context length).
  int max_new_tokens = 16;
  /// Token ids that end generation with finish_reason "stop" (EOS); the stop token is counted in
  /// completion tokens and reported as `matched_stop`.
  std::vector<int32_t> stop_token_ids;
  /// Keep generating past stop_token_ids (they become ordinary tokens).
  bool ignore_eos = false;
  /// stop_token_ids cannot be sampled before this many tokens were generated (SGLang min_new_tokens).
  int min_new_tokens = 0;
  /// >= 0: each TokenEvent carries the chosen token's log-probability and this many top
  /// alternatives (model/logit_processing.h); -1: no log-probabilities.
  int top_logprobs = -1;
  /// >= 0: also report log-probabilities of the prompt tokens at positions >= this one (SGLang
  /// `logprob_start_len`; OpenAI echo + logprobs uses 0), with max(top_logprobs, 0) alternatives;
  /// the token at position 0 has no log-probability. Prompt positions scored must be computed by
  /// this request, so the radix cache serves at most the tokens before them (as SGLang). -1: none.
  int prompt_logprob_start = -1;
  /// Constrained decoding (response_format, text/token_mask.h): masks the logits before sampling
  /// (after penalties, before temperature/top-k/top-p) and follows every chosen token. One instance
  /// per request (never shared between choices). Null: unconstrained.
  std::shared_ptr<TokenConstraint> constraint;
  /// Test hook (--debug-inject-output, `debug_forced_prefix`): the first generated tokens are these
  /// ids instead of sampled ones (the constraint still follows them); sampling takes over after.
  std::vector<int32_t> forced_output;
};

/// One prompt token's log-probability: log-softmax of the previous position's raw logits at
/// `token` (no penalties, no temperature), and the top alternatives (descending; ties: lower id).
/// `logprob` is empty for position 0 (nothing precedes it).
struct PromptTokenLogprob {
  int32_t token = -1;
  std::optional<float> logprob;
  std::vector<std::pair<int32_t, float>> top;
};

/// Why a request ended (OpenAI finish_reason values, plus abort/error).
enum class FinishReason { None, Stop, Length, Abort, Error };
/// "stop" | "length" | "abort" | "error" ("" for None).
const char* finish_reason_name(FinishReason r);

/// One engine output for one request: a generated token, and/or the end of the request.
/// `token` is -1 on events that carry no token (abort, error). Counts are cumulative.
struct TokenEvent {
  int32_t token = -1;
  FinishReason finish = FinishReason::None;
  std::optional<int32_t> matched_stop;  // the stop/EOS id that ended the request
  int prompt_tokens = 0;
  int completion_tokens = 0;
  /// Prompt tokens served from the radix prefix cache at admission (D20).
  int cached_tokens = 0;
  std::string error;  // message when finish == Error
  /// finish == Error because the request itself is invalid (empty prompt, ids outside the
  /// vocabulary, longer than the context or the KV pool): the client's fault (HTTP 400), not the server's.
  bool invalid_request = false;
  /// Request.top_logprobs >= 0: log-softmax of `token` and the top alternatives (descending).
  std::optional<float> logprob;
  std::vector<std::pair<int32_t, float>> top_logprobs;
  /// Request.prompt_logprob_start >= 0: on the request's first event only, one entry per prompt
  /// position from prompt_logprob_start (clamped to the prompt length) to the end of the prompt.
  std::vector<PromptTokenLogprob> prompt_logprobs;
  bool finished() const { return finish != FinishReason::None; }
};

/// The per-request channel between the engine thread (producer) and one HTTP thread (consumer),
/// plus the abort flag the HTTP side raises when its client is gone. Thread-safe.
class RequestStream {
 public:
  explicit RequestStream(std::string id) : id_(std::move(id)) {}
  const std::string& id() const { return id_; }

  /// Engine side: appends an event and wakes the consumer.
  void push(TokenEvent ev);
  /// HTTP side: waits up to `timeout` for the next event; nullopt on timeout.
  std::optional<TokenEvent> pop(std::chrono::milliseconds timeout);
  /// HTTP side: removes and returns every queued event without waiting.
  std::vector<TokenEvent> drain();

  /// HTTP side: the client is gone; the engine drops the request at its next step.
  void abort() { aborted_.store(true); }
  bool aborted() const { return aborted_.load(); }

 private:
  std::string id_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<TokenEvent> events_;
  std::atomic<bool> aborted_{false};
};

}  // namespace ds
