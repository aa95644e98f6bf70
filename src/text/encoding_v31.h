// V3.1-format prompt encoder for DeepSeek-V3.2-Exp / V3.1 (spec/serving.md 1.7; D7). Semantics of
// DeepSeek's official single-line Jinja chat template (tokenizer_config.json of DeepSeek-V3.1, which
// V3.2-Exp reuses) plus the tool description DeepSeek's model card puts into the system part; no
// whitespace of SGLang's indented example templates. docs/encoding.md lists the rules and sources.
#pragma once
#include <string_view>
#include <vector>

#include "text/chat.h"
#include "text/tokenizer.h"

namespace ds {

/// The V3.1 tool-call markers (single added tokens 128806..128814 of the DeepSeek-V3 vocabulary,
/// spec/serving.md 1.2; U+FF5C and U+2581).
namespace v31 {
inline constexpr std::string_view kToolCallsBegin = "<｜tool▁calls▁begin｜>";
inline constexpr std::string_view kToolCallsEnd = "<｜tool▁calls▁end｜>";
inline constexpr std::string_view kToolCallBegin = "<｜tool▁call▁begin｜>";
inline constexpr std::string_view kToolCallEnd = "<｜tool▁call▁end｜>";
inline constexpr std::string_view kToolSep = "<｜tool▁sep｜>";
inline constexpr std::string_view kToolOutputBegin = "<｜tool▁output▁begin｜>";
inline constexpr std::string_view kToolOutputEnd = "<｜tool▁output▁end｜>";
}  // namespace v31

/// Options of one V3.1-format rendering.
struct V31EncodeOptions {
  bool thinking = false;               // generation prompt opens <think> (else </think>)
  bool add_generation_prompt = true;   // `<｜Assistant｜>` + <think>|</think> after a final user turn
  bool add_bos = true;                 // exactly one BOS, written here (D6)
  /// OpenAI `tools` array ({"type":"function","function":{name, description, parameters}}); when
  /// non-empty the model card's tool description follows the system prompt after "\n\n".
  /// Empty = no tool block (D5 tool_choice none).
  ordered_json tools = ordered_json::array();
  /// continue_final_message (D9): text appended after the generation prompt (or right after a
  /// tool output), with no EOS. Empty = none.
  std::string assistant_prefix;
  bool has_assistant_prefix = false;
};

/// Renders `messages` in the V3.1 format as pieces: BOS, EOS, <｜User｜>, <｜Assistant｜>, <think>,
/// </think> and the v31:: markers the encoder writes are special pieces; message text is text (D10).
/// Roles: system and developer are concatenated (with "\n\n") into the system part; user, assistant
/// (content, tool_calls; reasoning_content is never rendered, history content loses everything up
/// to its first </think>), tool. Throws EncodeError for an unknown role or a tool whose `function`
/// has no string `name`.
std::vector<PromptPiece> encode_v31(const std::vector<ChatMessage>& messages, const V31EncodeOptions& opts);

/// The tool description block for `tools` (without the leading "\n\n"), as text; exposed for tests.
std::string v31_tool_description(const ordered_json& tools);

}  // namespace ds
