// Byte-level pushdown recognizer of a JsonGrammar (json_schema.h): accepts exactly the JSON texts
// the grammar allows, one byte at a time, and says when the text is complete.
// docs/constrained_decoding.md describes the states.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "text/json_schema.h"

namespace ds {

/// One parser configuration is a stack of frames, stored as a linked list in an arena (each frame
/// names its parent), so configurations share their tails and a step only appends the frames it
/// changes. Several configurations live at once where the grammar is ambiguous (anyOf, a number or
/// literal that may end or continue, which declared key a '"' starts); most of the time there is one.
///
/// Output form accepted: RFC 8259 JSON with at most 32 whitespace bytes in a row between tokens
/// (and before the value), nothing after the value; declared object keys in schema order; strings
/// must be valid UTF-8 (lead byte C2..F4 + continuation bytes; overlong/surrogate forms not
/// checked), no raw control characters; escapes \" \\ \/ \b \f \n \r \t \uXXXX.
class JsonRecognizer {
 public:
  /// Arena frame. kind: Doc (the whole text), Object, Array, String, Number, Literal.
  struct Frame {
    int32_t parent = -1;
    int32_t node = -1;
    uint8_t kind = 0, state = 0;
    int32_t a = 0, b = 0, c = 0;
  };
  /// Most live configurations kept per step (extra ones of a pathological anyOf are dropped).
  static constexpr size_t kMaxConfigs = 64;
  /// Most whitespace bytes in a row.
  static constexpr int kMaxWhitespace = 32;

  explicit JsonRecognizer(std::shared_ptr<const JsonGrammar> grammar);

  /// Feeds bytes. Returns false (state unchanged) when some byte is not allowed.
  bool feed(std::string_view bytes);
  /// True when the text so far is a complete value of the grammar (EOS may follow).
  bool can_end() const { return can_end(configs_); }
  /// No byte was fed yet.
  bool at_start() const { return fed_ == 0; }

  // Low-level interface for the token mask (token_mask.cpp): configuration sets are arena indices.
  const std::vector<int32_t>& configs() const { return configs_; }
  /// Appends to `out` the configurations reached from configuration `top` by byte `x` (none when x is
  /// not allowed). May append frames to the arena.
  void step(int32_t top, uint8_t x, std::vector<int32_t>& out);
  /// True when any configuration in `set` is complete.
  bool can_end(std::span<const int32_t> set) const;
  size_t arena_size() const { return arena_.size(); }
  /// Drops frames appended after arena_size() returned `mark` (they must be unreferenced).
  void rollback(size_t mark) { arena_.resize(mark); }
  /// A string identifying the current configurations by content (for the mask cache).
  std::string state_key() const;

 private:
  int32_t push(const Frame& f);
  int32_t with(int32_t idx, uint8_t state, int32_t c);
  void start_value(int node, int32_t parent, uint8_t x, std::vector<int32_t>& out);
  int32_t complete(int32_t parent);
  void step_object(int32_t idx, uint8_t x, std::vector<int32_t>& out);
  void step_array(int32_t idx, uint8_t x, std::vector<int32_t>& out);
  void step_string(int32_t idx, uint8_t x, std::vector<int32_t>& out);
  void step_number(int32_t idx, uint8_t x, std::vector<int32_t>& out);
  void step_literal(int32_t idx, uint8_t x, std::vector<int32_t>& out);
  bool completable(const Frame& f) const;
  void compact();

  std::shared_ptr<const JsonGrammar> g_;
  std::vector<Frame> arena_;
  std::vector<int32_t> configs_;
  size_t fed_ = 0;
};

}  // namespace ds
