// Tool-call parsers (spec/serving.md 3; D11, D15, D16): the common streaming interface of
// `deepseekv32` (DSML, tool_parser_v32.h) and `deepseekv31` (tool_parser_v31.h). docs/parsers.md.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "text/chat.h"

namespace ds {

/// One output event of a tool parser, in stream order.
/// - Content: `text` is normal content (delta.content).
/// - CallStart: a new call `index` (0, 1, ... per choice) with its `id` ("call_" + 24 hex) and
///   `name`; its arguments are "" so far (the first delta.tool_calls item of the call).
/// - CallArguments: `text` is the next fragment of call `index`'s arguments JSON (delta.tool_calls
///   item with id/name null). Concatenating the fragments of one index gives the arguments string.
struct ToolEvent {
  enum class Kind { Content, CallStart, CallArguments };
  Kind kind = Kind::Content;
  int index = -1;    ///< call index (CallStart/CallArguments), -1 for Content
  std::string id;    ///< CallStart only
  std::string name;  ///< CallStart only
  std::string text;  ///< Content text or arguments fragment
};

/// One complete call (the non-streaming view).
struct ParsedToolCall {
  int index = 0;
  std::string id;
  std::string name;
  std::string arguments;  ///< JSON object text, printed as json.dumps(obj, ensure_ascii=False)
};

/// Options shared by both parsers.
struct ToolParserOptions {
  /// Names of the request's tools. Non-empty: calls to other names are dropped (SGLang), counted in
  /// ToolParser::dropped_calls(). Empty: every name is accepted.
  std::vector<std::string> tool_names;
  /// Call id generator; default: "call_" + 24 random lower-case hex digits (make_tool_call_id).
  /// Tests inject a deterministic one.
  std::function<std::string()> make_id;
};

/// "call_" + 24 random lower-case hex digits (like SGLang's "call_" + uuid4().hex[:24]).
std::string make_tool_call_id();

/// Streaming tool-call parser. One instance per choice; fed the content produced by the
/// reasoning parser (after reasoning), in order. Non-streaming use: parse_all().
///
/// Buffering (D16): normal text is emitted at once except a trailing part that may still grow into
/// the block opener (for DSML also "\n\n" + opener); that part is released as soon as it is ruled
/// out, or by finish(). A tool block is held whole until its closer arrives; then it is parsed:
/// if valid, its calls are emitted (CallStart, then one CallArguments with the whole arguments
/// JSON, per call); if malformed (D15), its raw text (including a dropped "\n\n") becomes Content
/// and malformed() turns true. A block still open at finish() is truncated: raw text -> Content,
/// malformed() true. Text after a block is normal text again. Hence every chunking of the same text
/// gives the same events once concatenated (content and calls), and the same as non-streaming.
class ToolParser {
 public:
  explicit ToolParser(ToolParserOptions opts);
  virtual ~ToolParser() = default;
  ToolParser(const ToolParser&) = delete;
  ToolParser& operator=(const ToolParser&) = delete;

  /// Feeds one content delta; returns the events that are now final.
  std::vector<ToolEvent> feed(std::string_view delta);
  /// End of output: releases held text; a block still open is treated as truncated (D15).
  std::vector<ToolEvent> finish();

  /// Number of calls emitted so far.
  int calls_emitted() const { return next_index_; }
  /// Calls dropped because their name is not in ToolParserOptions::tool_names.
  int dropped_calls() const { return dropped_; }
  /// True when some block was malformed or truncated (D15).
  bool malformed() const { return malformed_; }
  /// True when finish_reason "stop" must become "tool_calls": at least one call was emitted and no
  /// block was malformed (D15). The caller keeps "length"/"abort" as they are.
  bool finish_as_tool_calls() const { return next_index_ > 0 && !malformed_; }

  /// Parser name as given to --tool-call-parser ("deepseekv32" / "deepseekv31").
  virtual std::string_view name() const = 0;

 protected:
  /// One call decoded from a block: function name and arguments as a JSON object.
  struct RawCall {
    std::string name;
    ordered_json arguments;
  };
  /// Block opener, e.g. "<｜DSML｜function_calls>".
  virtual std::string_view block_open() const = 0;
  /// Block closer, e.g. "</｜DSML｜function_calls>".
  virtual std::string_view block_close() const = 0;
  /// Text directly before the opener that belongs to the block (dropped from content), or "".
  virtual std::string_view block_gap() const = 0;
  /// Decodes the text strictly between opener and closer; std::nullopt if malformed.
  virtual std::optional<std::vector<RawCall>> parse_block(std::string_view body) const = 0;

 private:
  void drain(std::vector<ToolEvent>& out);
  void emit_content(std::vector<ToolEvent>& out, std::string text);

  ToolParserOptions opts_;
  std::string pend_;          // normal state: unreleased text; block state: block text after the opener
  bool in_block_ = false;
  std::string dropped_gap_;   // the "\n\n" removed before the current block
  std::size_t scan_from_ = 0; // block state: where the closer search resumes (long blocks stay O(n))
  int next_index_ = 0;
  int dropped_ = 0;
  bool malformed_ = false;
};

/// Result of parsing a whole output at once.
struct ToolParseResult {
  std::string content;                 ///< normal text ("" when none)
  std::vector<ParsedToolCall> calls;   ///< in order, index 0..n-1
  bool malformed = false;              ///< D15: some block was malformed/truncated
  bool finish_as_tool_calls = false;   ///< see ToolParser::finish_as_tool_calls
};

/// Folds a stream of events into calls and content (used by parse_all and by tests).
/// Throws std::logic_error on an event sequence no parser produces (fragment before its start).
ToolParseResult collect_tool_events(const std::vector<ToolEvent>& events);

/// Non-streaming: feed(text) then finish(), folded. `parser` must be fresh.
ToolParseResult parse_all(ToolParser& parser, std::string_view text);

/// Error for an unknown --tool-call-parser name.
struct ToolParserError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

/// Creates the parser registered as `name` ("deepseekv32" or "deepseekv31"); ToolParserError
/// naming the flag value and the supported names otherwise.
std::unique_ptr<ToolParser> make_tool_parser(std::string_view name, ToolParserOptions opts = {});

}  // namespace ds
