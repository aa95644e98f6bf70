// deepserve bench backends: payload shapes and stream parsing with synthetic arrival times
// (spec/serving.md 4.4, 4.5, 6.1).
#include <gtest/gtest.h>

#include "tools/bench_backends.h"

using namespace ds::bench;
using nlohmann::json;

namespace {
constexpr double kTol = 1e-9;  // sums/differences of exact decimal times

RequestResult fresh(double start, int requested) {
  RequestResult r;
  r.start_time = start;
  r.requested_output_len = requested;
  return r;
}
}  // namespace

TEST(BenchBackends, BackendNamesAndRoutes) {
  EXPECT_EQ(backend_api("sglang"), Api::Generate);
  EXPECT_EQ(backend_api("sglang-oai"), Api::Completions);
  EXPECT_EQ(backend_api("vllm"), Api::Completions);
  EXPECT_EQ(backend_api("openai"), Api::Completions);
  EXPECT_EQ(backend_api("sglang-oai-chat"), Api::Chat);
  EXPECT_EQ(backend_api("vllm-chat"), Api::Chat);
  EXPECT_EQ(backend_api("openai-chat"), Api::Chat);
  EXPECT_THROW(backend_api("trt"), std::invalid_argument);
  EXPECT_STREQ(api_path(Api::Chat), "/v1/chat/completions");
  EXPECT_EQ(default_port("sglang-oai-chat"), 30000);
  EXPECT_EQ(default_port("vllm"), 8000);
}

TEST(BenchBackends, PayloadShapes) {
  PayloadOptions o;
  o.model = "m";
  auto chat = build_payload(Api::Chat, "hi", 7, o);
  EXPECT_EQ(chat, json::parse(R"({"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.0,
    "max_completion_tokens":7,"stream":true,"ignore_eos":true,"stream_options":{"include_usage":true}})"));
  auto comp = build_payload(Api::Completions, "hi", 7, o);
  EXPECT_EQ(comp["prompt"], "hi");
  EXPECT_EQ(comp["max_tokens"], 7);
  EXPECT_EQ(comp["best_of"], 1);
  o.stream = false;
  o.ignore_eos = false;
  o.extra = json::parse(R"({"temperature":0.5,"chat_template_kwargs":{"thinking":true}})");
  auto gen = build_payload(Api::Generate, "hi", 7, o);
  EXPECT_EQ(gen["text"], "hi");
  EXPECT_EQ(gen["sampling_params"], json::parse(R"({"temperature":0.0,"max_new_tokens":7,"ignore_eos":false})"));
  EXPECT_EQ(gen["stream"], false);
  EXPECT_EQ(gen["temperature"], 0.5);  // --extra-request-body merges at the top level
  EXPECT_FALSE(gen.contains("stream_options"));
  auto chat2 = build_payload(Api::Chat, "hi", 7, o);
  EXPECT_EQ(chat2["temperature"], 0.5);  // extra wins over the default
  EXPECT_EQ(chat2["chat_template_kwargs"]["thinking"], true);
}

TEST(BenchBackends, ChatStreamTimings) {
  auto r = fresh(100.0, 9);
  StreamParser p(Api::Chat, r);
  p.feed(R"(data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})", 100.1);
  p.feed("", 100.1);
  p.feed(R"(data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]})", 100.3);
  p.feed(R"(data: {"choices":[{"index":0,"delta":{"reasoning_content":null,"content":"lo"}}]})", 100.45);
  p.feed(R"(data: {"choices":[{"index":0,"delta":{},"finish_reason":"length"}]})", 100.5);
  p.feed(R"(data: {"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}})", 100.55);
  p.feed("data: [DONE]", 100.6);
  p.finish();
  EXPECT_TRUE(r.success);
  EXPECT_NEAR(r.ttft, 0.3, kTol);
  ASSERT_EQ(r.itl.size(), 1u);
  EXPECT_NEAR(r.itl[0], 0.15, kTol);
  EXPECT_NEAR(r.latency, 0.6, kTol);  // last line, [DONE] included
  EXPECT_EQ(r.generated_text, "Hello");
  EXPECT_EQ(r.output_len, 5);
  EXPECT_EQ(r.server_prompt_tokens, 12);
  EXPECT_EQ(r.text_chunks, std::vector<std::string>{"lo"});
}

