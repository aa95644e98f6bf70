// Per-choice output pipeline (reasoning -> tools -> stop strings). See output_parser.h.
#include "text/output_parser.h"

namespace ds {
namespace {
void push_content(std::vector<ToolEvent>& out, std::string text) {
  if (text.empty()) return;
  if (!out.empty() && out.back().kind == ToolEvent::Kind::Content) {
    out.back().text += text;
    return;
  }
  ToolEvent e;
  e.text = std::move(text);
  out.push_back(std::move(e));
}
}  // namespace

ChoiceOutputParser::ChoiceOutputParser(ChoiceOutputOptions opts) : opts_(std::move(opts)) {
  if (!opts_.tool_parser.empty()) tools_ = make_tool_parser(opts_.tool_parser, opts_.tools);
  if (opts_.separate_reasoning) {
    ReasoningParserOptions ro;
    ro.start_in_reasoning = opts_.start_in_reasoning;
    ro.tool_start_markers.clear();  // D13 only for the active tool format
    if (opts_.tool_parser == "deepseekv32") ro.tool_start_markers = {"<｜DSML｜function_calls"};
    if (opts_.tool_parser == "deepseekv31") ro.tool_start_markers = {"<｜tool▁calls▁begin｜>"};
    reasoning_ = std::make_unique<ReasoningParser>(std::move(ro));
  }
  if (!opts_.stop.empty()) stops_ = std::make_unique<StopMatcher>(opts_.stop, opts_.include_stop);
}

void ChoiceOutputParser::stop_filter(std::vector<ToolEvent> events, ChoiceDelta& out, bool final) {
  for (ToolEvent& e : events) {
    if (done_) return;
    if (!stops_) {
      if (e.kind == ToolEvent::Kind::Content) {
        push_content(out.events, std::move(e.text));
      } else {
        out.events.push_back(std::move(e));
      }
      continue;
    }
    if (e.kind == ToolEvent::Kind::Content) {
      StopOutput r = stops_->feed(e.text);
      push_content(out.events, std::move(r.text));
      if (r.stopped) {
        out.stopped = true;
        done_ = true;
      }
    } else {
      push_content(out.events, stops_->interrupt().text);
      out.events.push_back(std::move(e));
    }
  }
  if (final && stops_ && !done_) push_content(out.events, stops_->finish().text);
}

void ChoiceOutputParser::route(std::string content, ChoiceDelta& out, bool final) {
  std::vector<ToolEvent> events;
  if (tools_) {
    events = tools_->feed(content);
    if (final) {
      std::vector<ToolEvent> tail = tools_->finish();
      events.insert(events.end(), std::make_move_iterator(tail.begin()), std::make_move_iterator(tail.end()));
    }
  } else {
    push_content(events, std::move(content));
  }
  stop_filter(std::move(events), out, final);
}

ChoiceDelta ChoiceOutputParser::feed(std::string_view text) {
  ChoiceDelta out;
  if (done_) return out;
  if (reasoning_) {
    ReasoningDelta rd = reasoning_->feed(text);
    out.reasoning = std::move(rd.reasoning);
    route(std::move(rd.content), out, false);
  } else {
    route(std::string(text), out, false);
  }
  return out;
}

ChoiceDelta ChoiceOutputParser::finish() {
  ChoiceDelta out;
  if (done_) return out;
  std::string content;
  if (reasoning_) {
    ReasoningDelta rd = reasoning_->finish();
    out.reasoning = std::move(rd.reasoning);
    content = std::move(rd.content);
  }
  route(std::move(content), out, true);
  done_ = true;
  return out;
}

std::string ChoiceOutputParser::finish_reason(std::string_view engine_reason) const {
  if (engine_reason == "stop" && tools_ && tools_->finish_as_tool_calls()) return "tool_calls";
  return std::string(engine_reason);
}

std::optional<std::string> ChoiceOutputParser::matched_stop() const {
  if (stops_ && stops_->stopped()) return stops_->matched_string();
  return std::nullopt;
}

}  // namespace ds
