// Incremental detokenizer: never emits a partial UTF-8 character (see text/tokenizer.h).
#include "text/tokenizer.h"
#include "text/tokenizer_bytes.h"

namespace ds {

IncrementalDetokenizer::IncrementalDetokenizer(std::shared_ptr<const Tokenizer> tok, bool skip_special_tokens)
    : tok_(std::move(tok)), skip_special_(skip_special_tokens) {
  if (!tok_) throw TokenizerError("IncrementalDetokenizer: null tokenizer");
}

std::string IncrementalDetokenizer::push(int32_t id) {
  if (skip_special_ && tok_->is_special(id)) return {};
  pending_ += tok_->token_bytes(id);
  size_t consumed = 0;
  std::string out = tokbytes::utf8_lossy(pending_, /*final=*/false, &consumed);
  pending_.erase(0, consumed);
  return out;
}

std::string IncrementalDetokenizer::flush() {
  std::string out = tokbytes::utf8_lossy(pending_, /*final=*/true);
  pending_.clear();
  return out;
}

}  // namespace ds
