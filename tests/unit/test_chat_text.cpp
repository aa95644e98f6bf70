// The chat path's text layer end to end, without a model: --debug-inject-output's debug_model_text
// drives ChatSession (render -> injected tokens -> per-choice parsers -> OpenAI JSON/SSE). Handed
// cases of areas reasoning / tool_calling / chat_template / tokenizer at the HTTP level
// (../shared/cases/serving_cases.jsonl), streaming (one token per chunk) == non-streaming (D16).
#include <gtest/gtest.h>

#include <map>

#include "server/chat_service.h"
#include "server/text_endpoints.h"

namespace ds {
namespace {

using json = nlohmann::json;

std::shared_ptr<const Tokenizer> tok() {
  static auto t = Tokenizer::load(Tokenizer::default_tokenizer_json(), /*apply_v32_added_tokens=*/true);
  return t;
}

ServeContext make_ctx(const std::string& tool_parser = "deepseekv32") {
  ServeContext c;
  c.tokenizer = tok();
  c.served_model_name = "m";
  c.context_length = 4096;
  c.eos_ids = {1};
  c.max_n = 4;
  c.reasoning_parser = "deepseek-v3";
  c.tool_call_parser = tool_parser;
  c.prompt_format = tool_parser == "deepseekv31" ? PromptFormat::V31 : PromptFormat::Dsv32;
  c.debug_inject = true;
  return c;
}

/// The OpenAI result folded into one shape per choice (for streaming: deltas concatenated).
struct Result {
  std::string content, reasoning, finish;
  bool reasoning_null = true;
  json matched_stop;
  std::vector<json> calls;  // {"id","name","arguments"}
  int reasoning_tokens = -1;
  int finish_chunks = 0;
};

std::map<int, Result> run(const ServeContext& ctx, json body) {
  std::map<int, Result> out;
  body["stream"] = false;
  auto s = ChatSession::start(ctx, body.dump());
  std::string text;
  while (!s->poll_complete(text)) {
  }
  json r = json::parse(text);
  for (const auto& c : r.at("choices")) {
    Result& x = out[c["index"].get<int>()];
    const auto& m = c["message"];
    x.content = m["content"].get<std::string>();
    x.reasoning_null = m["reasoning_content"].is_null();
    if (!x.reasoning_null) x.reasoning = m["reasoning_content"].get<std::string>();
    if (!m["tool_calls"].is_null())
      for (const auto& t : m["tool_calls"])
        x.calls.push_back(json{{"id", t["id"]}, {"name", t["function"]["name"]}, {"arguments", t["function"]["arguments"]}});
    x.finish = c["finish_reason"].get<std::string>();
    x.matched_stop = c["matched_stop"];
    x.reasoning_tokens = r["usage"]["reasoning_tokens"].get<int>();
  }
  return out;
}

std::map<int, Result> run_stream(const ServeContext& ctx, json body, std::vector<std::string>* deltas = nullptr) {
  std::map<int, Result> out;
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  auto s = ChatSession::start(ctx, body.dump());
  std::string sse;
  while (s->next_stream(sse)) {
  }
  size_t pos = 0;
  while ((pos = sse.find("data: ", pos)) != std::string::npos) {
    size_t end = sse.find("\n\n", pos);
    std::string payload = sse.substr(pos + 6, end - pos - 6);
    pos = end;
    if (payload == "[DONE]") break;
    json ch = json::parse(payload);
    if (ch.contains("usage") && !ch["usage"].is_null())
      for (auto& [i, x] : out) x.reasoning_tokens = ch["usage"]["reasoning_tokens"].get<int>();
    for (const auto& c : ch["choices"]) {
      Result& x = out[c["index"].get<int>()];
      const auto& d = c["delta"];
      if (d.contains("content") && d["content"].is_string()) {
        x.content += d["content"].get<std::string>();
        if (deltas) deltas->push_back(d["content"].get<std::string>());
      }
      if (d.contains("reasoning_content") && d["reasoning_content"].is_string()) {
        x.reasoning += d["reasoning_content"].get<std::string>();
        x.reasoning_null = false;
        if (deltas) deltas->push_back(d["reasoning_content"].get<std::string>());
      }
      if (d.contains("tool_calls"))
        for (const auto& t : d["tool_calls"]) {
          size_t i = t["index"].get<size_t>();
          if (t.contains("id")) {
            EXPECT_EQ(i, x.calls.size());
            EXPECT_EQ(t["function"]["arguments"], "");  // the first item: id + name, empty arguments
            x.calls.push_back(json{{"id", t["id"]}, {"name", t["function"]["name"]}, {"arguments", ""}});
          } else {
            x.calls.at(i)["arguments"] = x.calls.at(i)["arguments"].get<std::string>() + t["function"]["arguments"].get<std::string>();
          }
        }
      if (!c["finish_reason"].is_null()) {
        x.finish = c["finish_reason"].get<std::string>();
        x.matched_stop = c["matched_stop"];
        ++x.finish_chunks;
      }
    }
  }
  return out;
}

/// Runs both ways, checks they agree (D16; ids differ per request), returns the non-streaming one.
Result both(const ServeContext& ctx, const json& body, int choice = 0) {
  auto a = run(ctx, body);
  auto b = run_stream(ctx, body);
  const Result& x = a.at(choice);
  const Result& y = b.at(choice);
  EXPECT_EQ(x.content, y.content);
  EXPECT_EQ(x.reasoning, y.reasoning);
  EXPECT_EQ(x.reasoning_null, y.reasoning_null);
  EXPECT_EQ(x.finish, y.finish);
  EXPECT_EQ(x.matched_stop, y.matched_stop);
  EXPECT_EQ(x.reasoning_tokens, y.reasoning_tokens);
  EXPECT_EQ(y.finish_chunks, 1);
  EXPECT_EQ(x.calls.size(), y.calls.size());
  for (size_t i = 0; i < std::min(x.calls.size(), y.calls.size()); ++i) {
    EXPECT_EQ(x.calls[i]["name"], y.calls[i]["name"]);
    EXPECT_EQ(json::parse(x.calls[i]["arguments"].get<std::string>()), json::parse(y.calls[i]["arguments"].get<std::string>()));
  }
  return x;
}

json user(const std::string& text, bool thinking) {
  return json{{"messages", json::array({json{{"role", "user"}, {"content", text}}})},
              {"chat_template_kwargs", {{"thinking", thinking}}}};
}

const json kWeatherTool = json::parse(R"({"type":"function","function":{"name":"get_weather","description":"Get current weather for a city",
  "parameters":{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}},"required":["city"]}}})");

