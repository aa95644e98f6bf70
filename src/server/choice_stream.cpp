#include "server/choice_stream.h"

namespace ds {

using json = nlohmann::json;

ChoiceStream::ChoiceStream(ChoiceOutputOptions opts, bool stream_reasoning, int32_t think_end_id)
    : parser_(opts), stream_reasoning_(stream_reasoning), think_end_id_(think_end_id),
      reasoning_open_(opts.separate_reasoning && opts.start_in_reasoning) {}

void ChoiceStream::add_text(const char* key, std::string s) {
  if (s.empty()) return;
  if (!pending_.empty() && pending_.back().size() == 1 && pending_.back().contains(key)) {
    pending_.back()[key] = pending_.back()[key].get<std::string>() + s;
    return;
  }
  pending_.push_back(json{{key, std::move(s)}});
}

void ChoiceStream::absorb(ChoiceDelta d) {
  if (!d.reasoning.empty()) {
    reasoning_ += d.reasoning;
    if (stream_reasoning_) add_text("reasoning_content", std::move(d.reasoning));
    else held_reasoning_ += d.reasoning;
  }
  if (!d.events.empty()) {
    reasoning_open_ = false;
    add_text("reasoning_content", std::move(held_reasoning_));
    held_reasoning_.clear();
  }
  for (ToolEvent& e : d.events) {
    switch (e.kind) {
      case ToolEvent::Kind::Content:
        content_ += e.text;
        add_text("content", std::move(e.text));
        break;
      case ToolEvent::Kind::CallStart: {
        json fn = {{"name", e.name}, {"arguments", ""}};
        calls_.push_back(json{{"id", e.id}, {"index", e.index}, {"type", "function"}, {"function", fn}});
        pending_.push_back(json{{"tool_calls", json::array({json{{"id", e.id}, {"index", e.index}, {"type", "function"}, {"function", fn}}})}});
        break;
      }
      case ToolEvent::Kind::CallArguments:
        for (auto& c : calls_)
          if (c["index"] == e.index) c["function"]["arguments"] = c["function"]["arguments"].get<std::string>() + e.text;
        pending_.push_back(json{{"tool_calls", json::array({json{{"index", e.index}, {"function", {{"arguments", e.text}}}}})}});
        break;
    }
  }
  if (d.stopped) stopped_ = true;
}

bool ChoiceStream::feed(std::string_view text, int32_t token) {
  if (stopped_ || finished_) return false;
  ChoiceDelta d = parser_.feed(text);
  const bool content_started = !d.events.empty();
  if (token >= 0 && token == think_end_id_) reasoning_open_ = false;
  else if (reasoning_open_ && !content_started) ++reasoning_tokens_;
  absorb(std::move(d));
  return stopped_;
}

void ChoiceStream::finish() {
  if (finished_) return;
  finished_ = true;
  if (!stopped_) absorb(parser_.finish());
  add_text("reasoning_content", std::move(held_reasoning_));
  held_reasoning_.clear();
}

std::vector<json> ChoiceStream::take_deltas() {
  std::vector<json> out;
  out.swap(pending_);
  return out;
}

json ChoiceStream::message() const {
  return json{{"role", "assistant"},
              {"content", content_},
              {"reasoning_content", reasoning_.empty() ? json(nullptr) : json(reasoning_)},
              {"tool_calls", calls_.empty() ? json(nullptr) : calls_}};
}

std::string ChoiceStream::finish_reason(std::string_view engine_reason) const {
  return parser_.finish_reason(engine_reason);
}

}  // namespace ds
