// DeepSeek-V3.2 prompt encoder: a re-implementation of the rules of DeepSeek's encoding_dsv32.py
// (spec/serving.md 1.3-1.4), rendered as PromptPieces. docs/encoding.md lists the rules and quirks.
#include "text/encoding_dsv32.h"

#include "text/py_json.h"

namespace ds {
namespace {

using namespace dsv32;

// The tool block (spec/serving.md 1.3; byte-checked against lines 3-35 of the official
// test_output.txt by tests/unit/test_encoding_dsv32.cpp). It is split around the encoder's own
// <think>/</think> (special pieces); the tool schema lines go between kToolsTail and "\n</functions>\n".
constexpr std::string_view kToolsHead =
    R"(## Tools

You have access to a set of tools you can use to answer the user's question.
You can invoke functions by writing a "<｜DSML｜function_calls>" block like the following as part of your reply to the user:
<｜DSML｜function_calls>
<｜DSML｜invoke name="$FUNCTION_NAME">
<｜DSML｜parameter name="$PARAMETER_NAME" string="true|false">$PARAMETER_VALUE</｜DSML｜parameter>
...
</｜DSML｜invoke>
<｜DSML｜invoke name="$FUNCTION_NAME2">
...
</｜DSML｜invoke>
</｜DSML｜function_calls>

String and scalar parameters should be specified as is without any escaping or quotes, while lists and objects should use JSON format. The "string" attribute should be set to "true" for string type parameters and "false" for other types (numbers, booleans, arrays, objects).

If the thinking_mode is enabled, then after function results you should strongly consider outputting a thinking block. Here is an example:

<｜DSML｜function_calls>
...
</｜DSML｜function_calls>

<function_results>
...
</function_results>

)";
constexpr std::string_view kToolsMid = "...thinking about results";
constexpr std::string_view kToolsTail = "\n\nHere are the functions available in JSONSchema format:\n<functions>\n";

constexpr std::string_view kDroppedDeveloper =
    "Invalid messages: a developer message before the last user message is not supported in "
    "thinking mode (DeepSeek's encoder drops it and then fails)";

/// Appends pieces, merging adjacent text and skipping empty text.
class PieceWriter {
 public:
  void text(std::string_view s) {
    if (s.empty()) return;
    if (!pieces_.empty() && !pieces_.back().special) pieces_.back().text.append(s);
    else pieces_.push_back(PromptPiece{std::string(s), false});
  }
  void special(std::string_view s) { pieces_.push_back(PromptPiece{std::string(s), true}); }
  std::vector<PromptPiece> take() { return std::move(pieces_); }