int ntok(const std::string& s) { return int(tok()->encode(s).size()); }

TEST(ChatText, ReasoningCases) {
  ServeContext ctx = make_ctx();
  // rsn-no-start-tag-in-output
  json b = user("2+2?", true);
  b["debug_model_text"] = "The user asks 2+2. That is 4.</think>4";
  Result r = both(ctx, b);
  EXPECT_EQ(r.reasoning, "The user asks 2+2. That is 4.");
  EXPECT_EQ(r.content, "4");
  EXPECT_EQ(r.finish, "stop");
  EXPECT_EQ(r.matched_stop, 1);  // EOS id
  EXPECT_EQ(r.reasoning_tokens, ntok("The user asks 2+2. That is 4."));
  // rsn-redundant-start-tag
  b["debug_model_text"] = "<think>Plan: answer briefly.</think>Hello!";
  r = both(ctx, b);
  EXPECT_EQ(r.reasoning, "Plan: answer briefly.");
  EXPECT_EQ(r.content, "Hello!");
  // rsn-thinking-disabled-stray-end-tag
  b = user("Capital?", false);
  b["debug_model_text"] = "</think>Paris is the capital of France.";
  r = both(ctx, b);
  EXPECT_TRUE(r.reasoning_null);
  EXPECT_EQ(r.content, "Paris is the capital of France.");
  EXPECT_EQ(r.reasoning_tokens, 0);
  // rsn-literal-think-tag-in-answer
  b = user("tags?", true);
  b["debug_model_text"] = "Explain tags.</think>Wrap the hidden part in <think> and </think> tags.";
  r = both(ctx, b);
  EXPECT_EQ(r.reasoning, "Explain tags.");
  EXPECT_EQ(r.content, "Wrap the hidden part in <think> and </think> tags.");
  // Unterminated reasoning (max_tokens): all reasoning, finish length.
  b["debug_model_text"] = "weighing it</think>Answer.";
  b["max_tokens"] = 2;
  r = both(ctx, b);
  EXPECT_EQ(r.finish, "length");
  EXPECT_EQ(r.content, "");
  std::vector<int32_t> ids = tok()->encode("weighing it");
  ASSERT_GE(ids.size(), 3u);
  ids.resize(2);
  EXPECT_EQ(r.reasoning, tok()->decode(ids));
  // separate_reasoning false: everything is content, </think> included.
  b.erase("max_tokens");
  b["separate_reasoning"] = false;
  r = both(ctx, b);
  EXPECT_TRUE(r.reasoning_null);
  EXPECT_EQ(r.content, "weighing it</think>Answer.");
}

