#include "server/openai_protocol.h"

#include "server/response_format.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <random>
#include <tuple>
#include <vector>

namespace ds {

using json = nlohmann::json;

ApiError::ApiError(int status_, const std::string& message, std::string param_, std::string type_, json code_)
    : std::runtime_error(message), status(status_), param(std::move(param_)), type(std::move(type_)),
      code(code_.is_null() ? json(status_) : std::move(code_)) {}

json error_body(const ApiError& e) {
  json err = {{"message", e.what()}, {"type", e.type}, {"param", nullptr}, {"code", e.code}};
  if (!e.param.empty()) err["param"] = e.param;
  return json{{"error", err}};
}

int64_t get_int_field(const ordered_json& obj, const std::string& key, const std::string& name) {
  const auto& v = obj.at(key);
  const std::string shown = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX))  // would wrap to a negative int64
    throw ApiError(400, name + ": " + shown + " is out of range (an integer in [-2^63, 2^63 - 1])", name);
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && std::floor(d) == d) {
      if (std::abs(d) < 9.2e18) return int64_t(d);
      throw ApiError(400, name + ": " + shown + " is out of range (an integer in [-2^63, 2^63 - 1])", name);
    }
    throw ApiError(400, name + ": expected an integer, got " + shown, name);
  }
  throw ApiError(400, name + ": expected an integer, got " + std::string(v.type_name()), name);
}

std::string new_completion_id() {
  static thread_local std::mt19937_64 gen{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string id = "chatcmpl-";
  for (int i = 0; i < 2; ++i) {
    uint64_t x = gen();
    for (int k = 0; k < 16; ++k) id += hex[(x >> (4 * k)) & 15];
  }
  return id;
}

namespace {

constexpr int kMaxDepth = 64;  // D21

[[noreturn]] void bad(const std::string& param, const std::string& msg) { throw ApiError(400, msg, param); }

const char* type_name(const ordered_json& v) { return v.type_name(); }

bool is_absent(const ordered_json& body, const char* key) {
  auto it = body.find(key);
  return it == body.end() || it->is_null();
}

double get_number(const ordered_json& body, const char* key) {
  const auto& v = body.at(key);
  if (!v.is_number()) bad(key, std::string(key) + ": expected a number, got " + type_name(v));
  return v.get<double>();
}

int64_t get_int(const ordered_json& body, const char* key) { return get_int_field(body, key, key); }

bool get_bool(const ordered_json& body, const char* key) {
  const auto& v = body.at(key);
  if (!v.is_boolean()) bad(key, std::string(key) + ": expected a boolean, got " + type_name(v));
  return v.get<bool>();
}

/// Python-style truthiness of a chat_template_kwargs value.
bool truthy(const ordered_json& v) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) return v.get<double>() != 0.0;
  if (v.is_string()) return !v.get<std::string>().empty();
  if (v.is_array() || v.is_object()) return !v.empty();
  return false;
}

/// Message content: string, null (-> ""), or a list of parts (text joined with " ", D8).
std::string parse_content(const ordered_json& c, const std::string& where) {
  if (c.is_null()) return "";
  if (c.is_string()) return c.get<std::string>();
  if (!c.is_array()) bad(where, where + ": expected a string, an array of content parts or null, got " + type_name(c));
  std::string out;
  bool first = true;
  for (size_t j = 0; j < c.size(); ++j) {
    const auto& part = c[j];
    std::string pw = where + "[" + std::to_string(j) + "]";
    if (part.is_string()) {  // tolerated: a bare string part
      out += (first ? "" : " ") + part.get<std::string>();
      first = false;
      continue;
    }
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
      bad(pw, pw + ": expected a content part object with a string 'type'");
    std::string type = part["type"].get<std::string>();
    if (type != "text")
      bad(pw, pw + ": content part type '" + type + "' is not supported (the model is text-only; only 'text' parts)");
    if (!part.contains("text") || !part["text"].is_string()) bad(pw + ".text", pw + ".text: expected a string");
    out += (first ? "" : " ") + part["text"].get<std::string>();
    first = false;
  }
  return out;
}

