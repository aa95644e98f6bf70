// Shared helpers of the parser tests (test_reasoning_parser, test_tool_parser*, test_stop_matcher,
// test_cases_text): chunkings of a text and a whole-pipeline runner with deterministic call ids.
#pragma once
#include <cstdio>
#include <string>
#include <vector>

#include "text/output_parser.h"

namespace ds::testing {

/// Every way to cut `text` into 1, 2 pieces (every byte offset), every byte separately, and a
/// sample of 3-piece cuts (all pairs when the text is short, else a stride). Cuts fall inside
/// UTF-8 characters too: the parsers are byte-wise, so that is a stricter test than token deltas.
inline std::vector<std::vector<std::string>> chunkings(const std::string& text, std::size_t max3 = 4000) {
  std::vector<std::vector<std::string>> all;
  all.push_back({text});
  for (std::size_t i = 1; i < text.size(); ++i) all.push_back({text.substr(0, i), text.substr(i)});
  std::vector<std::string> bytes;
  for (char c : text) bytes.emplace_back(1, c);
  all.push_back(bytes);
  std::size_t n = text.size();
  std::size_t pairs = n > 2 ? (n - 1) * (n - 2) / 2 : 0;
  std::size_t stride = pairs > max3 ? pairs / max3 + 1 : 1;
  std::size_t k = 0;
  for (std::size_t i = 1; i + 1 < n; ++i) {
    for (std::size_t j = i + 1; j < n; ++j, ++k) {
      if (k % stride != 0) continue;
      all.push_back({text.substr(0, i), text.substr(i, j - i), text.substr(j)});
    }
  }
  return all;
}

/// Deterministic ids: call_000000000000000000000000, call_...01, ...
inline std::function<std::string()> counting_ids() {
  auto n = std::make_shared<int>(0);
  return [n] {
    char buf[32];
    std::snprintf(buf, sizeof buf, "call_%024x", (*n)++);
    return std::string(buf);
  };
}

/// Everything one choice produced.
struct Outcome {
  std::string reasoning, content;
  std::vector<ParsedToolCall> calls;
  std::string finish_reason;  // for engine finish "stop"
  std::optional<std::string> matched_stop;
  std::vector<std::string> reasoning_deltas, content_deltas;
  std::vector<ToolEvent> events;
  bool malformed = false;
};

/// Runs `chunks` through a fresh ChoiceOutputParser built from `opts` (ids made deterministic).
inline Outcome run_choice(const std::vector<std::string>& chunks, ChoiceOutputOptions opts) {
  if (!opts.tools.make_id) opts.tools.make_id = counting_ids();
  ChoiceOutputParser p(std::move(opts));
  Outcome o;
  auto take = [&](ChoiceDelta d) {
    if (!d.reasoning.empty()) {
      o.reasoning += d.reasoning;
      o.reasoning_deltas.push_back(d.reasoning);
    }
    for (ToolEvent& e : d.events) {
      if (e.kind == ToolEvent::Kind::Content) o.content_deltas.push_back(e.text);
      o.events.push_back(e);
    }
  };
  for (const auto& c : chunks) take(p.feed(c));
  take(p.finish());
  ToolParseResult r = collect_tool_events(o.events);
  o.content = r.content;
  o.calls = r.calls;
  o.finish_reason = p.finish_reason("stop");
  o.matched_stop = p.matched_stop();
  o.malformed = p.tool_parser() && p.tool_parser()->malformed();
  return o;
}

/// Options for a thinking/chat prompt and a tool parser ("" = none).
inline ChoiceOutputOptions choice_opts(bool thinking, const std::string& tool_parser = "",
                                       std::vector<std::string> stop = {}) {
  ChoiceOutputOptions o;
  o.start_in_reasoning = thinking;
  o.tool_parser = tool_parser;
  o.stop = std::move(stop);
  return o;
}

/// True when two outcomes agree on everything a client sees once concatenated.
inline bool same_result(const Outcome& a, const Outcome& b) {
  if (a.reasoning != b.reasoning || a.content != b.content || a.finish_reason != b.finish_reason ||
      a.matched_stop != b.matched_stop || a.calls.size() != b.calls.size())
    return false;
  for (std::size_t i = 0; i < a.calls.size(); ++i) {
    if (a.calls[i].index != b.calls[i].index || a.calls[i].name != b.calls[i].name ||
        a.calls[i].arguments != b.calls[i].arguments || a.calls[i].id != b.calls[i].id)
      return false;
  }
  return true;
}

/// Printable chunking for failure messages.
inline std::string show(const std::vector<std::string>& chunks) {
  std::string s;
  for (const auto& c : chunks) s += "[" + c + "]";
  return s;
}

}  // namespace ds::testing