TEST(BenchBackends, ChatCountsReasoningAndFallsBackToRequestedLength) {
  auto r = fresh(0, 9);
  StreamParser p(Api::Chat, r);
  p.feed(R"(data: {"choices":[{"delta":{"reasoning_content":"think"}}]})", 0.2);
  p.feed(R"(data: {"choices":[{"delta":{"content":"x"}}]})", 0.5);
  p.feed("data: [DONE]", 0.5);
  p.finish();
  EXPECT_EQ(r.generated_text, "thinkx");
  EXPECT_NEAR(r.ttft, 0.2, kTol);
  EXPECT_EQ(r.output_len, 9);  // no usage chunk: the requested length, as bench_serving
}

TEST(BenchBackends, CompletionsStream) {
  auto r = fresh(1.0, 3);
  StreamParser p(Api::Completions, r);
  p.feed(R"(data: {"choices":[{"text":"a"}]})", 1.25);
  p.feed(R"(data: {"choices":[{"text":"bc"}]})", 1.5);
  p.feed(R"(data: {"choices":[{"text":""}],"usage":{"completion_tokens":3,"prompt_tokens":4}})", 1.75);
  p.feed("data: [DONE]", 2.0);
  p.finish();
  EXPECT_NEAR(r.ttft, 0.25, kTol);
  EXPECT_EQ(r.itl, std::vector<double>{0.25});
  EXPECT_NEAR(r.latency, 1.0, kTol);
  EXPECT_EQ(r.output_len, 3);
  EXPECT_EQ(r.generated_text, "abc");
}

TEST(BenchBackends, NativeStreamSplitsChunkGapPerToken) {
  auto r = fresh(0, 8);
  StreamParser p(Api::Generate, r);
  p.feed(R"(data: {"text":"a","meta_info":{"completion_tokens":1,"prompt_tokens":6}})", 0.25);
  p.feed(R"(data: {"text":"abc","meta_info":{"completion_tokens":3}})", 0.75);
  p.feed(R"(data: {"text":"abc","meta_info":{"completion_tokens":3}})", 0.8);  // no new tokens: skipped
  p.feed(R"(data: {"text":"abcd","meta_info":{"completion_tokens":4}})", 1.0);
  p.feed("data: [DONE]", 1.0);
  p.finish();
  EXPECT_NEAR(r.ttft, 0.25, kTol);
  ASSERT_EQ(r.itl.size(), 3u);
  EXPECT_NEAR(r.itl[0], 0.25, kTol);  // 0.5 s gap / 2 new tokens, twice
  EXPECT_NEAR(r.itl[1], 0.25, kTol);
  EXPECT_NEAR(r.itl[2], 0.25, kTol);  // from the last counted chunk (0.75), not the skipped one
  EXPECT_EQ(r.output_len, 4);
  EXPECT_EQ(r.generated_text, "abcd");
  EXPECT_EQ(r.server_prompt_tokens, 6);
}

TEST(BenchBackends, ErrorEventFailsTheRequest) {
  auto r = fresh(0, 4);
  StreamParser p(Api::Chat, r);
  p.feed(R"(data: {"choices":[{"delta":{"content":"x"}}]})", 0.1);
  p.feed(R"(data: {"error":{"message":"boom","code":500}})", 0.2);
  p.feed("data: [DONE]", 0.3);
  p.finish();
  EXPECT_FALSE(r.success);
  EXPECT_NE(r.error.find("boom"), std::string::npos);
  auto r2 = fresh(0, 4);
  StreamParser p2(Api::Chat, r2);
  p2.feed("data: {not json", 0.1);
  p2.finish();
  EXPECT_FALSE(r2.success);
}

TEST(BenchBackends, NonStreamingTtftIsLatency) {
  auto r = fresh(10.0, 5);
  parse_nonstream(Api::Chat,
                  R"({"choices":[{"message":{"role":"assistant","content":"hey"}}],"usage":{"prompt_tokens":3,"completion_tokens":2}})",
                  10.5, r);
  EXPECT_TRUE(r.success);
  EXPECT_NEAR(r.latency, 0.5, kTol);
  EXPECT_NEAR(r.ttft, 0.5, kTol);
  EXPECT_TRUE(r.itl.empty());
  EXPECT_EQ(r.output_len, 2);
  EXPECT_EQ(r.generated_text, "hey");
  auto bad = fresh(0, 5);
  parse_nonstream(Api::Completions, R"({"nope":1})", 1, bad);
  EXPECT_FALSE(bad.success);
}
