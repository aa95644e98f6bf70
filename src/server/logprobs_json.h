// Log-probabilities in each endpoint's shape (spec/serving.md 4.3, 4.5), from the engine's
// TokenEvent.logprob / top_logprobs (model/logit_processing.h: log-softmax, <= 0, top sorted).
#pragma once
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/request.h"
#include "text/tokenizer.h"

namespace ds {

/// Chat (`choices[].logprobs.content[]`): {"token": decoded text of the id (U+FFFD for a partial
/// UTF-8 character), "bytes": the token's raw bytes as integers, "logprob", "top_logprobs":
/// [{"token", "bytes", "logprob"}] (descending)}.
nlohmann::json chat_logprob_entry(const Tokenizer& tok, const TokenEvent& ev);

/// Completions (`choices[].logprobs`): parallel lists {"tokens", "token_logprobs", "top_logprobs"
/// (one {token text: logprob} object per token), "text_offset"}. text_offset[i] is the byte
/// offset (UTF-8) in the returned text where token i's text starts; a token that adds no text
/// there (a special token under skip_special_tokens, the server-added BOS of a text prompt) gets
/// the offset where its text would have been (vLLM's rule), so offsets never pass the text.
class CompletionLogprobs {
 public:
  /// `prompt_offsets`: text_offset of each prompt token (prompt_text_offsets), used by add_prompt.
  explicit CompletionLogprobs(std::vector<size_t> prompt_offsets = {}) : prompt_offsets_(std::move(prompt_offsets)) {}
  /// One generated token starting at byte `text_offset` of the returned text.
  void add(const Tokenizer& tok, const TokenEvent& ev, size_t text_offset);
  /// The prompt's entries (echo + logprobs, as OpenAI/vLLM): before the generated ones (in order,
  /// over one or more calls); the first prompt token has null `token_logprobs` and `top_logprobs`.
  void add_prompt(const Tokenizer& tok, const std::vector<PromptTokenLogprob>& prompt);
  bool empty() const { return tokens_.empty(); }
  /// The lists so far; take() also clears them (streaming sends each token once).
  nlohmann::json to_json() const;
  nlohmann::json take();

 private:
  std::vector<size_t> prompt_offsets_;
  size_t prompt_pos_ = 0;
  nlohmann::json tokens_ = nlohmann::json::array(), logprobs_ = nlohmann::json::array(),
                 top_ = nlohmann::json::array(), offsets_ = nlohmann::json::array();
};

/// text_offset of each of `ids` in an echoed prompt text of `text_size` bytes: the bytes that the
/// ids before it decode to (incrementally; the first `added_ids` ids add none, specials none when
/// `skip_special`), capped at `text_size`.
std::vector<size_t> prompt_text_offsets(const std::shared_ptr<const Tokenizer>& tok, const std::vector<int32_t>& ids,
                                        size_t added_ids, bool skip_special, size_t text_size);

/// SGLang /generate `return_logprob` lists (meta_info): `input_token_logprobs` /
/// `output_token_logprobs` are [logprob|null, token_id, text|null] per token; `input_top_logprobs`
/// / `output_top_logprobs` one list of such triples per token (null for the first prompt token).
/// `text` only with `return_text_in_logprobs` (else null).
class GenerateLogprobs {
 public:
  explicit GenerateLogprobs(bool with_text = false) : with_text_(with_text) {}
  void add_prompt(const Tokenizer& tok, const std::vector<PromptTokenLogprob>& prompt);
  /// `logprob_start_len` -1 (output only): SGLang still lists the last prompt token, with null.
  void add_last_prompt_token(const Tokenizer& tok, int32_t id);
  void add_output(const Tokenizer& tok, const TokenEvent& ev);
  /// Adds the four fields to `meta_info`.
  void write(nlohmann::json& meta_info) const;

 private:
  nlohmann::json triple(const Tokenizer& tok, std::optional<float> lp, int32_t id) const;
  bool with_text_;
  nlohmann::json in_ = nlohmann::json::array(), in_top_ = nlohmann::json::array(),
                 out_ = nlohmann::json::array(), out_top_ = nlohmann::json::array();
};

}  // namespace ds
