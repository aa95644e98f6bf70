// Private: the concrete Tokenizer built from a tokenizer.json (byte-level BPE + added tokens).
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "text/tokenizer.h"
#include "text/tokenizer_bpe.h"
#include "text/tokenizer_pretok.h"
#include "text/tokenizer_sax.h"

namespace ds {

/// One entry of tokenizer.json "added_tokens".
struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
};

/// Options of tokenizer_config.json that the tokenizer uses.
struct TokenizerConfig {
  bool add_bos_token = false;
  std::string bos_token;  // empty = not given
  std::string eos_token;
};

/// Reads add_bos_token / bos_token / eos_token from a tokenizer_config.json; a missing file gives
/// the defaults (add_bos_token false). Throws TokenizerError naming the file if it is not JSON.
TokenizerConfig read_tokenizer_config(const std::string& path);

class BpeTokenizer final : public Tokenizer {
 public:
  /// Builds from a parsed tokenizer.json (vocab/merges are consumed; `file` names it in messages).
  BpeTokenizer(TokenizerJsonParts& parts, const std::string& file, const TokenizerConfig& cfg);

  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override;
  std::string token_bytes(int32_t id) const override;
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  bool is_special(int32_t id) const override;
  bool is_added(int32_t id) const override { return added_by_id_.count(id) > 0; }
  int32_t vocab_size() const override { return vocab_size_; }
  bool add_bos_token() const override { return add_bos_; }
  int32_t bos_id() const override { return bos_id_; }
  int32_t eos_id() const override { return eos_id_; }

 private:
  std::unique_ptr<PreTokenizer> pretok_;
  std::unique_ptr<BpeModel> bpe_;
  std::unordered_map<std::string, int32_t> added_by_content_;
  std::unordered_map<int32_t, AddedToken> added_by_id_;
  int32_t vocab_size_ = 0;
  bool add_bos_ = false;
  int32_t bos_id_ = -1;
  int32_t eos_id_ = -1;
};

/// Applies the D11 table (tokenizer_added.cpp) to a parsed tokenizer.json in place: each row's id
/// gets the row's content/special flag (replacing a placeholder or appended). TokenizerError naming
/// `file` if it is not a tokenizer.json or a row's content already exists under another id.
void apply_v32_added_tokens_json(nlohmann::json& j, const std::string& file);

/// Loads a tokenizer.json file with an explicit config (used by load() and for_model_dir()).
std::shared_ptr<const Tokenizer> load_tokenizer(const std::string& json_path, bool apply_v32_table,
                                                const TokenizerConfig& cfg);

}  // namespace ds
