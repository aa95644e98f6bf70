// Chat request parsing: SGLang pre-processing (spec/serving.md 1.4, D8, D9) and 400s naming the param.
#include <gtest/gtest.h>

#include "server/openai_protocol.h"

namespace {

ds::ApiError error_of(const std::string& body) {
  try {
    ds::parse_chat_request(body, 4);
  } catch (const ds::ApiError& e) {
    return e;
  }
  return ds::ApiError(0, "(accepted)");
}

TEST(ChatProtocol, PreprocessingAndFields) {
  auto r = ds::parse_chat_request(R"({"model":"m","messages":[{"role":"USER","content":[{"type":"text","text":"a"},
      {"type":"text","text":"b"}]},{"role":"assistant","content":null}],"temperature":0.5,"top_p":0.9,"top_k":5,
      "min_p":0.1,"seed":3,"max_tokens":7,"max_completion_tokens":9,"n":2,"stream":true,
      "stream_options":{"include_usage":true},"chat_template_kwargs":{"thinking":true},"unknown_field":1})", 4);
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[0].role, "system");  // empty system inserted
  EXPECT_EQ(r.messages[0].content, "");
  EXPECT_EQ(r.messages[1].role, "user");
  EXPECT_EQ(r.messages[1].content, "a b");  // parts joined with one space
  EXPECT_EQ(r.messages[2].content, "");     // null content
  EXPECT_EQ(r.model, "m");
  EXPECT_FLOAT_EQ(*r.temperature, 0.5f);
  EXPECT_FLOAT_EQ(*r.top_p, 0.9f);
  EXPECT_EQ(*r.top_k, 5);
  EXPECT_FLOAT_EQ(*r.min_p, 0.1f);
  EXPECT_EQ(*r.seed, 3u);
  EXPECT_EQ(*r.max_tokens, 9);  // max_completion_tokens wins
  EXPECT_EQ(r.max_tokens_param, "max_completion_tokens");
  EXPECT_EQ(r.n, 2);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_TRUE(r.thinking);
}

TEST(ChatProtocol, ContinueFinalMessageAndToolArguments) {
  auto r = ds::parse_chat_request(R"({"messages":[{"role":"system","content":"s"},{"role":"user","content":"q"},
      {"role":"assistant","content":"The answer is"}],"continue_final_message":true,
      "chat_template_kwargs":{"enable_thinking":false}})", 4);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(*r.assistant_prefix, "The answer is");
  EXPECT_FALSE(r.thinking);
  auto t = ds::parse_chat_request(R"({"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"",
      "tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"x\": 1}"}}]}]})", 4);
  ASSERT_EQ(t.messages[2].tool_calls.size(), 1u);
  EXPECT_EQ(t.messages[2].tool_calls[0].arguments.dump(), R"({"x":1})");
  EXPECT_EQ(error_of(R"({"messages":[{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":"{bad"}}]}]})").what(),
            std::string("Assistant tool call function.arguments must be valid JSON."));
}

