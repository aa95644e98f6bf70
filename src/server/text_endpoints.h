// Text-layer helper endpoints in SGLang's / vLLM's shapes (spec/serving.md 2, 3.2, 4.1):
// POST /tokenize, /detokenize (also under /v1/), /separate_reasoning, /parse_function_call.
// Each takes the request body and returns the JSON response; ApiError (400) on bad input.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "server/chat_service.h"

namespace ds {

/// /tokenize: `prompt` (string; BOS only when add_special_tokens (default true) and the tokenizer's
/// add_bos_token, D6; special-token strings stay text, D10) or `messages` (rendered exactly as
/// /v1/chat/completions renders them, with tools, tool_choice, chat_template_kwargs,
/// continue_final_message and add_generation_prompt (V3.1 format only)). Returns {"tokens",
/// "count", "max_model_len"}.
nlohmann::json tokenize_endpoint(const ServeContext& ctx, const std::string& body);

/// /detokenize: `tokens` (ids in [0, vocab)), `skip_special_tokens` (default true) -> {"text"}.
nlohmann::json detokenize_endpoint(const ServeContext& ctx, const std::string& body);

/// /separate_reasoning: `text`, `reasoning_parser` (default: the server's, else "deepseek-v3"; only
/// that one exists), `chat_template_kwargs.thinking` (true: the prompt opened reasoning) ->
/// {"reasoning_text", "text"}.
nlohmann::json separate_reasoning_endpoint(const ServeContext& ctx, const std::string& body);

/// /parse_function_call: `text`, `tool_call_parser` ("deepseekv32" | "deepseekv31"; default the
/// server's), `tools` (OpenAI tools; calls to other names are dropped) -> {"normal_text", "calls":
/// [{"tool_index" (index in `tools`, -1 if none given), "name", "parameters" (JSON string)}]}.
nlohmann::json parse_function_call_endpoint(const ServeContext& ctx, const std::string& body);

}  // namespace ds