TEST(ChatText, ReasoningAfterToolResultFollowsThePrompt) {
  // rsn-after-tool-result-turn: the prompt ends "...</function_results>\n\n<think>" (thinking) or
  // "...\n\n</think>" (chat); the parser starts accordingly.
  ServeContext ctx = make_ctx();
  json b = json::parse(R"({"messages":[{"role":"user","content":"Weather in Tokyo?"},
    {"role":"assistant","content":null,"reasoning_content":"Need weather.","tool_calls":[{"id":"call_1","type":"function",
     "function":{"name":"get_weather","arguments":"{\"city\": \"Tokyo\"}"}}]},
    {"role":"tool","tool_call_id":"call_1","content":"Sunny, 20C"}]})");
  b["tools"] = json::array({kWeatherTool});
  b["chat_template_kwargs"] = {{"thinking", true}};
  b["debug_model_text"] = "Tool says sunny.</think>It is sunny in Tokyo, about 20C.";
  Result r = both(ctx, b);
  EXPECT_EQ(r.reasoning, "Tool says sunny.");
  EXPECT_EQ(r.content, "It is sunny in Tokyo, about 20C.");
  EXPECT_EQ(r.finish, "stop");
  b["chat_template_kwargs"] = {{"thinking", false}};
  b["debug_model_text"] = "It is sunny.";
  r = both(ctx, b);
  EXPECT_TRUE(r.reasoning_null);
  EXPECT_EQ(r.content, "It is sunny.");
}

TEST(ChatText, SeparateParserStatePerChoice) {
  // rsn-n2-parser-isolation: both choices advance one token per step, interleaved.
  ServeContext ctx = make_ctx();
  json b = user("Say hi", true);
  b["n"] = 2;
  b["debug_model_text"] = {"Short.</think>Hi!", "Still thinking more.</think>Hello!"};
  auto a = run(ctx, b);
  auto s = run_stream(ctx, b);
  for (auto* m : {&a, &s}) {
    EXPECT_EQ((*m)[0].reasoning, "Short.");
    EXPECT_EQ((*m)[0].content, "Hi!");
    EXPECT_EQ((*m)[1].reasoning, "Still thinking more.");
    EXPECT_EQ((*m)[1].content, "Hello!");
    EXPECT_EQ((*m)[1].finish, "stop");
  }
  EXPECT_EQ(s[0].finish_chunks, 1);
  EXPECT_EQ(s[1].finish_chunks, 1);
  EXPECT_EQ(a[0].reasoning_tokens, ntok("Short.") + ntok("Still thinking more."));  // summed over choices
}

