// OpenAI chat-completions protocol: request parsing/validation and response JSON (spec/serving.md
// 4.2-4.4, 4.6; D8, D18, D19). All JSON of the server lives here and in chat_service.cpp.
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "text/chat.h"

namespace ds {

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
  bool skip_special_tokens = true;
};

/// Parses and validates a request body. Throws ApiError (400) naming the parameter: invalid JSON,
/// JSON nested deeper than 64, wrong types, missing/empty messages, bad role, non-text content
/// part (D8), temperature < 0, top_p outside (0, 1], top_k 0 or < -1, min_p outside [0, 1],
/// n outside [1, max_n], negative max_tokens, and fields deepserve cannot honour yet (stop strings,
/// logprobs, penalties, logit_bias, response_format other than text, tool_choice required/named (D5)).
ChatCompletionRequest parse_chat_request(const std::string& body, int max_n);

/// Response id "chatcmpl-" + 32 random hex digits.
std::string new_completion_id();

}  // namespace ds
