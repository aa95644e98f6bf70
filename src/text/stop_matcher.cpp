// Stop-string matching over streamed content (D17). See stop_matcher.h.
#include "text/stop_matcher.h"

#include <algorithm>

namespace ds {

std::size_t partial_match_suffix(std::string_view text, std::span<const std::string_view> patterns) {
  std::size_t best = 0;
  for (std::string_view p : patterns) {
    if (p.empty()) continue;
    // Candidate suffix lengths k: 1 .. min(|text|, |p| - 1), longest first.
    std::size_t kmax = std::min(text.size(), p.size() - 1);
    for (std::size_t k = kmax; k > best; --k) {
      if (text.substr(text.size() - k) == p.substr(0, k)) {
        best = k;
        break;
      }
    }
  }
  return best;
}

StopMatcher::StopMatcher(std::vector<std::string> stops, bool include_stop)
    : stops_(std::move(stops)), include_stop_(include_stop) {
  views_.reserve(stops_.size());
  for (const auto& s : stops_) views_.emplace_back(s);
}

const std::string& StopMatcher::matched_string() const {
  static const std::string kEmpty;
  return matched_ ? stops_[*matched_] : kEmpty;
}

StopOutput StopMatcher::feed(std::string_view delta) {
  StopOutput out;
  if (done_) return out;
  held_.append(delta);
  // The earliest-completing occurrence of any stop string (ties: the longer string).
  std::size_t best_end = std::string::npos, best_start = 0;
  std::optional<std::size_t> best_idx;
  for (std::size_t i = 0; i < stops_.size(); ++i) {
    const std::string& s = stops_[i];
    if (s.empty()) continue;
    std::size_t pos = held_.find(s);
    if (pos == std::string::npos) continue;
    std::size_t end = pos + s.size();
    if (!best_idx || end < best_end || (end == best_end && pos < best_start)) {
      best_end = end;
      best_start = pos;
      best_idx = i;
    }
  }
  if (best_idx) {
    out.text = held_.substr(0, include_stop_ ? best_end : best_start);
    out.stopped = best_idx;
    matched_ = best_idx;
    held_.clear();
    done_ = true;
    return out;
  }
  std::size_t keep = partial_match_suffix(held_, views_);
  out.text = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

StopOutput StopMatcher::interrupt() {
  StopOutput out;
  if (done_) return out;
  out.text = std::move(held_);
  held_.clear();
  return out;
}

StopOutput StopMatcher::finish() {
  StopOutput out;
  if (done_) return out;
  out.text = std::move(held_);
  held_.clear();
  done_ = true;
  return out;
}

}  // namespace ds
