// Reasoning parser `deepseek-v3` (spec/serving.md 2 and Appendix B; D13, D14): splits decoded model
// text (special tokens kept) into reasoning_content and content, streaming or not. docs/parsers.md.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace ds {

/// One step of output: reasoning text first, then content text (never interleaved the other way:
/// once content has started, reasoning never resumes). Either may be empty.
struct ReasoningDelta {
  std::string reasoning;
  std::string content;
};

/// Options of one ReasoningParser.
struct ReasoningParserOptions {
  /// True when the generation prompt ended inside reasoning (it ended with `<think>`: thinking mode,
  /// chat_template_kwargs.thinking=true, or a continued message whose text opened `<think>`).
  /// Use reasoning_starts_open() to derive it from the rendered prompt.
  bool start_in_reasoning = false;
  /// D13: tool-call start markers that end reasoning implicitly. The marker (with a "\n\n" directly
  /// before it) goes to content so the tool parser sees the block. Pass an empty list when tool
  /// parsing is off (tool_choice "none", no tools): markers then stay reasoning text.
  std::vector<std::string> tool_start_markers = default_tool_start_markers();

  /// `<｜DSML｜function_calls` (V3.2) and `<｜tool▁calls▁begin｜>` (V3.1 format).
  static std::vector<std::string> default_tool_start_markers();
};

/// True when the rendered prompt leaves the model inside reasoning: its last `<think>` comes after
/// its last `</think>` (so "...<｜Assistant｜><think>" and "...</function_results>\n\n<think>" are
/// true, "...<｜Assistant｜></think>" is false). The state follows what the prompt actually ended
/// with, not the request flag (case rsn-after-tool-result-turn).
bool reasoning_starts_open(std::string_view prompt);

/// Streaming state machine of the `deepseek-v3` reasoning parser. One instance per choice (n > 1
/// needs n instances). Non-streaming use: feed() the whole text, then finish().
///
/// Rules (docs/parsers.md has the table):
/// - Reasoning mode (start_in_reasoning): one `<think>` at the very start of the output (echoed by
///   the model) is dropped. Text up to the first `</think>` is reasoning; the tag is dropped; the
///   rest is content, passed through unchanged (later `<think>`/`</think>` are text). Reasoning with
///   no `</think>` stays reasoning to the end (truncation). A D13 tool marker before `</think>` ends
///   reasoning: it (and a "\n\n" right before it) and everything after go to content.
/// - Chat mode: everything is content; a `</think>` at the very start is dropped (D14); a `<think>`
///   at the very start means the model opened reasoning itself (SGLang's non-forced behaviour) and
///   switches to reasoning mode.
/// - A trailing part of the buffer that may still grow into `</think>`, `<think>` (at start only),
///   or a tool marker is held back until resolved; finish() releases it as ordinary text. So every
///   chunking of the same text gives the same concatenated reasoning and content.
class ReasoningParser {
 public:
  explicit ReasoningParser(ReasoningParserOptions opts = {});

  /// Feeds one decoded text delta; returns the reasoning/content that is now final.
  ReasoningDelta feed(std::string_view delta);
  /// End of output: releases any held-back text (into the current mode).
  ReasoningDelta finish();

  /// True while the parser is in reasoning mode.
  bool in_reasoning() const { return in_reasoning_; }
  /// True once reasoning was ended by `</think>` or a D13 marker (false if it never started).
  bool reasoning_ended() const { return ended_; }

 private:
  void step(ReasoningDelta& out);

  ReasoningParserOptions opts_;
  std::vector<std::string> patterns_;  // what may be held back while in reasoning
  bool in_reasoning_;
  bool at_start_ = true;  // nothing of the output consumed yet
  bool ended_ = false;
  std::string pend_;
};

/// Non-streaming convenience: the whole output split at once (same result as streaming).
ReasoningDelta separate_reasoning(std::string_view text, const ReasoningParserOptions& opts);

}  // namespace ds