 private:
  std::vector<PromptPiece> pieces_;
};

/// One message of the working list (after the optional system insert and the reasoning drop).
struct WorkMsg {
  const ChatMessage* m;
  const std::string* reasoning;  // the message's reasoning_content; null if absent or dropped (key popped)
  bool has_tools;                        // tools attached (messages[0] only)
};

/// The message as the Python dict SGLang hands to the encoder (key order: role, content,
/// reasoning_content, tool_calls, tool_call_id, tools), for the encoder's error messages.
std::string message_repr(const WorkMsg& w, const ordered_json& tools) {
  ordered_json d = ordered_json::object();
  d["role"] = w.m->role;
  d["content"] = w.m->content;
  if (w.reasoning) d["reasoning_content"] = *w.reasoning;
  if (!w.m->tool_calls.empty()) {
    ordered_json calls = ordered_json::array();
    for (const auto& tc : w.m->tool_calls) {
      ordered_json fn = ordered_json::object();
      fn["name"] = tc.name;
      fn["arguments"] = py_json_dumps(tc.arguments);
      ordered_json c = ordered_json::object();
      c["id"] = tc.id;
      c["type"] = "function";
      c["function"] = std::move(fn);
      calls.push_back(std::move(c));
    }
    d["tool_calls"] = std::move(calls);
  }
  if (!w.m->tool_call_id.empty()) d["tool_call_id"] = w.m->tool_call_id;
  if (w.has_tools) d["tools"] = tools;
  return py_repr(d);
}

/// The tool block: "## Tools ..." through "</functions>\n" (one JSON line per tool's function).
void render_tools(PieceWriter& w, const ordered_json& tools) {
  w.text(kToolsHead);
  w.special(kThinkStart);
  w.text(kToolsMid);
  w.special(kThinkEnd);
  w.text(kToolsTail);
  for (size_t i = 0; i < tools.size(); ++i) {
    const auto& t = tools[i];
    if (!t.is_object() || !t.contains("function"))
      throw EncodeError("tools[" + std::to_string(i) + "] has no \"function\" object");
    if (i > 0) w.text("\n");
    w.text(py_json_dumps(t["function"]));
  }
  w.text("\n</functions>\n");
}

/// One DSML <invoke> block of an assistant tool call.
void render_invoke(std::string& out, const ToolCall& tc) {
  if (!tc.arguments.is_object())
    throw EncodeError("Assistant tool call function.arguments must be a JSON object.");
  out += "<｜DSML｜invoke name=\"" + tc.name + "\">\n";
  bool first = true;
  for (auto it = tc.arguments.begin(); it != tc.arguments.end(); ++it) {
    if (!first) out += "\n";
    first = false;
    const bool is_str = it.value().is_string();
    out += "<｜DSML｜parameter name=\"" + it.key() + "\" string=\"" + (is_str ? "true" : "false") + "\">";
    out += is_str ? it.value().get_ref<const std::string&>() : py_json_dumps(it.value());
    out += "</｜DSML｜parameter>";
  }
  out += "\n</｜DSML｜invoke>";
}

class Renderer {
 public:
  Renderer(const std::vector<WorkMsg>& full, const Dsv32EncodeOptions& opts) : full_(full), opts_(opts) {
    for (long i = static_cast<long>(full_.size()) - 1; i >= 0; --i) {
      const auto& r = full_[i].m->role;
      if (r == "user" || r == "developer") {
        last_user_ = i;
        break;
      }
    }
  }

  void render(long index, PieceWriter& w) const {
    const WorkMsg& msg = full_[index];
    const ChatMessage& m = *msg.m;
    if (m.role == "system") {
      w.text(m.content);
      if (msg.has_tools) {
        w.text("\n\n");
        render_tools(w, opts_.tools);
      }
    } else if (m.role == "developer") {
      if (m.content.empty())
        throw EncodeError("Invalid message for role `developer`: " + message_repr(msg, opts_.tools));
      w.special(kUser);
      if (msg.has_tools) {
        w.text("\n\n");
        render_tools(w, opts_.tools);
      }
      w.text("\n\n# The user's message is: " + m.content);
      w.special(kAssistant);
      w.special(index == last_user_ && opts_.thinking ? kThinkStart : kThinkEnd);
    } else if (m.role == "user") {
      w.special(kUser);
      w.text(m.content);
      w.special(kAssistant);
      w.special(index == last_user_ && opts_.thinking ? kThinkStart : kThinkEnd);
    } else if (m.role == "tool") {
      render_tool(index, w);
    } else if (m.role == "assistant") {
      render_assistant(index, w);
    } else {
      throw EncodeError("Unknown role: " + m.role);
    }
  }

 private:
  /// Python's messages[k] for k >= -1 (index -1 is the last message, as in the official code).
  const WorkMsg& at(long k) const { return full_[k < 0 ? k + static_cast<long>(full_.size()) : k]; }

  void render_tool(long index, PieceWriter& w) const {
    long prev = index - 1;
    const WorkMsg* asst = &at(prev);
    while (prev >= 0 && asst->m->role == "tool") {
      --prev;
      asst = &at(prev);
    }
    if (!(index == 0 || (prev >= 0 && asst->m->role == "assistant")))
      throw EncodeError("Invalid messages at " + std::to_string(index) + ":\n" + message_repr(*asst, opts_.tools));
    const long order = index - prev;
    const long n_calls = static_cast<long>(asst->m->tool_calls.size());
    if (n_calls == 0 || n_calls < order) throw EncodeError("No tool calls but found tool output");
    if (order == 1) w.text("\n\n<function_results>");
    w.text("\n<result>" + msg_content(index) + "</result>");
    if (order == n_calls) {
      w.text("\n</function_results>\n\n");
      w.special(index >= last_user_ && opts_.thinking ? kThinkStart : kThinkEnd);
    }
  }