ToolCall parse_tool_call(const ordered_json& tc, const std::string& where) {
  if (!tc.is_object()) bad(where, where + ": expected an object");
  ToolCall call;
  if (tc.contains("id") && tc["id"].is_string()) call.id = tc["id"].get<std::string>();
  if (!tc.contains("function") || !tc["function"].is_object()) bad(where + ".function", where + ".function: expected an object");
  const auto& fn = tc["function"];
  if (!fn.contains("name") || !fn["name"].is_string()) bad(where + ".function.name", where + ".function.name: expected a string");
  call.name = fn["name"].get<std::string>();
  if (fn.contains("arguments") && !fn["arguments"].is_null()) {
    const auto& args = fn["arguments"];
    if (args.is_string()) {  // spec/serving.md 1.4 rule 2
      call.arguments_text = args.get<std::string>();
      try {
        call.arguments = ordered_json::parse(args.get<std::string>());
      } catch (const std::exception&) {
        bad(where + ".function.arguments", "Assistant tool call function.arguments must be valid JSON.");
      }
    } else {
      call.arguments = args;
    }
    if (!call.arguments.is_object())
      bad(where + ".function.arguments", "Assistant tool call function.arguments must be a JSON object.");
  }
  return call;
}

std::vector<ChatMessage> parse_messages(const ordered_json& body) {
  if (is_absent(body, "messages")) bad("messages", "messages: field required");
  const auto& ms = body["messages"];
  if (!ms.is_array()) bad("messages", std::string("messages: expected an array, got ") + type_name(ms));
  if (ms.empty()) bad("messages", "messages: must not be empty");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < ms.size(); ++i) {
    std::string w = "messages[" + std::to_string(i) + "]";
    const auto& m = ms[i];
    if (!m.is_object()) bad(w, w + ": expected an object");
    if (!m.contains("role") || !m["role"].is_string()) bad(w + ".role", w + ".role: field required (a string)");
    ChatMessage msg;
    msg.role = m["role"].get<std::string>();
    std::transform(msg.role.begin(), msg.role.end(), msg.role.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    if (msg.role == "function") msg.role = "tool";
    static const char* roles[] = {"system", "user", "assistant", "tool", "developer"};
    if (std::find(std::begin(roles), std::end(roles), msg.role) == std::end(roles))
      bad(w + ".role", w + ".role: '" + m["role"].get<std::string>() +
                           "' is not one of system, user, assistant, tool, developer, function");
    msg.content = parse_content(m.contains("content") ? m["content"] : ordered_json(), w + ".content");
    if (m.contains("reasoning_content") && !m["reasoning_content"].is_null()) {
      if (!m["reasoning_content"].is_string()) bad(w + ".reasoning_content", w + ".reasoning_content: expected a string");
      msg.reasoning_content = m["reasoning_content"].get<std::string>();
    }
    if (m.contains("tool_calls") && !m["tool_calls"].is_null()) {
      if (!m["tool_calls"].is_array()) bad(w + ".tool_calls", w + ".tool_calls: expected an array");
      for (size_t j = 0; j < m["tool_calls"].size(); ++j)
        msg.tool_calls.push_back(parse_tool_call(m["tool_calls"][j], w + ".tool_calls[" + std::to_string(j) + "]"));
    }
    if (m.contains("tool_call_id") && m["tool_call_id"].is_string()) msg.tool_call_id = m["tool_call_id"].get<std::string>();
    out.push_back(std::move(msg));
  }
  return out;
}

