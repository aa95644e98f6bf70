// Token masks for constrained decoding: a trie over the byte strings of the vocabulary, the mask of
// the tokens a JsonRecognizer can take next, and the per-request constraint the engine applies
// before sampling. docs/constrained_decoding.md.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "text/json_recognizer.h"

namespace ds {

class Tokenizer;

/// What the engine's sampling step asks of a constraint (engine/scheduler.cpp). One instance per
/// generated sequence (each choice of n); used by the engine thread only.
class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  /// Sets the logits of the tokens not allowed next to -inf (FP32, one entry per model vocabulary
  /// id; ids beyond the tokenizer are never allowed). Returns false when only end tokens are
  /// allowed (the output is complete), true otherwise (also when the constraint is not active).
  virtual bool apply(std::span<float> logits) = 0;
  /// Advances the state by the token that was chosen (sampled or forced).
  virtual void accept(int32_t token) = 0;
};

/// The vocabulary as a byte trie. Token ids whose text is not BPE text (added/special tokens) and
/// empty tokens are left out: they are never allowed inside the constrained output.
class TokenTrie {
 public:
  struct Node {
    int32_t first_child = -1, next_sibling = -1;
    int32_t tok_begin = 0, tok_end = 0;  // ids ending here: ids()[tok_begin, tok_end)
    uint8_t byte = 0;
  };
  /// `token_bytes[id]`: the raw bytes of id; `included[id]` false leaves it out.
  TokenTrie(std::vector<std::string> token_bytes, const std::vector<bool>& included);
  /// The trie of a tokenizer (added tokens left out), built once per tokenizer and cached
  /// (thread-safe).
  static std::shared_ptr<const TokenTrie> for_tokenizer(const Tokenizer& tok);

  const std::vector<Node>& nodes() const { return nodes_; }  // nodes()[0] is the root
  const std::vector<int32_t>& ids() const { return ids_; }
  int32_t vocab_size() const { return int32_t(bytes_.size()); }
  const std::string& bytes(int32_t id) const { return bytes_[size_t(id)]; }
  bool included(int32_t id) const { return id >= 0 && id < vocab_size() && included_[size_t(id)]; }

 private:
  std::vector<Node> nodes_;
  std::vector<int32_t> ids_;
  std::vector<std::string> bytes_;
  std::vector<bool> included_;
};

/// Bitset over token ids: bit id set = allowed. `words` = ceil(vocab / 64).
using TokenBitmask = std::vector<uint64_t>;

/// The mask of trie tokens `rec` accepts whole from its current state: a depth-first walk of the
/// trie stepping the recognizer's configurations byte by byte and pruning every subtree whose
/// prefix is rejected. End tokens are not included (see JsonRecognizer::can_end).
TokenBitmask compute_token_mask(JsonRecognizer& rec, const TokenTrie& trie);

/// response_format as a TokenConstraint: JSON of `grammar` after `think_end_id` (the reasoning
/// block stays free, as SGLang's reasoning-aware grammar; -1 = from the first token), then only
/// `end_ids` (EOS). Masks are cached per recognizer state (up to 64 states per instance).
/// A token the recognizer rejects (only possible for forced tokens) switches the constraint off.
/// A state no trie token can continue (a vocabulary without single-byte tokens) allows the end ids.
class JsonConstraint final : public TokenConstraint {
 public:
  JsonConstraint(std::shared_ptr<const JsonGrammar> grammar, std::shared_ptr<const TokenTrie> trie,
                 std::vector<int32_t> end_ids, int32_t think_end_id);
  bool apply(std::span<float> logits) override;
  void accept(int32_t token) override;
  bool active() const { return active_; }
  bool failed() const { return failed_; }
  const JsonRecognizer& recognizer() const { return rec_; }

 private:
  std::shared_ptr<const TokenTrie> trie_;
  JsonRecognizer rec_;
  std::vector<int32_t> end_ids_;
  int32_t think_end_id_;
  bool active_, failed_ = false;
  std::unordered_map<std::string, TokenBitmask> cache_;
};

}  // namespace ds
