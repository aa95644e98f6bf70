// Private: byte-level BPE model (tokenizer.json "model" of type BPE) with merge ranks and a cache.
#pragma once
#include <cstdint>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "text/tokenizer_sax.h"

namespace ds {

/// Byte-level BPE: a word (raw bytes of one pre-tokenized piece) -> ids. Each byte starts as its
/// byte-level token; the adjacent pair with the lowest merge rank is merged first (leftmost on a
/// tie), as Hugging Face tokenizers' BPE::merge_word does. Thread-safe.
class BpeModel {
 public:
  /// Builds from the "model" JSON value (without vocab/merges) and the streamed vocab/merges of
  /// `parts` (consumed). Throws TokenizerError mentioning `file` when the type is not BPE, a byte
  /// token or a merge operand/result is missing from the vocab, or a field has the wrong type.
  BpeModel(const nlohmann::json& model, TokenizerJsonParts& parts, const std::string& file);

  /// Appends the ids of one word to `out`.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;
  /// Vocab entry by its tokenizer.json (byte-level) spelling.
  const std::unordered_map<std::string, int32_t>& vocab() const { return vocab_; }
  /// Raw bytes of every vocab id (index = id; empty for ids not in the vocab).
  const std::vector<std::string>& id_bytes() const { return id_bytes_; }

 private:
  void merge(std::string_view word, std::vector<int32_t>& out) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_bytes_;
  int32_t byte_id_[256];
  struct MergeInfo {
    int32_t rank;
    int32_t result;
  };
  std::unordered_map<uint64_t, MergeInfo> merges_;  // (left id << 32 | right id) -> merge
  bool ignore_merges_ = false;

  static constexpr size_t kCacheMax = 200000;
  static constexpr size_t kCacheMaxWordBytes = 256;
  mutable std::shared_mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace ds