TEST(ChatText, DsmlToolCalls) {
  ServeContext ctx = make_ctx();
  // tool-v32-text-before-call (thinking)
  json b = user("Beijing weather?", true);
  b["tools"] = json::array({kWeatherTool, json::parse(R"({"type":"function","function":{"name":"get_current_weather"}})")});
  b["debug_model_text"] =
      "User wants Beijing weather.</think>Let me look that up.\n\n<｜DSML｜function_calls>\n<｜DSML｜invoke "
      "name=\"get_current_weather\">\n<｜DSML｜parameter name=\"location\" string=\"true\">北京</｜DSML｜parameter>\n"
      "</｜DSML｜invoke>\n</｜DSML｜function_calls>";
  Result r = both(ctx, b);
  EXPECT_EQ(r.reasoning, "User wants Beijing weather.");
  EXPECT_EQ(r.content, "Let me look that up.");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0]["name"], "get_current_weather");
  EXPECT_EQ(r.calls[0]["arguments"], "{\"location\": \"北京\"}");
  EXPECT_EQ(r.calls[0]["id"].get<std::string>().size(), 29u);  // call_ + 24 hex
  EXPECT_EQ(r.calls[0]["id"].get<std::string>().rfind("call_", 0), 0u);
  EXPECT_EQ(r.finish, "tool_calls");
  EXPECT_TRUE(r.matched_stop.is_null());
  // tool-call-inside-reasoning (v32): the DSML opener ends reasoning (D13).
  b["debug_model_text"] =
      "The user wants Shanghai weather.\n\n<｜DSML｜function_calls>\n<｜DSML｜invoke name=\"get_current_weather\">\n"
      "<｜DSML｜parameter name=\"location\" string=\"true\">Shanghai</｜DSML｜parameter>\n</｜DSML｜invoke>\n"
      "</｜DSML｜function_calls>";
  r = both(ctx, b);
  EXPECT_EQ(r.reasoning, "The user wants Shanghai weather.");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0]["arguments"], "{\"location\": \"Shanghai\"}");
  EXPECT_EQ(r.finish, "tool_calls");
  // tool_choice none: no parsing, the DSML stays content.
  b["tool_choice"] = "none";
  b["chat_template_kwargs"] = {{"thinking", false}};
  r = both(ctx, b);
  EXPECT_TRUE(r.calls.empty());
  EXPECT_NE(r.content.find("<｜DSML｜function_calls>"), std::string::npos);
  EXPECT_EQ(r.finish, "stop");
  // Truncated block (D15): raw text is content, finish stays the engine's.
  b.erase("tool_choice");
  b["debug_model_text"] = "Sure.\n\n<｜DSML｜function_calls>\n<｜DSML｜invoke name=\"get_weather\">";
  r = both(ctx, b);
  EXPECT_TRUE(r.calls.empty());
  EXPECT_EQ(r.content, "Sure.\n\n<｜DSML｜function_calls>\n<｜DSML｜invoke name=\"get_weather\">");
  EXPECT_EQ(r.finish, "stop");
}

TEST(ChatText, DsmlTokenReachesTheParser) {
  // tool-v32-dsml-token-not-skipped: 128793 `｜DSML｜` is flagged special (D11) but is kept for the
  // parser even with skip_special_tokens true (the default).
  EXPECT_EQ(encode_with_markers(*tok(), "<｜DSML｜function_calls>\n"), (std::vector<int32_t>{30, 128793, 8701, 4941, 12548, 1018}));
  ServeContext ctx = make_ctx();
  json b = user("Paris?", false);
  b["tools"] = json::array({kWeatherTool});
  b["debug_model_text"] =
      "\n\n<｜DSML｜function_calls>\n<｜DSML｜invoke name=\"get_weather\">\n<｜DSML｜parameter name=\"city\" "
      "string=\"true\">Paris</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜function_calls>";
  Result r = both(ctx, b);  // tool-stream-finish-reason-tool-calls: one finish chunk, tool_calls
  EXPECT_EQ(r.content, "");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0]["arguments"], "{\"city\": \"Paris\"}");
  EXPECT_EQ(r.finish, "tool_calls");
}

