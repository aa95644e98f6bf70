// One choice's output on the chat path: decoded token text -> ChoiceOutputParser (reasoning, tool
// calls, stop strings; text/output_parser.h) -> OpenAI deltas (streaming) or the final message
// (spec/serving.md 2, 3.4, 4.3, 4.4; D13-D17). One instance per choice (n > 1: separate state).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "text/output_parser.h"

namespace ds {

class ChoiceStream {
 public:
  /// `think_end_id`: id of `</think>` (-1 if none), so it is not counted in reasoning_tokens.
  /// `stream_reasoning` false: reasoning is sent as one delta when it ends (SGLang's flag).
  ChoiceStream(ChoiceOutputOptions opts, bool stream_reasoning, int32_t think_end_id);

  /// Feeds the decoded text of one generated token (special markers kept). Returns true when a stop
  /// string matched now: the caller ends generation (finish_reason "stop").
  bool feed(std::string_view text, int32_t token);
  /// End of output (engine finished or stop matched): releases held-back text. Idempotent.
  void finish();

  /// Streaming: the pending OpenAI `delta` objects in order ({"reasoning_content"}, {"content"},
  /// {"tool_calls": [...]}), adjacent text of the same kind merged; clears them.
  std::vector<nlohmann::json> take_deltas();
  bool has_pending() const { return !pending_.empty(); }

  /// Non-streaming message: {"role": "assistant", "content": text or "", "reasoning_content": text
  /// or null, "tool_calls": [...] or null}.
  nlohmann::json message() const;
  /// OpenAI finish_reason given the engine's: "stop" becomes "tool_calls" when calls were emitted
  /// and no block was malformed (D15); a stop string keeps "stop".
  std::string finish_reason(std::string_view engine_reason) const;
  /// The matched stop string, if a stop string ended the output.
  std::optional<std::string> matched_stop() const { return parser_.matched_stop(); }
  /// Generated tokens while inside reasoning (before `</think>`; spec 2 "Usage").
  int reasoning_tokens() const { return reasoning_tokens_; }
  bool stopped() const { return stopped_; }

 private:
  void absorb(ChoiceDelta d);
  void add_text(const char* key, std::string s);

  ChoiceOutputParser parser_;
  bool stream_reasoning_;
  int32_t think_end_id_;
  bool reasoning_open_;
  int reasoning_tokens_ = 0;
  bool stopped_ = false;
  bool finished_ = false;
  std::string held_reasoning_;  // stream_reasoning false
  std::vector<nlohmann::json> pending_;
  std::string reasoning_, content_;
  nlohmann::json calls_ = nlohmann::json::array();
};

}  // namespace ds
