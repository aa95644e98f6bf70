// Stop strings over streamed content (D17; spec/serving.md 4.2 `stop`), plus the "hold back a
// partial marker" helper the reasoning and tool-call parsers share. docs/parsers.md.
#pragma once
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ds {

/// Length in bytes of the longest suffix of `text` that is a proper, non-empty prefix of one of
/// `patterns` (empty patterns are ignored). This is the part of a stream buffer that must be held
/// back because it may still grow into a pattern; 0 when nothing needs holding.
std::size_t partial_match_suffix(std::string_view text, std::span<const std::string_view> patterns);

/// Result of one StopMatcher::feed / finish call.
struct StopOutput {
  std::string text;                   ///< content that may be emitted now (never part of a stop string)
  std::optional<std::size_t> stopped; ///< index into the stop list of the string that matched (once)
};

/// Matches stop strings over a sequence of content deltas (D17: content only, never reasoning).
/// - The stop string itself is never emitted (unless `include_stop` is set, as vLLM's
///   include_stop_str_in_output); nothing after it is emitted either.
/// - Matches are found across delta boundaries: only the longest suffix that is a prefix of some
///   stop string is held back; it is released as soon as it is ruled out, or by finish().
/// - When several stop strings occur, the one that is complete first wins (smallest end offset;
///   at equal ends the longer one), which is what token-by-token generation would see; so every
///   chunking of the same text gives the same result.
/// One instance per choice. Byte-wise matching (UTF-8 stop strings match UTF-8 text exactly).
class StopMatcher {
 public:
  /// `stops`: the request's stop strings; empty strings are ignored; an empty list matches nothing.
  explicit StopMatcher(std::vector<std::string> stops, bool include_stop = false);

  /// Feeds one content delta; returns what can be emitted now. After a match, returns empty
  /// output for every later call.
  StopOutput feed(std::string_view delta);
  /// End of stream: releases the held-back tail (no match can complete any more).
  StopOutput finish();

  /// The content was interrupted by something that is not content (a tool call): the held tail
  /// can no longer complete a stop string and is returned; matching continues afterwards.
  StopOutput interrupt();

  /// True once a stop string has matched (the caller then ends generation with finish_reason
  /// "stop" and `matched_stop` = the string).
  bool stopped() const { return matched_.has_value(); }
  /// Index into the stop list of the matched string, if any.
  std::optional<std::size_t> matched_index() const { return matched_; }
  /// The matched stop string ("" when none matched).
  const std::string& matched_string() const;

 private:
  std::vector<std::string> stops_;
  std::vector<std::string_view> views_;
  bool include_stop_;
  std::string held_;
  std::optional<std::size_t> matched_;
  bool done_ = false;
};

}  // namespace ds
