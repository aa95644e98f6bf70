// Tokenizer: encode / decode / lookups of the byte-level BPE tokenizer (see text/tokenizer.h).
#include "text/tokenizer.h"

#include "text/tokenizer_bytes.h"
#include "text/tokenizer_impl.h"

namespace ds {

std::vector<int32_t> BpeTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  if (text.empty()) return ids;
  // Invalid UTF-8 cannot come through JSON, but a raw caller could pass it: tokenize the lossy
  // decoding (U+FFFD per invalid subpart) so the regex engine always sees valid UTF-8.
  std::string fixed;
  if (!tokbytes::utf8_valid(text)) {
    fixed = tokbytes::utf8_lossy(text, true);
    text = fixed;
  }
  ids.reserve(text.size() / 3 + 4);
  std::string prefixed;
  for (const Span& s : pretok_->split(text)) {
    std::string_view piece = text.substr(s.begin, s.end - s.begin);
    if (pretok_->add_prefix_space() && piece.front() != ' ') {
      prefixed.clear();
      prefixed.push_back(' ');
      prefixed += piece;
      piece = prefixed;
    }
    bpe_->encode_word(piece, ids);
  }
  return ids;
}

std::string BpeTokenizer::token_bytes(int32_t id) const {
  auto it = added_by_id_.find(id);
  if (it != added_by_id_.end()) return it->second.content;
  const auto& bytes = bpe_->id_bytes();
  if (id >= 0 && static_cast<size_t>(id) < bytes.size()) return bytes[static_cast<size_t>(id)];
  return {};
}

std::string BpeTokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::string raw;
  raw.reserve(ids.size() * 4);
  for (int32_t id : ids) {
    if (skip_special_tokens && is_special(id)) continue;
    raw += token_bytes(id);
  }
  return tokbytes::utf8_lossy(raw, true);
}

std::optional<int32_t> BpeTokenizer::token_to_id(std::string_view token) const {
  auto a = added_by_content_.find(std::string(token));
  if (a != added_by_content_.end()) return a->second;
  auto v = bpe_->vocab().find(std::string(token));
  if (v != bpe_->vocab().end()) return v->second;
  return std::nullopt;
}

bool BpeTokenizer::is_special(int32_t id) const {
  auto it = added_by_id_.find(id);
  return it != added_by_id_.end() && it->second.special;
}

std::vector<int32_t> Tokenizer::encode_pieces(std::span<const PromptPiece> pieces) const {
  std::vector<int32_t> ids;
  for (const PromptPiece& p : pieces) {
    if (!p.special) {
      std::vector<int32_t> t = encode(p.text);
      ids.insert(ids.end(), t.begin(), t.end());
      continue;
    }
    // A special piece is an added token's content, or (rarely) the raw text of one vocab token.
    std::optional<int32_t> id = token_to_id(p.text);
    if (!id) id = token_to_id(tokbytes::bytes_to_byte_level(p.text));
    if (!id) throw TokenizerError("tokenizer: special prompt piece '" + p.text + "' is not a token of this tokenizer");
    ids.push_back(*id);
  }
  return ids;
}

}  // namespace ds
