// DeepSeek-V3.2 prompt encoder (DeepSeek's encoding_dsv32.py semantics; spec/serving.md 1.3-1.4).
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "text/chat.h"
#include "text/tokenizer.h"

namespace ds {

/// The exact strings of DeepSeek-V3.2's encoder markers (spec/serving.md 1.2-1.3; U+FF5C and U+2581).
namespace dsv32 {
inline constexpr std::string_view kBos = "<｜begin▁of▁sentence｜>";
inline constexpr std::string_view kEos = "<｜end▁of▁sentence｜>";
inline constexpr std::string_view kUser = "<｜User｜>";
inline constexpr std::string_view kAssistant = "<｜Assistant｜>";
inline constexpr std::string_view kThinkStart = "<think>";
inline constexpr std::string_view kThinkEnd = "</think>";
inline constexpr std::string_view kDsml = "｜DSML｜";
}  // namespace dsv32

/// Options of one rendering.
struct Dsv32EncodeOptions {
  bool thinking = false;          // "thinking" vs "chat" mode
  bool drop_thinking = true;      // drop reasoning of assistant turns before the last user turn
  bool add_bos = true;            // exactly one BOS, written here (D6)
  /// SGLang's step (spec/serving.md 1.4 item 5): when messages[0] is not a system message, an empty
  /// system message is put in front (it renders as "" but hosts the tool block). Error messages then
  /// count message indices in that extended list, as SGLang's do.
  bool ensure_system = true;
  /// OpenAI `tools` array (each {"type":"function","function":{...}}), attached to messages[0] as
  /// SGLang does: a system message renders the tool block after its content, a developer message
  /// inside its content, any other role ignores it. Empty (or null) = no tools (D5 tool_choice none).
  ordered_json tools = ordered_json::array();
};

/// Renders `messages` as DeepSeek's encoder does, as pieces: special tokens (BOS, EOS, <｜User｜>,
/// <｜Assistant｜>, <think>, </think>) are special pieces, everything else text pieces (so user text
/// that looks like a special token stays text, D10). The encoder's own <think>/</think> inside the
/// tool block are special pieces too; DSML markers are text (D11: the tokenizer decides). Adjacent
/// text is merged into one piece; no piece is empty. Throws EncodeError with the official encoder's
/// message (its Python repr of the message included, see docs/encoding.md); a tool call whose
/// `arguments` is not an object throws SGLang's "Assistant tool call function.arguments must be a
/// JSON object.".
std::vector<PromptPiece> encode_dsv32(const std::vector<ChatMessage>& messages, const Dsv32EncodeOptions& opts);

/// Concatenation of the pieces' text (what DeepSeek's Python encoder returns as a string).
std::string pieces_to_string(const std::vector<PromptPiece>& pieces);

}  // namespace ds
