// OpenAI chat-completions protocol: request parsing/validation and response JSON (spec/serving.md
// 4.2-4.4, 4.6; D8, D18, D19). All JSON of the server lives here and in chat_service.cpp.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "text/chat.h"

namespace ds {

struct JsonGrammar;

/// An error returned to the client: HTTP status and D18's envelope
/// {"error": {"message", "type", "param", "code"}}.
struct ApiError : std::runtime_error {
  int status;
  std::string param;  // empty -> null
  std::string type;
  nlohmann::json code;
  ApiError(int status_, const std::string& message, std::string param_ = "",
           std::string type_ = "invalid_request_error", nlohmann::json code_ = nullptr);
};

/// {"error": {...}} for `e`.
nlohmann::json error_body(const ApiError& e);

/// A validated POST /v1/chat/completions body. Optional sampling fields are unset when the client
/// did not send them (the server's defaults apply).
struct ChatCompletionRequest {
  std::string model = "default";
  std::vector<ChatMessage> messages;      // after SGLang's pre-processing (spec 1.4), incl. empty system
  bool system_inserted = false;           // messages[0] is that inserted empty system message
  std::optional<std::string> assistant_prefix;  // continue_final_message text appended after the prompt
  bool thinking = false;
  ordered_json tools = ordered_json::array();   // empty when absent or tool_choice "none"
  std::optional<float> temperature, top_p, min_p;
  std::optional<int> top_k;
  std::optional<uint64_t> seed;
  std::optional<int64_t> max_tokens;  // max_completion_tokens wins over max_tokens
  std::string max_tokens_param;       // which of the two was given (for error messages)
  int n = 1;
  bool stream = false;
  bool include_usage = false;
  bool continuous_usage_stats = false;
  bool ignore_eos = false;
  std::vector<int32_t> stop_token_ids;
  /// Penalties (spec 4.2: frequency/presence in [-2, 2], repetition in (0, 2]) and SGLang's min_tokens.
  float frequency_penalty = 0.0f, presence_penalty = 0.0f, repetition_penalty = 1.0f;
  int min_tokens = 0;
  /// Log-probabilities wanted: the number of top alternatives per token (chat: logprobs true +
  /// top_logprobs, 0 when absent; completions: the integer `logprobs`). Unset: none.
  std::optional<int> logprobs;
  /// OpenAI logit_bias: (token id, bias in [-100, 100]) added to the logits before sampling.
  std::vector<std::pair<int32_t, float>> logit_bias;
  bool skip_special_tokens = true;
  bool skip_special_tokens_given = false;  // the client set it (else: false while parsers run, 1.2)
  /// tool_choice "none" (D5): no tool block, no tool parsing. "auto" (default) parses when tools exist.
  bool tool_choice_none = false;
  /// Stop strings (`stop`, a string or up to 4 strings; D17).
  std::vector<std::string> stop;
  bool separate_reasoning = true;  // SGLang extension: split reasoning_content out
  bool stream_reasoning = true;    // SGLang extension: stream reasoning deltas as they come
  /// /tokenize only (V3.1 format): append `<｜Assistant｜>` + think tag after a final user turn.
  bool add_generation_prompt = true;
  /// Test hook (--debug-inject-output): the model's text per choice (one entry is used for every
  /// choice). Empty = sample normally.
  std::vector<std::string> debug_model_text;
  /// response_format / json_schema (server/response_format.h): the grammar of the output; null = free text.
  std::shared_ptr<const JsonGrammar> grammar;
  /// Test hook (--debug-inject-output): the tokens of this text are the first generated tokens, then
  /// sampling (constrained or not) continues.
  std::string debug_forced_prefix;
};

/// Parses and validates a request body. Throws ApiError (400) naming the parameter: invalid JSON,
/// JSON nested deeper than 64, wrong types, missing/empty messages, bad role, non-text content
/// part (D8), temperature < 0, top_p outside (0, 1], top_k 0 or < -1, min_p outside [0, 1],
/// n outside [1, max_n], negative max_tokens, a bad `stop`, and fields deepserve cannot honour yet
/// (tool_choice required/named (D5); regex, ebnf, stop_regex; response_format: response_format.h); penalties outside
/// their ranges, min_tokens > max_tokens, top_logprobs outside [0, 20] or without logprobs.
/// A final assistant message with `continue_final_message: true` or DeepSeek's `prefix: true`
/// becomes `assistant_prefix` (D9).
ChatCompletionRequest parse_chat_request(const std::string& body, int max_n);

/// parse_chat_request on an already parsed body (POST /tokenize with `messages`).
ChatCompletionRequest parse_chat_request_json(const ordered_json& body, int max_n);

/// The fields chat and text completions share (spec/serving.md 4.2, 4.5): model, sampling
/// (temperature, top_p, top_k, min_p, seed, max_tokens / max_completion_tokens), n, stream,
/// stream_options, ignore_eos, skip_special_tokens, stop, stop_token_ids, logit_bias (keys token-id
/// strings, values in [-100, 100]), debug_model_text, and
/// the refusal of fields not honoured yet. Throws ApiError (400) naming the parameter.
/// `sglang_names` (the /generate `sampling_params` object): the lengths are read from SGLang's
/// `max_new_tokens` / `min_new_tokens` (max_tokens, max_completion_tokens and min_tokens are not
/// read) and every message names them so.
void parse_common_fields(const ordered_json& body, int max_n, ChatCompletionRequest& r, bool sglang_names = false);

/// `obj[key]` as an int64 (an integral float such as 5.0 is accepted). 400 naming `name`:
/// "expected an integer, got <value>" for other types and fractions, "<value> is out of range"
/// for integers beyond int64 (e.g. 1e30 or 99999999999999999999).
int64_t get_int_field(const ordered_json& obj, const std::string& key, const std::string& name);

/// nlohmann's exception text without its "[json.exception.parse_error.101] " prefix, e.g.
/// "parse error at line 1, column 2: syntax error while parsing value - invalid literal; last read: '{x'".
std::string json_error_text(const std::exception& e);

/// Parses a request body as a JSON object (400 naming the problem: invalid JSON, depth > 64, not an
/// object).
ordered_json parse_body(const std::string& body);

/// Response id "chatcmpl-" + 32 random hex digits.
std::string new_completion_id();

}  // namespace ds