TEST(ChatProtocol, ErrorsNameTheParameter) {
  struct Case {
    const char* body;
    const char* param;
    const char* message;
  } cases[] = {
      {R"({"model":"m"})", "messages", "messages: field required"},
      {R"({"messages":[]})", "messages", "messages: must not be empty"},
      {R"({"messages":"hi"})", "messages", "messages: expected an array, got string"},
      {R"({"messages":[{"role":"wizard","content":"x"}]})", "messages[0].role",
       "messages[0].role: 'wizard' is not one of system, user, assistant, tool, developer, function"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})", "messages[0].content[0]",
       "messages[0].content[0]: content part type 'image_url' is not supported (the model is text-only; only 'text' parts)"},
      {R"({"messages":[{"role":"user","content":"x"}],"temperature":-1})", "temperature", "temperature must be non-negative, got -1."},
      {R"({"messages":[{"role":"user","content":"x"}],"temperature":"hot"})", "temperature", "temperature: expected a number, got string"},
      {R"({"messages":[{"role":"user","content":"x"}],"top_p":0})", "top_p", "top_p must be in (0, 1], got 0."},
      {R"({"messages":[{"role":"user","content":"x"}],"top_k":0})", "top_k", "top_k must be -1 (disable), or at least 1, got 0."},
      {R"({"messages":[{"role":"user","content":"x"}],"n":5})", "n", "n must be between 1 and 4 (--max-running-requests), got 5."},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":-1})", "max_tokens", "max_tokens must be at least 0, got -1."},
      // Integers beyond int64 / int32 must not wrap into other values.
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":9223372036854775808})", "max_tokens",
       "max_tokens: 9223372036854775808 is out of range (an integer in [-2^63, 2^63 - 1])"},
      {R"({"messages":[{"role":"user","content":"x"}],"seed":18446744073709551615})", "seed",
       "seed: 18446744073709551615 is out of range (an integer in [-2^63, 2^63 - 1])"},
      // Beyond uint64 the JSON parser gives a float: still "out of range", not "expected an integer".
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":1e30})", "max_tokens",
       "max_tokens: 1e+30 is out of range (an integer in [-2^63, 2^63 - 1])"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":99999999999999999999})", "max_tokens",
       "max_tokens: 1e+20 is out of range (an integer in [-2^63, 2^63 - 1])"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":2.5})", "max_tokens",
       "max_tokens: expected an integer, got 2.5"},
      {R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]})", "tools[0].function",
       "tools[0].function: field required (an object with a string 'name')"},
      {R"({"messages":[{"role":"user","content":"x"}],"stop_token_ids":[4294967297]})", "stop_token_ids",
       "stop_token_ids: token ids must be in [0, 2147483647], got 4294967297"},
      {R"({"messages":[{"role":"user","content":"x"}],"stop":5})", "stop", "stop: expected a string or an array of strings, got number"},
      {R"({"messages":[{"role":"user","content":"x"}],"stop":["a",1]})", "stop", "stop: expected a string or an array of strings"},
      {R"({"messages":[{"role":"user","content":"x"}],"debug_model_text":{}})", "debug_model_text",
       "debug_model_text: expected a string or a non-empty array of strings"},
      {R"({"messages":[{"role":"user","content":"x"}],"tool_choice":"required"})", "tool_choice",
       "tool_choice \"required\" is not supported yet (needs constrained decoding); use \"auto\" or \"none\""},
      // An unknown value is invalid, not "not supported yet" (new-user trial).
      {R"({"messages":[{"role":"user","content":"x"}],"tool_choice":"maybe"})", "tool_choice",
       "tool_choice \"maybe\" is invalid: expected \"none\", \"auto\", \"required\" or "
       "{\"type\": \"function\", \"function\": {\"name\": ...}}"},
      {R"({"messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"function","function":{"name":"f"}}})",
       "tool_choice",
       "tool_choice {\"type\":\"function\",\"function\":{\"name\":\"f\"}} is not supported yet (needs constrained "
       "decoding); use \"auto\" or \"none\""},
  };
  for (const auto& c : cases) {
    ds::ApiError e = error_of(c.body);
    EXPECT_EQ(e.status, 400) << c.body;
    EXPECT_EQ(e.param, c.param) << c.body;
    EXPECT_EQ(std::string(e.what()), c.message) << c.body;
    EXPECT_EQ(ds::error_body(e)["error"]["type"], "invalid_request_error");
  }
  ds::ApiError bad_json = error_of("{not json");
  EXPECT_EQ(bad_json.status, 400);
  // nlohmann's "[json.exception.parse_error.101] " prefix is dropped; position and detail stay.
  EXPECT_EQ(std::string(bad_json.what()),
            "Invalid JSON body: parse error at line 1, column 3: syntax error while parsing object key - invalid "
            "literal; last read: '{no'; expected string literal");
  EXPECT_TRUE(ds::error_body(bad_json)["error"]["param"].is_null());
  std::string deep = R"({"messages":[{"role":"user","content":"x"}],"x":)" + std::string(70, '[') + std::string(70, ']') + "}";
  EXPECT_EQ(std::string(error_of(deep).what()), "Invalid request body: JSON nested deeper than 64 levels");
}

}  // namespace

namespace {

TEST(ChatProtocol, TextLayerFields) {
  auto r = ds::parse_chat_request(R"({"messages":[{"role":"user","content":"q"},
      {"role":"assistant","content":"Soft rain on","prefix":true}],"stop":["END","","]]"],
      "tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none","reasoning_effort":"high",
      "separate_reasoning":false,"stream_reasoning":false,"add_generation_prompt":false,
      "skip_special_tokens":false,"debug_model_text":["a","b"]})", 4);
  EXPECT_EQ(*r.assistant_prefix, "Soft rain on");  // DeepSeek's prefix:true continues like D9
  ASSERT_EQ(r.messages.size(), 2u);                 // inserted system + user
  EXPECT_TRUE(r.system_inserted);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"END", "]]"}));  // empty stop strings dropped
  EXPECT_TRUE(r.tools.empty());                                // D5: none -> no tool block
  EXPECT_TRUE(r.tool_choice_none);
  EXPECT_TRUE(r.thinking);  // reasoning_effort other than "none"
  EXPECT_FALSE(r.separate_reasoning);
  EXPECT_FALSE(r.stream_reasoning);
  EXPECT_FALSE(r.add_generation_prompt);
  EXPECT_FALSE(r.skip_special_tokens);
  EXPECT_TRUE(r.skip_special_tokens_given);
  EXPECT_EQ(r.debug_model_text, (std::vector<std::string>{"a", "b"}));
  auto t = ds::parse_chat_request(R"({"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"",
      "tool_calls":[{"function":{"name":"f","arguments":"{\"x\":1}"}}]}],"stop":"\n","reasoning_effort":"none",
      "chat_template_kwargs":{"thinking":true}})", 4);
  EXPECT_EQ(*t.messages[2].tool_calls[0].arguments_text, "{\"x\":1}");  // as sent (V3.1 renders it so)
  EXPECT_EQ(t.stop, std::vector<std::string>{"\n"});
  EXPECT_TRUE(t.thinking);  // chat_template_kwargs wins over reasoning_effort
  EXPECT_EQ(std::string(error_of(R"({"messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"function",
      "function":{"name":"f"}},"tools":[{"type":"function","function":{"name":"f"}}]})").what()).find("tool_choice"), 0u);
}

}  // namespace
