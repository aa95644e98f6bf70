#include "server/text_endpoints.h"

#include "text/reasoning_parser.h"
#include "text/tool_parser.h"

namespace ds {

using json = nlohmann::json;

namespace {

[[noreturn]] void bad(const std::string& param, const std::string& msg) { throw ApiError(400, msg, param); }

bool opt_bool(const ordered_json& b, const char* key, bool def) {
  if (!b.contains(key) || b[key].is_null()) return def;
  if (!b[key].is_boolean()) bad(key, std::string(key) + ": expected a boolean");
  return b[key].get<bool>();
}

std::string req_string(const ordered_json& b, const char* key) {
  if (!b.contains(key) || !b[key].is_string()) bad(key, std::string(key) + ": field required (a string)");
  return b[key].get<std::string>();
}

}  // namespace

json tokenize_endpoint(const ServeContext& ctx, const std::string& text) {
  ordered_json b = parse_body(text);
  std::vector<int32_t> ids;
  if (b.contains("messages") && !b["messages"].is_null()) {
    ChatCompletionRequest r = parse_chat_request_json(b, ctx.max_n);
    ids = render_chat_prompt(ctx, r).ids;
  } else if (b.contains("prompt") && b["prompt"].is_string()) {
    if (opt_bool(b, "add_special_tokens", true) && ctx.tokenizer->add_bos_token() && ctx.tokenizer->bos_id() >= 0)
      ids.push_back(ctx.tokenizer->bos_id());
    auto t = ctx.tokenizer->encode(b["prompt"].get<std::string>());
    ids.insert(ids.end(), t.begin(), t.end());
  } else {
    bad("prompt", "/tokenize needs `prompt` (a string) or `messages`");
  }
  return json{{"tokens", ids}, {"count", ids.size()}, {"max_model_len", ctx.context_length}};
}

json detokenize_endpoint(const ServeContext& ctx, const std::string& text) {
  ordered_json b = parse_body(text);
  if (!b.contains("tokens") || !b["tokens"].is_array()) bad("tokens", "tokens: field required (an array of token ids)");
  std::vector<int32_t> ids;
  const int64_t vocab = ctx.tokenizer->vocab_size();
  for (size_t i = 0; i < b["tokens"].size(); ++i) {
    const auto& v = b["tokens"][i];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= vocab)
      bad("tokens", "tokens[" + std::to_string(i) + "]: expected a token id in [0, " + std::to_string(vocab) + "), got " +
                        v.dump());
    ids.push_back(v.get<int32_t>());
  }
  return json{{"text", ctx.tokenizer->decode(ids, opt_bool(b, "skip_special_tokens", true))}};
}

json separate_reasoning_endpoint(const ServeContext& ctx, const std::string& text) {
  ordered_json b = parse_body(text);
  std::string t = req_string(b, "text");
  std::string parser = ctx.reasoning_parser.empty() ? "deepseek-v3" : ctx.reasoning_parser;
  if (b.contains("reasoning_parser") && !b["reasoning_parser"].is_null()) parser = req_string(b, "reasoning_parser");
  if (parser != "deepseek-v3")
    bad("reasoning_parser", "reasoning_parser '" + parser + "' is not supported; supported: deepseek-v3");
  ReasoningParserOptions o;
  if (b.contains("chat_template_kwargs") && b["chat_template_kwargs"].is_object()) {
    const auto& k = b["chat_template_kwargs"];
    for (const char* key : {"thinking", "enable_thinking"})
      if (k.contains(key)) {
        o.start_in_reasoning = k[key].is_boolean() ? k[key].get<bool>() : !k[key].is_null();
        break;
      }
  }
  ReasoningDelta d = separate_reasoning(t, o);
  return json{{"reasoning_text", d.reasoning}, {"text", d.content}};
}

json parse_function_call_endpoint(const ServeContext& ctx, const std::string& text) {
  ordered_json b = parse_body(text);
  std::string t = req_string(b, "text");
  std::string name = ctx.tool_call_parser.empty() ? "deepseekv32" : ctx.tool_call_parser;
  if (b.contains("tool_call_parser") && !b["tool_call_parser"].is_null()) name = req_string(b, "tool_call_parser");
  ToolParserOptions o;
  if (b.contains("tools") && !b["tools"].is_null()) {
    if (!b["tools"].is_array()) bad("tools", "tools: expected an array");
    for (size_t i = 0; i < b["tools"].size(); ++i) {
      const auto& tool = b["tools"][i];
      const auto& fn = tool.is_object() && tool.contains("function") ? tool["function"] : tool;
      if (!fn.is_object() || !fn.contains("name") || !fn["name"].is_string())
        bad("tools[" + std::to_string(i) + "].function.name",
            "tools[" + std::to_string(i) + "].function.name: expected a string");
      o.tool_names.push_back(fn["name"].get<std::string>());
    }
  }
  std::unique_ptr<ToolParser> p;
  try {
    p = make_tool_parser(name, o);
  } catch (const ToolParserError& e) {
    bad("tool_call_parser", e.what());
  }
  ToolParseResult r = parse_all(*p, t);
  json calls = json::array();
  for (const auto& c : r.calls) {
    int tool_index = -1;
    for (size_t i = 0; i < o.tool_names.size(); ++i)
      if (o.tool_names[i] == c.name) {
        tool_index = int(i);
        break;
      }
    calls.push_back(json{{"tool_index", tool_index}, {"name", c.name}, {"parameters", c.arguments}});
  }
  return json{{"normal_text", r.content}, {"calls", calls}};
}

}  // namespace ds
