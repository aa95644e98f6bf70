// V3.1-format prompt encoder (DeepSeek-V3.1 / V3.2-Exp official chat template semantics; spec/serving.md
// 1.7). docs/encoding.md "V3.1 format" lists the rules, the sources and the differences from SGLang.
#include "text/encoding_v31.h"

#include <array>

#include "text/encoding_dsv32.h"
#include "text/py_json.h"

namespace ds {
namespace {

using namespace v31;

/// Appends pieces, merging adjacent text and skipping empty text.
class Writer {
 public:
  void text(std::string_view s) {
    if (s.empty()) return;
    if (!pieces_.empty() && !pieces_.back().special) pieces_.back().text.append(s);
    else pieces_.push_back(PromptPiece{std::string(s), false});
  }
  void special(std::string_view s) { pieces_.push_back(PromptPiece{std::string(s), true}); }
  /// Text written by the encoder itself: the V3.1 markers inside it become special pieces (the
  /// official prompt is tokenized with added tokens recognized).
  void encoder_text(std::string_view s) {
    static constexpr std::array<std::string_view, 5> kMarkers = {kToolCallsBegin, kToolCallsEnd, kToolCallBegin,
                                                                 kToolCallEnd, kToolSep};
    while (!s.empty()) {
      size_t best = std::string_view::npos;
      std::string_view which;
      for (auto m : kMarkers) {
        size_t p = s.find(m);
        if (p < best) best = p, which = m;
      }
      if (best == std::string_view::npos) {
        text(s);
        return;
      }
      text(s.substr(0, best));
      special(which);
      s.remove_prefix(best + which.size());
    }
  }
  std::vector<PromptPiece> take() { return std::move(pieces_); }

 private:
  std::vector<PromptPiece> pieces_;
};

// The model card's instruction (DeepSeek-V3.1 README "ToolCall"), written after the last tool.
constexpr std::string_view kToolsIntro = "## Tools\nYou have access to the following tools:\n\n";
constexpr std::string_view kToolsRule =
    "IMPORTANT: ALWAYS adhere to this exact format for tool use:\n"
    "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>tool_call_name<｜tool▁sep｜>tool_call_arguments<｜tool▁call▁end｜>"
    "{additional_tool_calls}<｜tool▁calls▁end｜>\n"
    "\n"
    "Where:\n"
    "- `tool_call_name` must be an exact match to one of the available tools\n"
    "- `tool_call_arguments` must be valid JSON that strictly follows the tool's Parameters Schema\n"
    "- For multiple tool calls, chain them directly without separators or spaces";

std::string text_of(const ordered_json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  return py_json_dumps(v);
}

/// History content: everything up to and including the first </think> is removed (the template's
/// `content.split('</think>', 1)[1]`).
std::string_view drop_reasoning(std::string_view content) {
  size_t p = content.find(dsv32::kThinkEnd);
  return p == std::string_view::npos ? content : content.substr(p + dsv32::kThinkEnd.size());
}

}  // namespace

std::string v31_tool_description(const ordered_json& tools) {
  std::string out(kToolsIntro);
  for (size_t i = 0; i < tools.size(); ++i) {
    const ordered_json& t = tools[i];
    const ordered_json& fn = (t.is_object() && t.contains("function")) ? t["function"] : t;
    if (!fn.is_object() || !fn.contains("name") || !fn["name"].is_string())
      throw EncodeError("tools[" + std::to_string(i) + "].function.name: expected a string");
    out += "### " + fn["name"].get<std::string>() + "\n";
    out += "Description: " + (fn.contains("description") ? text_of(fn["description"]) : std::string()) + "\n\n";
    out += "Parameters: " + (fn.contains("parameters") && !fn["parameters"].is_null() ? py_json_dumps(fn["parameters"])
                                                                                      : std::string("{}"));
    out += "\n\n";
  }
  out += kToolsRule;
  return out;
}

std::vector<PromptPiece> encode_v31(const std::vector<ChatMessage>& messages, const V31EncodeOptions& opts) {
  Writer w;
  if (opts.add_bos) w.special(dsv32::kBos);

  // System part: every system (and developer) message, joined with "\n\n", then the tool description.
  std::string system;
  bool first_sp = true;
  for (const auto& m : messages) {
    if (m.role != "system" && m.role != "developer") continue;
    if (!first_sp) system += "\n\n";
    system += m.content;
    first_sp = false;
  }
  w.text(system);
  if (!opts.tools.is_null() && !opts.tools.empty()) {
    w.text("\n\n");
    w.encoder_text(v31_tool_description(opts.tools));
  }

  bool is_last_user = false;  // the template's ns.is_last_user
  bool is_tool = false;       // ns.is_tool
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "system" || m.role == "developer") continue;
    if (m.role == "user") {
      is_tool = false;
      is_last_user = true;
      w.special(dsv32::kUser);
      w.text(m.content);
    } else if (m.role == "assistant" && !m.tool_calls.empty()) {
      if (is_last_user) {
        w.special(dsv32::kAssistant);
        w.special(dsv32::kThinkEnd);
      }
      is_last_user = false;
      is_tool = false;
      w.text(m.content);
      w.special(kToolCallsBegin);
      for (const ToolCall& c : m.tool_calls) {
        w.special(kToolCallBegin);
        w.text(c.name);
        w.special(kToolSep);
        w.text(c.arguments_text ? *c.arguments_text : py_json_dumps(c.arguments));
        w.special(kToolCallEnd);
      }
      w.special(kToolCallsEnd);
      w.special(dsv32::kEos);
    } else if (m.role == "assistant") {
      if (is_last_user) {
        w.special(dsv32::kAssistant);
        w.special(dsv32::kThinkEnd);
      }
      is_last_user = false;
      if (is_tool) {
        w.text(m.content);
        is_tool = false;
      } else {
        w.text(drop_reasoning(m.content));
      }
      w.special(dsv32::kEos);
    } else if (m.role == "tool") {
      is_last_user = false;
      is_tool = true;
      w.special(kToolOutputBegin);
      w.text(m.content);
      w.special(kToolOutputEnd);
    } else {
      throw EncodeError("Unknown role: " + m.role + " (messages[" + std::to_string(i) + "])");
    }
  }

  if (opts.has_assistant_prefix) {
    // D9: the final assistant turn is continued. After a user turn the template's prefix branch
    // opens it (`<｜Assistant｜>` + <think> in thinking mode, else </think>); after a tool output the
    // model continues in place. No EOS.
    if (is_last_user) {
      w.special(dsv32::kAssistant);
      w.special(opts.thinking ? dsv32::kThinkStart : dsv32::kThinkEnd);
    }
    w.text(opts.assistant_prefix);
  } else if (opts.add_generation_prompt && is_last_user && !is_tool) {
    w.special(dsv32::kAssistant);
    w.special(opts.thinking ? dsv32::kThinkStart : dsv32::kThinkEnd);
  }
  return w.take();
}

}  // namespace ds
