// Per-choice output pipeline: reasoning parser -> tool-call parser -> stop strings (spec/serving.md
// 2, 3.4; D13-D17). The one object the chat path needs per choice. docs/parsers.md.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "text/reasoning_parser.h"
#include "text/stop_matcher.h"
#include "text/tool_parser.h"

namespace ds {

/// Options of one choice's output parsing.
struct ChoiceOutputOptions {
  /// Run the `deepseek-v3` reasoning parser (false: request separate_reasoning=false or no
  /// --reasoning-parser; then all text is content and `</think>` stays in it).
  bool separate_reasoning = true;
  /// Whether the prompt ended inside reasoning: reasoning_starts_open(prompt).
  bool start_in_reasoning = false;
  /// "deepseekv32", "deepseekv31", or "" for no tool parsing (no tools, tool_choice "none", or no
  /// --tool-call-parser). D13 markers follow this choice: only the active parser's opener ends
  /// reasoning implicitly.
  std::string tool_parser;
  ToolParserOptions tools;
  /// Request `stop` strings (D17: matched on content only) and include_stop_str_in_output.
  std::vector<std::string> stop;
  bool include_stop = false;
};

/// What one feed/finish produced, in order: reasoning text (always before the events), then content
/// and tool-call events (ToolEvent, after stop matching).
struct ChoiceDelta {
  std::string reasoning;
  std::vector<ToolEvent> events;
  bool stopped = false;  ///< a stop string matched now: end generation (finish_reason "stop")
};

/// One choice's output parser (one instance per choice index, n > 1 needs n). Streaming: feed()
/// each decoded text delta (special tokens kept), then finish() once. Non-streaming: the same, and
/// fold the events with collect_tool_events(). Stop strings see only content outside tool blocks;
/// a tool call between two content pieces breaks a partial stop match.
class ChoiceOutputParser {
 public:
  /// Throws ToolParserError for an unknown tool parser name.
  explicit ChoiceOutputParser(ChoiceOutputOptions opts);

  ChoiceDelta feed(std::string_view text);
  ChoiceDelta finish();

  /// The finish_reason to report given the engine's ("stop", "length", "abort"): "stop" becomes
  /// "tool_calls" when calls were emitted and no block was malformed (D15), unless a stop string
  /// ended the output.
  std::string finish_reason(std::string_view engine_reason) const;
  /// The stop string that matched, if any (SGLang's matched_stop).
  std::optional<std::string> matched_stop() const;
  /// The tool parser (null when tool parsing is off).
  const ToolParser* tool_parser() const { return tools_.get(); }

 private:
  void route(std::string content, ChoiceDelta& out, bool final);
  void stop_filter(std::vector<ToolEvent> events, ChoiceDelta& out, bool final);

  ChoiceOutputOptions opts_;
  std::unique_ptr<ReasoningParser> reasoning_;
  std::unique_ptr<ToolParser> tools_;
  std::unique_ptr<StopMatcher> stops_;
  bool done_ = false;  // a stop string matched: nothing more is emitted
};

}  // namespace ds
