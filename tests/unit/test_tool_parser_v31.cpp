// Tool-call parser `deepseekv31` (spec/serving.md 3.1; D15). Every case is checked non-streaming
// and under every 1/2-way, byte-wise and sampled 3-way chunking.
#include <gtest/gtest.h>

#include "parser_test_util.h"
#include "text/tool_parser_v31.h"

using ds::testing::Outcome;

namespace {
const std::string kBegin = "<｜tool▁calls▁begin｜>";
const std::string kEnd = "<｜tool▁calls▁end｜>";
std::string call(const std::string& name, const std::string& args) {
  return "<｜tool▁call▁begin｜>" + name + "<｜tool▁sep｜>" + args + "<｜tool▁call▁end｜>";
}

Outcome check(const std::string& text) {
  auto opts = ds::testing::choice_opts(false, "deepseekv31");
  opts.separate_reasoning = false;
  Outcome whole = ds::testing::run_choice({text}, opts);
  for (const auto& ch : ds::testing::chunkings(text, 1500)) {
    Outcome s = ds::testing::run_choice(ch, opts);
    EXPECT_TRUE(ds::testing::same_result(whole, s)) << ds::testing::show(ch) << "\ncontent [" << s.content << "]";
    if (!ds::testing::same_result(whole, s)) break;
  }
  return whole;
}
}  // namespace

TEST(ToolParserV31, ArgumentsReprintedLikePython) {
  Outcome o = check("Let me check." + kBegin + call("get_weather", R"({"city":"上海","days":2,"x":[1.0,1e3]})") + kEnd);
  ASSERT_EQ(o.calls.size(), 1u);
  EXPECT_EQ(o.content, "Let me check.");
  EXPECT_EQ(o.calls[0].name, "get_weather");
  EXPECT_EQ(o.calls[0].arguments, R"({"city": "上海", "days": 2, "x": [1.0, 1000.0]})");
  EXPECT_EQ(o.finish_reason, "tool_calls");
}

TEST(ToolParserV31, SeveralCallsWhitespaceTolerated) {
  Outcome o = check(kBegin + call("a", "{}") + "\n" + call(" b ", R"({"k": "v"})") + kEnd + "\n");
  ASSERT_EQ(o.calls.size(), 2u);
  EXPECT_EQ(o.calls[0].arguments, "{}");
  EXPECT_EQ(o.calls[1].name, "b");
  EXPECT_EQ(o.calls[1].index, 1);
  EXPECT_EQ(o.calls[1].id, "call_000000000000000000000001");
  EXPECT_EQ(o.content, "\n");  // text after the block is content
}

TEST(ToolParserV31, D15MalformedOrTruncatedBecomesContent) {
  const std::vector<std::string> bad = {
      "Hi" + kBegin + call("a", "{not json}") + kEnd,
      "Hi" + kBegin + call("a", "[1, 2]") + kEnd,                     // not an object
      "Hi" + kBegin + "<｜tool▁call▁begin｜>a{}<｜tool▁call▁end｜>" + kEnd,  // no separator
      "Hi" + kBegin + call("", "{}") + kEnd,                          // no name
      "Hi" + kBegin + "text" + call("a", "{}") + kEnd,               // stray text
      "Hi" + kBegin + kEnd,                                           // no call
      "Hi" + kBegin + call("a", "{}"),                                // truncated: no block end
      "Hi" + kBegin + "<｜tool▁call▁begin｜>a<｜tool▁sep｜>{\"x\": ",   // truncated mid-arguments
  };
  for (const auto& text : bad) {
    Outcome o = check(text);
    EXPECT_EQ(o.content, text);
    EXPECT_TRUE(o.calls.empty());
    EXPECT_EQ(o.finish_reason, "stop");
  }
}

TEST(ToolParserV31, TextWithoutBlockPassesThrough) {
  Outcome o = check("Plain answer with <｜tool▁calls▁begi and a < sign");
  EXPECT_EQ(o.content, "Plain answer with <｜tool▁calls▁begi and a < sign");
  EXPECT_TRUE(o.calls.empty());
}