TEST(ChatText, V31ToolCalls) {
  ServeContext ctx = make_ctx("deepseekv31");
  json b = user("Shanghai?", false);
  b["tools"] = json::array({kWeatherTool});
  // tool-v31-text-then-call
  b["debug_model_text"] =
      "Let me check the weather.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": "
      "\"Shanghai\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
  Result r = both(ctx, b);
  EXPECT_EQ(r.content, "Let me check the weather.");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(json::parse(r.calls[0]["arguments"].get<std::string>()), json::parse(R"({"city":"Shanghai"})"));
  EXPECT_EQ(r.finish, "tool_calls");
  // tool-v31-nested-unicode-args
  b["tools"] = json::array({json::parse(R"({"type":"function","function":{"name":"search"}})")});
  b["debug_model_text"] =
      "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>search<｜tool▁sep｜>{\"query\": \"他说\\\"你好\\\"\\n第二行\", \"opts\": "
      "{\"tags\": [\"a\", \"b\"], \"limit\": 5, \"exact\": false}, \"emoji\": \"😀\", \"path\": \"C:\\\\tmp\\\\x.txt\"}"
      "<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
  r = both(ctx, b);
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(json::parse(r.calls[0]["arguments"].get<std::string>()),
            json::parse(R"({"query": "他说\"你好\"\n第二行", "opts": {"tags": ["a", "b"], "limit": 5, "exact": false},
                           "emoji": "😀", "path": "C:\\tmp\\x.txt"})"));
  // tool-call-inside-reasoning (v31)
  b = user("Shanghai?", true);
  b["tools"] = json::array({json::parse(R"({"type":"function","function":{"name":"get_current_weather"}})")});
  b["debug_model_text"] =
      "The user wants Shanghai weather. I'll call the tool.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>"
      "get_current_weather<｜tool▁sep｜>{\"location\": \"Shanghai\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
  r = both(ctx, b);
  EXPECT_EQ(r.reasoning, "The user wants Shanghai weather. I'll call the tool.");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.finish, "tool_calls");
}

TEST(ChatText, StopStrings) {
  // D17: stop strings match content only and are never emitted; matched_stop is the string.
  ServeContext ctx = make_ctx();
  json b = user("q", true);
  b["stop"] = {"END", "never"};
  b["debug_model_text"] = "think END here</think>Hello END world";
  Result r = both(ctx, b);
  EXPECT_EQ(r.reasoning, "think END here");
  EXPECT_EQ(r.content, "Hello ");
  EXPECT_EQ(r.finish, "stop");
  EXPECT_EQ(r.matched_stop, "END");
}

TEST(ChatText, RefusalsAndHook) {
  ServeContext ctx = make_ctx();
  json b = user("Paris please", true);
  b["tools"] = json::array({kWeatherTool});
  for (json choice : {json("required"), json::parse(R"({"type":"function","function":{"name":"get_weather"}})")}) {
    b["tool_choice"] = choice;  // tool-choice-required-with-thinking: the 400 branch (D5)
    try {
      ChatSession::start(ctx, b.dump());
      FAIL() << "accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400);
      EXPECT_EQ(e.param, "tool_choice");
      EXPECT_NE(std::string(e.what()).find("tool_choice"), std::string::npos);
    }
  }
  ctx.debug_inject = false;
  json d = user("x", false);
  d["debug_model_text"] = "y";
  try {
    ChatSession::start(ctx, d.dump());
    FAIL() << "accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.param, "debug_model_text");
  }
}

