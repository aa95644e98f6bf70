// Common streaming skeleton of the tool-call parsers (spec/serving.md 3; D15, D16). See tool_parser.h.
#include "text/tool_parser.h"

#include <algorithm>
#include <array>
#include <random>

#include "text/py_json.h"
#include "text/stop_matcher.h"
#include "text/tool_parser_v31.h"
#include "text/tool_parser_v32.h"

namespace ds {

std::string make_tool_call_id() {
  thread_local std::mt19937_64 rng{std::random_device{}() ^ (static_cast<std::uint64_t>(std::random_device{}()) << 32)};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "call_";
  for (int i = 0; i < 24; ++i) id.push_back(kHex[rng() & 15]);
  return id;
}

ToolParser::ToolParser(ToolParserOptions opts) : opts_(std::move(opts)) {
  if (!opts_.make_id) opts_.make_id = make_tool_call_id;
}

void ToolParser::emit_content(std::vector<ToolEvent>& out, std::string text) {
  if (text.empty()) return;
  if (!out.empty() && out.back().kind == ToolEvent::Kind::Content) {
    out.back().text += text;
  } else {
    ToolEvent e;
    e.text = std::move(text);
    out.push_back(std::move(e));
  }
}

void ToolParser::drain(std::vector<ToolEvent>& out) {
  const std::string_view open = block_open(), close = block_close(), gap = block_gap();
  for (;;) {
    if (!in_block_) {
      std::size_t pos = pend_.find(open);
      if (pos == std::string::npos) {
        std::string gapped = std::string(gap) + std::string(open);
        std::array<std::string_view, 2> pats{open, gapped};
        std::size_t keep = partial_match_suffix(pend_, gap.empty() ? std::span(pats).first(1) : std::span(pats));
        emit_content(out, pend_.substr(0, pend_.size() - keep));
        pend_.erase(0, pend_.size() - keep);
        return;
      }
      std::size_t cut = pos;
      dropped_gap_.clear();
      if (!gap.empty() && cut >= gap.size() && std::string_view(pend_).substr(cut - gap.size(), gap.size()) == gap) {
        cut -= gap.size();
        dropped_gap_ = gap;
      }
      emit_content(out, pend_.substr(0, cut));
      pend_.erase(0, pos + open.size());
      in_block_ = true;
      continue;
    }
    std::size_t end = pend_.find(close, scan_from_);
    if (end == std::string::npos) {
      // The whole block is held until its closer; the next search starts where a closer could.
      scan_from_ = pend_.size() >= close.size() ? pend_.size() - close.size() + 1 : 0;
      return;
    }
    scan_from_ = 0;
    std::string body = pend_.substr(0, end);
    std::optional<std::vector<RawCall>> calls = parse_block(body);
    if (!calls || calls->empty()) {
      // D15: a malformed block (or one without any call) is content, byte for byte.
      malformed_ = true;
      emit_content(out, dropped_gap_ + std::string(open) + pend_.substr(0, end + close.size()));
    } else {
      for (RawCall& c : *calls) {
        if (!opts_.tool_names.empty() &&
            std::find(opts_.tool_names.begin(), opts_.tool_names.end(), c.name) == opts_.tool_names.end()) {
          ++dropped_;
          continue;
        }
        ToolEvent start;
        start.kind = ToolEvent::Kind::CallStart;
        start.index = next_index_;
        start.id = opts_.make_id();
        start.name = c.name;
        out.push_back(std::move(start));
        ToolEvent args;
        args.kind = ToolEvent::Kind::CallArguments;
        args.index = next_index_;
        args.text = py_json_dumps(c.arguments);
        out.push_back(std::move(args));
        ++next_index_;
      }
    }
    pend_.erase(0, end + close.size());
    dropped_gap_.clear();
    in_block_ = false;
  }
}

std::vector<ToolEvent> ToolParser::feed(std::string_view delta) {
  std::vector<ToolEvent> out;
  pend_.append(delta);
  drain(out);
  return out;
}

std::vector<ToolEvent> ToolParser::finish() {
  std::vector<ToolEvent> out;
  drain(out);
  if (in_block_) {
    // D15: truncated block (no closer): its raw text is content.
    malformed_ = true;
    emit_content(out, dropped_gap_ + std::string(block_open()) + pend_);
    in_block_ = false;
  } else {
    emit_content(out, pend_);
  }
  pend_.clear();
  dropped_gap_.clear();
  scan_from_ = 0;
  return out;
}

ToolParseResult collect_tool_events(const std::vector<ToolEvent>& events) {
  ToolParseResult r;
  for (const ToolEvent& e : events) {
    switch (e.kind) {
      case ToolEvent::Kind::Content:
        r.content += e.text;
        break;
      case ToolEvent::Kind::CallStart:
        if (e.index != static_cast<int>(r.calls.size())) throw std::logic_error("tool events: call index out of order");
        r.calls.push_back({e.index, e.id, e.name, ""});
        break;
      case ToolEvent::Kind::CallArguments:
        if (e.index < 0 || e.index >= static_cast<int>(r.calls.size()))
          throw std::logic_error("tool events: arguments fragment before its call start");
        r.calls[e.index].arguments += e.text;
        break;
    }
  }
  return r;
}

ToolParseResult parse_all(ToolParser& parser, std::string_view text) {
  std::vector<ToolEvent> events = parser.feed(text);
  std::vector<ToolEvent> tail = parser.finish();
  events.insert(events.end(), tail.begin(), tail.end());
  ToolParseResult r = collect_tool_events(events);
  r.malformed = parser.malformed();
  r.finish_as_tool_calls = parser.finish_as_tool_calls();
  return r;
}

std::unique_ptr<ToolParser> make_tool_parser(std::string_view name, ToolParserOptions opts) {
  if (name == "deepseekv32") return std::make_unique<ToolParserV32>(std::move(opts));
  if (name == "deepseekv31") return std::make_unique<ToolParserV31>(std::move(opts));
  throw ToolParserError("--tool-call-parser: unsupported parser '" + std::string(name) +
                        "' (supported: deepseekv32, deepseekv31)");
}

}  // namespace ds
