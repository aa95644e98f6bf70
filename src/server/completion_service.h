// Raw-prompt generation: OpenAI's POST /v1/completions and SGLang's native POST /generate
// (spec/serving.md 4.1, 4.5). No chat template: the prompt is text (BOS only when the tokenizer
// config says add_bos_token, D6) or token ids taken verbatim. Stop strings match the generated
// text (D17); there is no reasoning or tool parsing on these routes.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "server/chat_service.h"

namespace ds {

/// Which wire format a CompletionSession speaks.
enum class TextApi { Completions, Generate };

/// One raw prompt of a request: its token ids and the text `echo` returns.
struct TextPrompt {
  std::vector<int32_t> ids;
  std::string text;
  /// Leading ids the server added that `text` does not contain (the BOS of a text prompt, D6).
  size_t added_ids = 0;
  /// `text` is the decode of `ids` with skip_special_tokens (token-id prompts); else the text as given.
  bool decoded = false;
};

/// Parses an OpenAI `prompt` / SGLang `text` or `input_ids` value into prompts: a string, a list
/// of strings, a list of token ids, or a list of id lists. `param` names the field in 400s
/// (empty list, wrong types, ids outside [0, vocab)). Text gets BOS first when
/// tokenizer.add_bos_token() (D6); ids are used as given.
std::vector<TextPrompt> parse_text_prompts(const Tokenizer& tok, const ordered_json& v, const std::string& param,
                                           bool skip_special_tokens);

class CompletionSession {
 public:
  /// Parses and validates `body` for `api`, checks each prompt against the context (SGLang's
  /// messages, spec 4.6; --allow-auto-truncate), submits prompts x n engine requests (choice index
  /// = prompt * n + j) and waits for each first event, so failures are HTTP errors. Throws ApiError;
  /// ClientDisconnected when `gone` says the client left before the first event.
  static std::shared_ptr<CompletionSession> start(const ServeContext& ctx, const std::string& body, TextApi api,
                                                  const ClientGone& gone = {});
  ~CompletionSession();

  bool streaming() const { return req_.stream; }
  /// Streaming: appends the next SSE bytes (waits up to ~50 ms). False once `data: [DONE]` is out.
  bool next_stream(std::string& out);
  /// Non-streaming: waits up to ~50 ms; true with the complete JSON body in `out`.
  bool poll_complete(std::string& out);
  /// The client is gone: abort every unfinished choice.
  void abort();

 private:
  struct Choice;
  CompletionSession(const ServeContext& ctx, TextApi api);
  void parse_generate_logprobs(const ordered_json& body);
  void pump(bool wait);
  void apply(Choice& c, const TokenEvent& ev);
  nlohmann::json usage() const;
  nlohmann::json generate_object(const Choice& c, bool streaming) const;
  nlohmann::json completion_chunk(nlohmann::json choices) const;

  const ServeContext& ctx_;
  TextApi api_;
  ChatCompletionRequest req_;  // the shared fields (messages unused)
  bool echo_ = false;
  /// /generate return_logprob: logprob_start_len (-1: output only), top_logprobs_num,
  /// return_text_in_logprobs.
  bool return_logprob_ = false;
  int64_t logprob_start_len_ = -1;
  int top_logprobs_num_ = 0;
  bool text_in_logprobs_ = false;
  bool batch_ = false;         // /generate: a list of prompts (or n > 1) -> a list of objects
  std::string id_;
  int64_t created_ = 0;
  std::vector<TextPrompt> prompts_;
  std::vector<std::unique_ptr<Choice>> choices_;
  bool done_sent_ = false;
};

}  // namespace ds
