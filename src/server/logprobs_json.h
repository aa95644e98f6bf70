// Log-probabilities in each endpoint's shape (spec/serving.md 4.3, 4.5), from the engine's
// TokenEvent.logprob / top_logprobs (model/logit_processing.h: log-softmax, <= 0, top sorted).
#pragma once
#include <nlohmann/json.hpp>

#include "engine/request.h"
#include "text/tokenizer.h"

namespace ds {

/// Chat (`choices[].logprobs.content[]`): {"token": decoded text of the id (U+FFFD for a partial
/// UTF-8 character), "bytes": the token's raw bytes as integers, "logprob", "top_logprobs":
/// [{"token", "bytes", "logprob"}] (descending)}.
nlohmann::json chat_logprob_entry(const Tokenizer& tok, const TokenEvent& ev);

/// Completions (`choices[].logprobs`): parallel lists {"tokens", "token_logprobs", "top_logprobs"
/// (one {token text: logprob} object per token), "text_offset" (character offset of each token
/// in the returned text, counted in bytes of UTF-8)}.
class CompletionLogprobs {
 public:
  /// `start_offset`: where the generated text starts in the returned text (the echoed prompt).
  explicit CompletionLogprobs(size_t start_offset = 0) : offset_(start_offset) {}
  void add(const Tokenizer& tok, const TokenEvent& ev);
  bool empty() const { return tokens_.empty(); }
  /// The lists so far; take() also clears them (streaming sends each token once).
  nlohmann::json to_json() const;
  nlohmann::json take();

 private:
  size_t offset_;
  nlohmann::json tokens_ = nlohmann::json::array(), logprobs_ = nlohmann::json::array(),
                 top_ = nlohmann::json::array(), offsets_ = nlohmann::json::array();
};

}  // namespace ds