TEST(ChatText, TokenizeAndDetokenize) {
  ServeContext ctx = make_ctx();
  // tok-special-literals-in-user-text: typed markers are text (D10).
  // The embedded (V3) tokenizer_config says add_bos_token true: a raw prompt gets one BOS (D6).
  ASSERT_TRUE(tok()->add_bos_token());
  EXPECT_EQ(tokenize_endpoint(ctx, R"({"prompt":"a   b"})")["tokens"], json::parse("[0, 67, 262, 291]"));
  json t = tokenize_endpoint(ctx, R"({"prompt":"Say <｜end▁of▁sentence｜> please","add_special_tokens":false})");
  EXPECT_EQ(t["tokens"], json::parse("[63006, 818, 28217, 523, 5487, 226, 2154, 5487, 226, 85, 51015, 28217, 32, 8033]"));
  EXPECT_EQ(t["count"], 14);
  EXPECT_EQ(t["max_model_len"], 4096);
  EXPECT_EQ(tokenize_endpoint(ctx, R"({"prompt":"<｜DSML｜function_calls>","add_special_tokens":false})")["tokens"],
            json::parse("[30, 28217, 10525, 7398, 28217, 8701, 4941, 12548, 32]"));
  // tok-roundtrip-whitespace-combining
  for (auto [text, ids] : std::vector<std::pair<std::string, std::string>>{
           {"a   b", "[67, 262, 291]"}, {"\n\n\n", "[6328]"}, {"A\u0301\u0302B", "[35, 17793, 75274, 36]"},
           {"def f():\n    return 1\n", "[3465, 285, 15536, 361, 1354, 223, 19, 201]"}}) {
    EXPECT_EQ(tokenize_endpoint(ctx, json{{"prompt", text}, {"add_special_tokens", false}}.dump())["tokens"], json::parse(ids)) << text;
    EXPECT_EQ(detokenize_endpoint(ctx, json{{"tokens", json::parse(ids)}}.dump())["text"], text);
  }
  // enc-v32-chat-vs-thinking-suffix / enc-prefill-continue-final through /tokenize `messages`.
  auto prompt_of = [&](const std::string& body) {
    json r = tokenize_endpoint(ctx, body);
    return detokenize_endpoint(ctx, json{{"tokens", r["tokens"]}, {"skip_special_tokens", false}}.dump())["text"].get<std::string>();
  };
  EXPECT_EQ(prompt_of(R"({"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Hi"}],
      "chat_template_kwargs":{"thinking":true}})"), "<｜begin▁of▁sentence｜>You are terse.<｜User｜>Hi<｜Assistant｜><think>");
  json pre = tokenize_endpoint(ctx, R"({"messages":[{"role":"user","content":"Write a haiku about rain"},
      {"role":"assistant","content":"Soft rain on","prefix":true}],"continue_final_message":true,"add_generation_prompt":false})");
  int bos = 0;
  for (const auto& id : pre["tokens"]) bos += id == 0;
  EXPECT_EQ(bos, 1);
  EXPECT_EQ(prompt_of(R"({"messages":[{"role":"user","content":"Write a haiku about rain"},
      {"role":"assistant","content":"Soft rain on"}],"continue_final_message":true})"),
            "<｜begin▁of▁sentence｜><｜User｜>Write a haiku about rain<｜Assistant｜></think>Soft rain on");
  // enc-v32-tools-without-system
  std::string p = prompt_of(json{{"messages", json::parse(R"([{"role":"user","content":"Weather in Oslo?"}])")},
                                 {"tools", json::array({kWeatherTool})}}.dump());
  EXPECT_EQ(p.rfind("<｜begin▁of▁sentence｜>\n\n## Tools", 0), 0u);
  EXPECT_NE(p.find("\"name\": \"get_weather\""), std::string::npos);
  EXPECT_TRUE(p.ends_with("</functions>\n<｜User｜>Weather in Oslo?<｜Assistant｜></think>")) << p;
  // Errors.
  try {
    detokenize_endpoint(ctx, R"({"tokens":[1,-2]})");
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(std::string(e.what()), "tokens[1]: expected a token id in [0, " + std::to_string(tok()->vocab_size()) + "), got -2");
  }
}

TEST(ChatText, SeparateReasoningAndParseFunctionCall) {
  ServeContext ctx = make_ctx();
  json r = separate_reasoning_endpoint(ctx, R"({"text":"a</think>b","reasoning_parser":"deepseek-v3","chat_template_kwargs":{"thinking":true}})");
  EXPECT_EQ(r, json::parse(R"({"reasoning_text":"a","text":"b"})"));
  r = separate_reasoning_endpoint(ctx, R"({"text":"a</think>b"})");  // not opened by the prompt: content
  EXPECT_EQ(r, json::parse(R"({"reasoning_text":"","text":"a</think>b"})"));
  r = parse_function_call_endpoint(ctx, json{{"text", "Hi<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\":\"Oslo\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>"},
                                                 {"tool_call_parser", "deepseekv31"}, {"tools", json::array({kWeatherTool})}}.dump());
  EXPECT_EQ(r, json::parse(R"({"normal_text":"Hi","calls":[{"tool_index":0,"name":"get_weather","parameters":"{\"city\": \"Oslo\"}"}]})"));
}

}  // namespace
}  // namespace ds
