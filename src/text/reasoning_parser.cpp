// Reasoning parser `deepseek-v3` (spec/serving.md 2; D13, D14). See reasoning_parser.h.
#include "text/reasoning_parser.h"

#include <algorithm>

#include "text/stop_matcher.h"

namespace ds {
namespace {
constexpr std::string_view kThinkStart = "<think>";
constexpr std::string_view kThinkEnd = "</think>";
constexpr std::string_view kBlockGap = "\n\n";  // the encoder writes "\n\n" before a tool block

// True when `s` is a proper prefix of `tag` (so it may still become the tag).
bool proper_prefix_of(std::string_view s, std::string_view tag) {
  return s.size() < tag.size() && tag.substr(0, s.size()) == s;
}
}  // namespace

std::vector<std::string> ReasoningParserOptions::default_tool_start_markers() {
  return {"<｜DSML｜function_calls", "<｜tool▁calls▁begin｜>"};
}

bool reasoning_starts_open(std::string_view prompt) {
  std::size_t open = prompt.rfind(kThinkStart);
  if (open == std::string_view::npos) return false;
  std::size_t close = prompt.rfind(kThinkEnd);
  return close == std::string_view::npos || open > close;
}

ReasoningParser::ReasoningParser(ReasoningParserOptions opts)
    : opts_(std::move(opts)), in_reasoning_(opts_.start_in_reasoning) {
  patterns_.emplace_back(kThinkEnd);
  for (const auto& m : opts_.tool_start_markers) {
    if (m.empty()) continue;
    patterns_.push_back(m);
    patterns_.push_back(std::string(kBlockGap) + m);
  }
}

void ReasoningParser::step(ReasoningDelta& out) {
  if (at_start_) {
    // Decide the fate of a leading tag first: hold while the buffer may still become one.
    if (proper_prefix_of(pend_, kThinkStart) || (!in_reasoning_ && proper_prefix_of(pend_, kThinkEnd))) return;
    if (pend_.starts_with(kThinkStart)) {
      pend_.erase(0, kThinkStart.size());  // echoed <think> (reasoning) / model-opened reasoning (chat)
      in_reasoning_ = true;
    } else if (!in_reasoning_ && pend_.starts_with(kThinkEnd)) {
      pend_.erase(0, kThinkEnd.size());  // D14: stray </think> at the very start of a chat reply
    }
    at_start_ = false;
  }
  if (!in_reasoning_) {
    out.content += pend_;
    pend_.clear();
    return;
  }
  // In reasoning: find the first structural end (</think> or a D13 tool marker).
  std::size_t end_pos = pend_.find(kThinkEnd);
  std::size_t marker_pos = std::string::npos;
  for (const auto& m : opts_.tool_start_markers) {
    if (m.empty()) continue;
    marker_pos = std::min(marker_pos, pend_.find(m));
  }
  if (end_pos != std::string::npos && (marker_pos == std::string::npos || end_pos < marker_pos)) {
    out.reasoning += pend_.substr(0, end_pos);
    out.content += pend_.substr(end_pos + kThinkEnd.size());
    pend_.clear();
    in_reasoning_ = false;
    ended_ = true;
    return;
  }
  if (marker_pos != std::string::npos) {
    std::size_t cut = marker_pos;
    if (cut >= kBlockGap.size() && std::string_view(pend_).substr(cut - kBlockGap.size(), kBlockGap.size()) == kBlockGap) {
      cut -= kBlockGap.size();
    }
    out.reasoning += pend_.substr(0, cut);
    out.content += pend_.substr(cut);
    pend_.clear();
    in_reasoning_ = false;
    ended_ = true;
    return;
  }
  std::vector<std::string_view> views(patterns_.begin(), patterns_.end());
  std::size_t keep = partial_match_suffix(pend_, views);
  out.reasoning += pend_.substr(0, pend_.size() - keep);
  pend_.erase(0, pend_.size() - keep);
}

ReasoningDelta ReasoningParser::feed(std::string_view delta) {
  ReasoningDelta out;
  pend_.append(delta);
  step(out);
  return out;
}

ReasoningDelta ReasoningParser::finish() {
  ReasoningDelta out;
  step(out);
  // Whatever is still held can no longer become a tag: it is ordinary text of the current mode.
  if (in_reasoning_) {
    out.reasoning += pend_;
  } else {
    out.content += pend_;
  }
  pend_.clear();
  at_start_ = false;
  return out;
}

ReasoningDelta separate_reasoning(std::string_view text, const ReasoningParserOptions& opts) {
  ReasoningParser p(opts);
  ReasoningDelta all = p.feed(text);
  ReasoningDelta tail = p.finish();
  all.reasoning += tail.reasoning;
  all.content += tail.content;
  return all;
}

}  // namespace ds