  void render_assistant(long index, PieceWriter& w) const {
    const WorkMsg& msg = full_[index];
    const ChatMessage& m = *msg.m;
    std::string calls;
    if (!m.tool_calls.empty()) {
      calls = "\n\n<｜DSML｜function_calls>\n";
      for (size_t i = 0; i < m.tool_calls.size(); ++i) {
        if (i > 0) calls += "\n";
        render_invoke(calls, m.tool_calls[i]);
      }
      calls += "\n</｜DSML｜function_calls>";
    }
    const bool has_reasoning = msg.reasoning && !msg.reasoning->empty();
    if (opts_.thinking && index > last_user_) {
      if (!has_reasoning && m.tool_calls.empty())
        throw EncodeError("ThinkingMode: thinking, invalid message without reasoning_content/tool_calls `" +
                          message_repr(msg, opts_.tools) + "` after last user message");
      if (has_reasoning) w.text(*msg.reasoning);
      w.special(kThinkEnd);
    }
    w.text(m.content);
    w.text(calls);
    w.special(kEos);
  }

  const std::string& msg_content(long index) const { return full_[index].m->content; }

  const std::vector<WorkMsg>& full_;
  const Dsv32EncodeOptions& opts_;
  long last_user_ = -1;
};

}  // namespace

std::vector<PromptPiece> encode_dsv32(const std::vector<ChatMessage>& messages, const Dsv32EncodeOptions& opts) {
  static const ChatMessage kEmptySystem{"system", "", std::nullopt, {}, ""};
  if (!opts.tools.is_null() && !opts.tools.is_array()) throw EncodeError("tools must be an array");
  const bool has_tools = opts.tools.is_array() && !opts.tools.empty();

  std::vector<const ChatMessage*> src;
  if (opts.ensure_system && (messages.empty() || messages[0].role != "system")) src.push_back(&kEmptySystem);
  for (const auto& m : messages) src.push_back(&m);

  std::vector<WorkMsg> full;
  for (size_t i = 0; i < src.size(); ++i) full.push_back({src[i], src[i]->reasoning_content ? &*src[i]->reasoning_content : nullptr, i == 0 && has_tools});

  if (opts.thinking && opts.drop_thinking) {
    // drop_thinking_messages: assistants before the last user/developer lose their reasoning;
    // any other role before it (developer, unknown roles) is left out of the list, as in the official code.
    long last_user = -1;
    for (long i = static_cast<long>(full.size()) - 1; i >= 0; --i) {
      const auto& r = full[i].m->role;
      if (r == "user" || r == "developer") {
        last_user = i;
        break;
      }
    }
    std::vector<WorkMsg> kept;
    for (long i = 0; i < static_cast<long>(full.size()); ++i) {
      const auto& r = full[i].m->role;
      if (r == "user" || r == "system" || r == "tool" || i >= last_user) {
        kept.push_back(full[i]);
      } else if (r == "assistant") {
        WorkMsg w = full[i];
        w.reasoning = nullptr;
        kept.push_back(w);
      }
    }
    full = std::move(kept);
  }

  PieceWriter w;
  if (opts.add_bos) w.special(kBos);
  Renderer r(full, opts);
  for (size_t idx = 0; idx < src.size(); ++idx) {
    if (idx >= full.size()) throw EncodeError(std::string(kDroppedDeveloper));
    r.render(static_cast<long>(idx), w);
  }
  return w.take();
}

std::string pieces_to_string(const std::vector<PromptPiece>& pieces) {
  std::string out;
  for (const auto& p : pieces) out += p.text;
  return out;
}

}  // namespace ds
