// Chat prompt rendering for the server: encoder choice (D7), pieces -> ids, and the reasoning state
// the prompt leaves the model in (spec/serving.md 1.1, 1.4, 1.7, 2).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/openai_protocol.h"
#include "text/tokenizer.h"

namespace ds {

/// Which encoder renders chat prompts (D7): DeepSeek's V3.2 encoder, or the V3.1 format (V3.2-Exp).
enum class PromptFormat { Dsv32, V31 };

/// A rendered prompt.
struct RenderedPrompt {
  std::vector<int32_t> ids;
  std::string text;  // the encoder's string (pieces concatenated)
  /// True when the prompt ends inside reasoning: the last <think>/</think> the encoder wrote (or the
  /// continue_final_message text holds) is <think>. Reasoning parsers start in this state (spec 2).
  bool opens_reasoning = false;
};

/// Renders and tokenizes `req` with `format`. EncodeError -> ApiError 400 (param "messages");
/// a tokenizer that lacks a marker -> ApiError 500.
RenderedPrompt render_prompt(const Tokenizer& tok, PromptFormat format, const ChatCompletionRequest& req);

/// Tokens of model text with the tokenizer's added tokens recognized (unlike Tokenizer::encode, D10):
/// every DeepSeek marker string (BOS/EOS, role, think, V3.1 tool markers, `｜DSML｜`, ...) the
/// tokenizer knows becomes its single id; the rest is BPE text. Used by the test-only output
/// injection (--debug-inject-output).
std::vector<int32_t> encode_with_markers(const Tokenizer& tok, std::string_view text);

}  // namespace ds