/// OpenAI `logit_bias`: {"<token id>": bias in [-100, 100]}; ids checked against the vocabulary
/// later (make_engine_request). 400 naming logit_bias otherwise.
std::vector<std::pair<int32_t, float>> parse_logit_bias(const ordered_json& v) {
  std::vector<std::pair<int32_t, float>> out;
  if (v.is_null()) return out;
  if (!v.is_object()) bad("logit_bias", "logit_bias: expected an object mapping token ids (strings) to numbers");
  for (const auto& [k, b] : v.items()) {
    size_t used = 0;
    long long id = -1;
    try {
      id = std::stoll(k, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (k.empty() || used != k.size() || id < 0 || id > INT32_MAX || !std::isdigit(static_cast<unsigned char>(k[0])))
      bad("logit_bias", "logit_bias: key '" + k + "' is not a token id (a non-negative integer string)");
    if (!b.is_number()) bad("logit_bias", "logit_bias['" + k + "']: expected a number");
    const double x = b.get<double>();
    if (!(x >= -100.0 && x <= 100.0))
      bad("logit_bias", "logit_bias['" + k + "'] must be in [-100, 100], got " + b.dump() + ".");
    out.emplace_back(int32_t(id), float(x));
  }
  return out;
}

/// Fields deepserve cannot honour yet: refused when set to a non-default value (never ignored).
void refuse_unsupported(const ordered_json& body) {
  auto nonempty = [&](const char* k) {
    if (is_absent(body, k)) return false;
    const auto& v = body[k];
    if (v.is_string() || v.is_array() || v.is_object()) return !v.empty();
    if (v.is_boolean()) return v.get<bool>();
    if (v.is_number()) return v.get<double>() != 0.0;
    return true;
  };
  for (const char* k : {"regex", "ebnf", "stop_regex"})  // response_format / json_schema: response_format.h
    if (nonempty(k)) bad(k, std::string(k) + " is not supported yet (constrained decoding covers JSON only)");
}

}  // namespace

std::string json_error_text(const std::exception& e) {
  std::string m = e.what();
  if (m.rfind("[json.exception.", 0) == 0) {
    const size_t close = m.find("] ");
    if (close != std::string::npos) m.erase(0, close + 2);
  }
  return m;
}

ordered_json parse_body(const std::string& text) {
  ordered_json body;
  try {
    int too_deep = 0;
    body = ordered_json::parse(text, [&](int depth, ordered_json::parse_event_t, ordered_json&) {
      if (depth > kMaxDepth) too_deep = depth;
      return true;
    });
    if (too_deep) bad("", "Invalid request body: JSON nested deeper than 64 levels");
  } catch (const ordered_json::exception& e) {  // parse_error, and out_of_range for numbers like 1e999
    bad("", "Invalid JSON body: " + json_error_text(e));
  }
  if (!body.is_object()) bad("", std::string("Invalid request body: expected a JSON object, got ") + type_name(body));
  return body;
}

namespace {
void parse_chat_fields(const ordered_json& body, ChatCompletionRequest& r);
}  // namespace

ChatCompletionRequest parse_chat_request(const std::string& text, int max_n) {
  return parse_chat_request_json(parse_body(text), max_n);
}

ChatCompletionRequest parse_chat_request_json(const ordered_json& body, int max_n) {
  ChatCompletionRequest r;
  parse_common_fields(body, max_n, r);
  r.messages = parse_messages(body);
  parse_chat_fields(body, r);
  return r;
}

void parse_common_fields(const ordered_json& body, int max_n, ChatCompletionRequest& r, bool sglang_names) {
  refuse_unsupported(body);
  parse_structured_output(body, r);
  if (!is_absent(body, "model")) {
    if (!body["model"].is_string()) bad("model", "model: expected a string");
    r.model = body["model"].get<std::string>();
  }

  // Sampling.
  if (!is_absent(body, "temperature")) {
    double t = get_number(body, "temperature");
    if (t < 0) bad("temperature", "temperature must be non-negative, got " + body["temperature"].dump() + ".");
    r.temperature = float(t);
  }
  if (!is_absent(body, "top_p")) {
    double p = get_number(body, "top_p");
    if (!(p > 0 && p <= 1)) bad("top_p", "top_p must be in (0, 1], got " + body["top_p"].dump() + ".");
    r.top_p = float(p);
  }
  if (!is_absent(body, "top_k")) {
    int64_t k = get_int(body, "top_k");
    if (k == 0 || k < -1 || k > (1 << 30)) bad("top_k", "top_k must be -1 (disable), or at least 1, got " + std::to_string(k) + ".");
    r.top_k = int(k);
  }
  if (!is_absent(body, "min_p")) {
    double p = get_number(body, "min_p");
    if (!(p >= 0 && p <= 1)) bad("min_p", "min_p must be in [0, 1], got " + body["min_p"].dump() + ".");
    r.min_p = float(p);
  }
  if (!is_absent(body, "seed")) r.seed = uint64_t(get_int(body, "seed"));
  const std::vector<const char*> max_keys = sglang_names ? std::vector<const char*>{"max_new_tokens"}
                                                          : std::vector<const char*>{"max_tokens", "max_completion_tokens"};
  for (const char* k : max_keys) {  // the second wins
    if (is_absent(body, k)) continue;
    int64_t m = get_int(body, k);
    if (m < 0) bad(k, std::string(k) + " must be at least 0, got " + std::to_string(m) + ".");
    r.max_tokens = m;
    r.max_tokens_param = k;
  }
  if (!is_absent(body, "n")) {
    int64_t n = get_int(body, "n");
    if (n < 1 || n > max_n)
      bad("n", "n must be between 1 and " + std::to_string(max_n) + " (--max-running-requests), got " + std::to_string(n) + ".");
    r.n = int(n);
  }
  if (!is_absent(body, "stream")) r.stream = get_bool(body, "stream");
  if (!is_absent(body, "stream_options")) {
    const auto& so = body["stream_options"];
    if (!so.is_object()) bad("stream_options", "stream_options: expected an object");
    if (!is_absent(so, "include_usage")) r.include_usage = get_bool(so, "include_usage");
    if (!is_absent(so, "continuous_usage_stats")) r.continuous_usage_stats = get_bool(so, "continuous_usage_stats");
  }
  if (!is_absent(body, "ignore_eos")) r.ignore_eos = get_bool(body, "ignore_eos");
  if (!is_absent(body, "skip_special_tokens")) {
    r.skip_special_tokens = get_bool(body, "skip_special_tokens");
    r.skip_special_tokens_given = true;
  }
  if (!is_absent(body, "separate_reasoning")) r.separate_reasoning = get_bool(body, "separate_reasoning");
  if (!is_absent(body, "stream_reasoning")) r.stream_reasoning = get_bool(body, "stream_reasoning");
  if (!is_absent(body, "add_generation_prompt")) r.add_generation_prompt = get_bool(body, "add_generation_prompt");
  if (!is_absent(body, "stop")) {  // D17
    const auto& st = body["stop"];
    if (st.is_string()) {
      if (!st.get<std::string>().empty()) r.stop.push_back(st.get<std::string>());
    } else if (st.is_array()) {
      for (const auto& v : st) {
        if (!v.is_string()) bad("stop", "stop: expected a string or an array of strings");
        if (!v.get<std::string>().empty()) r.stop.push_back(v.get<std::string>());
      }
    } else {
      bad("stop", std::string("stop: expected a string or an array of strings, got ") + type_name(st));
    }
  }
  if (!is_absent(body, "debug_model_text")) {  // test hook; the server refuses it unless enabled
    const auto& d = body["debug_model_text"];
    if (d.is_string()) {
      r.debug_model_text.push_back(d.get<std::string>());
    } else if (d.is_array() && !d.empty()) {
      for (const auto& v : d) {
        if (!v.is_string()) bad("debug_model_text", "debug_model_text: expected a string or an array of strings");
        r.debug_model_text.push_back(v.get<std::string>());
      }
    } else {
      bad("debug_model_text", "debug_model_text: expected a string or a non-empty array of strings");
    }
  }
  // Penalties (SGLang's ranges) and min_tokens.
  for (auto [key, lo, hi, lo_open, dst] :
       {std::tuple<const char*, double, double, bool, float*>{"frequency_penalty", -2, 2, false, &r.frequency_penalty},
        {"presence_penalty", -2, 2, false, &r.presence_penalty},
        {"repetition_penalty", 0, 2, true, &r.repetition_penalty}}) {
    if (is_absent(body, key)) continue;
    const double v = get_number(body, key);
    if (!((lo_open ? v > lo : v >= lo) && v <= hi))
      bad(key, std::string(key) + " must be in " + (lo_open ? "(" : "[") + std::to_string(int(lo)) + ", " +
                   std::to_string(int(hi)) + "], got " + body[key].dump() + ".");
    *dst = float(v);
  }
  const char* min_key = sglang_names ? "min_new_tokens" : "min_tokens";
  if (!is_absent(body, min_key)) {
    const int64_t m = get_int(body, min_key);
    if (m < 0 || (r.max_tokens && m > *r.max_tokens))
      bad(min_key, std::string(min_key) + (r.max_tokens ? " must be in [0, " + r.max_tokens_param + " = " +
                                                              std::to_string(*r.max_tokens) + "]"
                                                        : std::string(" must be at least 0")) +
                       ", got " + std::to_string(m) + ".");
    if (m > INT32_MAX) bad(min_key, std::string(min_key) + ": " + std::to_string(m) + " is out of range");
    r.min_tokens = int(m);
  }
  // logprobs: a boolean (chat, with top_logprobs) or an integer (completions: the top count).
  if (!is_absent(body, "logprobs")) {
    const auto& lp = body["logprobs"];
    if (lp.is_boolean()) {
      if (lp.get<bool>()) r.logprobs = 0;
    } else {
      const int64_t k = get_int(body, "logprobs");
      if (k < 0 || k > 20) bad("logprobs", "logprobs must be in [0, 20], got " + std::to_string(k) + ".");
      r.logprobs = int(k);
    }
  }
  if (!is_absent(body, "top_logprobs")) {
    const int64_t k = get_int(body, "top_logprobs");
    if (k < 0 || k > 20) bad("top_logprobs", "top_logprobs must be in [0, 20], got " + std::to_string(k) + ".");
    if (!r.logprobs) {
      if (k > 0) bad("top_logprobs", "top_logprobs needs logprobs set to true.");
    } else {
      r.logprobs = int(k);
    }
  }
  if (!is_absent(body, "logit_bias")) r.logit_bias = parse_logit_bias(body["logit_bias"]);
  if (!is_absent(body, "stop_token_ids")) {
    const auto& ids = body["stop_token_ids"];
    if (!ids.is_array()) bad("stop_token_ids", "stop_token_ids: expected an array of integers");
    for (const auto& v : ids) {
      if (!v.is_number_integer()) bad("stop_token_ids", "stop_token_ids: expected an array of integers");
      // Ids outside int32 would wrap into other (valid) ids; they can never be generated anyway.
      if (v.is_number_unsigned() ? v.get<uint64_t>() > uint64_t(INT32_MAX)
                                 : (v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX))
        bad("stop_token_ids", "stop_token_ids: token ids must be in [0, 2147483647], got " + v.dump());
      r.stop_token_ids.push_back(v.get<int32_t>());
    }
  }
}

namespace {
void parse_chat_fields(const ordered_json& body, ChatCompletionRequest& r) {
  // Thinking (spec 1.4 rule 7): chat_template_kwargs.thinking / enable_thinking, else reasoning_effort.
  bool thinking_set = false;
  if (!is_absent(body, "chat_template_kwargs")) {
    const auto& k = body["chat_template_kwargs"];
    if (!k.is_object()) bad("chat_template_kwargs", "chat_template_kwargs: expected an object");
    for (const char* key : {"thinking", "enable_thinking"})
      if (k.contains(key)) {
        r.thinking = truthy(k[key]);
        thinking_set = true;
        break;
      }
  }
  if (!thinking_set && !is_absent(body, "reasoning_effort") && body["reasoning_effort"].is_string())
    r.thinking = body["reasoning_effort"].get<std::string>() != "none";

  // Tools (D5): "none" renders none; "required" / a named function need constrained decoding.
  if (!is_absent(body, "tools")) {
    if (!body["tools"].is_array()) bad("tools", "tools: expected an array");
    const auto& ts = body["tools"];
    for (size_t i = 0; i < ts.size(); ++i) {
      const std::string w = "tools[" + std::to_string(i) + "]";
      const auto& t = ts[i];
      if (!t.is_object()) bad(w, w + ": expected an object {\"type\": \"function\", \"function\": {...}}");
      if (!is_absent(t, "type") && !(t["type"].is_string() && t["type"].get<std::string>() == "function"))
        bad(w + ".type", w + ".type: only \"function\" tools are supported, got " +
                             t["type"].dump(-1, ' ', false, json::error_handler_t::replace));
      if (is_absent(t, "function") || !t["function"].is_object())
        bad(w + ".function", w + ".function: field required (an object with a string 'name')");
      const auto& fn = t["function"];
      if (is_absent(fn, "name") || !fn["name"].is_string() || fn["name"].get<std::string>().empty())
        bad(w + ".function.name", w + ".function.name: field required (a non-empty string)");
      if (!is_absent(fn, "parameters") && !fn["parameters"].is_object())
        bad(w + ".function.parameters", w + ".function.parameters: expected a JSON Schema object");
    }
    r.tools = ts;
  }
  if (!is_absent(body, "tool_choice")) {
    const auto& tc = body["tool_choice"];
    if (tc.is_string() && tc.get<std::string>() == "none") {
      r.tools = ordered_json::array();
      r.tool_choice_none = true;
    } else if (tc.is_string() && tc.get<std::string>() == "auto") {
    } else if ((tc.is_string() && tc.get<std::string>() == "required") ||
               (tc.is_object() && tc.contains("type") && tc["type"] == "function" && tc.contains("function") &&
                tc["function"].is_object() && tc["function"].contains("name") && tc["function"]["name"].is_string())) {
      bad("tool_choice", "tool_choice " + tc.dump(-1, ' ', false, json::error_handler_t::replace) +
                             " is not supported yet (needs constrained decoding); use \"auto\" or \"none\"");
    } else {
      bad("tool_choice", "tool_choice " + tc.dump(-1, ' ', false, json::error_handler_t::replace).substr(0, 200) +
                             " is invalid: expected \"none\", \"auto\", \"required\" or "
                             "{\"type\": \"function\", \"function\": {\"name\": ...}}");
    }
  }

  // Trailing assistant message (D9): continue_final_message, or DeepSeek's {"prefix": true}.
  bool cont = !is_absent(body, "continue_final_message") && get_bool(body, "continue_final_message");
  {
    const auto& ms = body["messages"];
    const auto& last = ms[ms.size() - 1];
    if (last.contains("prefix") && last["prefix"].is_boolean() && last["prefix"].get<bool>()) cont = true;
  }
  if (cont && r.messages.back().role == "assistant") {
    r.assistant_prefix = r.messages.back().content;
    r.messages.pop_back();
    if (r.messages.empty()) bad("messages", "messages: continue_final_message needs a message before the final assistant message");
  }
  // Empty system message first (spec 1.4 rule 5).
  if (r.messages.front().role != "system") {
    r.messages.insert(r.messages.begin(), ChatMessage{"system", "", {}, {}, {}});
    r.system_inserted = true;
  }
}
}  // namespace

}  // namespace ds
