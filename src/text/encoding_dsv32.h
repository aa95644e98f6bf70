// DeepSeek-V3.2 prompt encoder (DeepSeek's encoding_dsv32.py semantics; spec/serving.md 1.3-1.4).
#pragma once
#include <string>
#include <vector>

#include "text/chat.h"
#include "text/tokenizer.h"

namespace ds {

/// Options of one rendering.
struct Dsv32EncodeOptions {
  bool thinking = false;          // "thinking" vs "chat" mode
  bool drop_thinking = true;      // drop reasoning of assistant turns before the last user turn
  bool add_bos = true;            // exactly one BOS, written here (D6)
  /// OpenAI `tools` array (each {"type":"function","function":{...}}); rendered in the system part.
  ordered_json tools = ordered_json::array();
};

/// Renders `messages` as DeepSeek's encoder does, as pieces: special tokens (BOS, EOS, <｜User｜>,
/// <｜Assistant｜>, <think>, </think>) are special pieces, everything else text pieces (so user text
/// that looks like a special token stays text, D10). Throws EncodeError with the encoder's message.
std::vector<PromptPiece> encode_dsv32(const std::vector<ChatMessage>& messages, const Dsv32EncodeOptions& opts);

/// Concatenation of the pieces' text (what DeepSeek's Python encoder returns as a string).
std::string pieces_to_string(const std::vector<PromptPiece>& pieces);

}  // namespace ds
