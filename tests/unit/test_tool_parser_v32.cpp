// Tool-call parser `deepseekv32` (DSML; spec/serving.md 3.2, 3.5; D11, D15, D16). Every case is
// checked non-streaming and under every 1/2-way, byte-wise and sampled 3-way chunking.
#include <regex>

#include <gtest/gtest.h>

#include "parser_test_util.h"
#include "text/tool_parser_v32.h"

using ds::testing::Outcome;

namespace {
const std::string kOpen = "\n\n<｜DSML｜function_calls>\n";
const std::string kClose = "</｜DSML｜function_calls>";

std::string invoke(const std::string& name, const std::string& body) {
  return "<｜DSML｜invoke name=\"" + name + "\">\n" + body + "</｜DSML｜invoke>\n";
}
std::string param(const std::string& k, const std::string& v, bool str) {
  return "<｜DSML｜parameter name=\"" + k + "\" string=\"" + (str ? "true" : "false") + "\">" + v +
         "</｜DSML｜parameter>\n";
}

/// Runs `text` whole and under every chunking through the v32 parser (chat mode, no reasoning);
/// all runs must agree; returns the whole run.
Outcome check(const std::string& text, std::vector<std::string> tool_names = {}) {
  auto opts = ds::testing::choice_opts(false, "deepseekv32");
  opts.separate_reasoning = false;
  opts.tools.tool_names = std::move(tool_names);
  Outcome whole = ds::testing::run_choice({text}, opts);
  for (const auto& ch : ds::testing::chunkings(text, 1500)) {
    Outcome s = ds::testing::run_choice(ch, opts);
    EXPECT_TRUE(ds::testing::same_result(whole, s)) << ds::testing::show(ch) << "\ncontent [" << s.content << "]";
    if (!ds::testing::same_result(whole, s)) break;
  }
  return whole;
}
}  // namespace

TEST(ToolParserV32, TypedParametersPrintedLikePython) {
  Outcome o = check(kOpen + invoke("get_weather", param("city", "Beijing", true) + param("days", "3", false)) + kClose);
  ASSERT_EQ(o.calls.size(), 1u);
  EXPECT_EQ(o.calls[0].name, "get_weather");
  EXPECT_EQ(o.calls[0].arguments, R"({"city": "Beijing", "days": 3})");  // json.dumps default separators
  EXPECT_EQ(o.content, "");
  EXPECT_EQ(o.finish_reason, "tool_calls");
  EXPECT_FALSE(o.malformed);
}

TEST(ToolParserV32, ValueTyping) {
  std::string body = param("s", "{\"looks\": \"json\"}", true) + param("n", "null", false) +
                     param("b", " true ", false) + param("f", "2.50", false) + param("arr", "[1, {\"x\": []}]", false) +
                     param("bad", " not json ", false) + param("nl", "line1\nline2 <tag> \"q\" \\", true) +
                     param("u", "中文 😀", true) + param("ws", "  padded  ", true) +
                     "<｜DSML｜parameter name=\"nostr\">7</｜DSML｜parameter>\n";
  Outcome o = check(kOpen + invoke("f", body) + kClose);
  ASSERT_EQ(o.calls.size(), 1u);
  EXPECT_EQ(o.calls[0].arguments,
            R"({"s": "{\"looks\": \"json\"}", "n": null, "b": true, "f": 2.5, "arr": [1, {"x": []}], )"
            R"("bad": "not json", "nl": "line1\nline2 <tag> \"q\" \\", "u": "中文 😀", "ws": "  padded  ", "nostr": 7})");
}

TEST(ToolParserV32, SeveralCallsZeroArgsDuplicateParam) {
  std::string text = "Checking both.\n\n<｜DSML｜function_calls>\n" + invoke("a", param("k", "1", false) + param("k", "2", false)) +
                     "<｜DSML｜invoke name=\"now\"/>\n" + invoke("b", "") + invoke("c", "\n  {\"x\": 1}\n") + kClose;
  Outcome o = check(text);
  ASSERT_EQ(o.calls.size(), 4u);
  EXPECT_EQ(o.content, "Checking both.");
  EXPECT_EQ(o.calls[0].arguments, R"({"k": 2})");  // last wins (SGLang)
  EXPECT_EQ(o.calls[1].name, "now");
  EXPECT_EQ(o.calls[1].arguments, "{}");
  EXPECT_EQ(o.calls[2].arguments, "{}");
  EXPECT_EQ(o.calls[3].arguments, R"({"x": 1})");
  for (int i = 0; i < 4; ++i) EXPECT_EQ(o.calls[i].index, i);
  EXPECT_EQ(o.calls[3].id, "call_000000000000000000000003");
}

TEST(ToolParserV32, ContentAroundBlocks) {
  // Only one "\n\n" directly before the opener belongs to the block.
  EXPECT_EQ(check("a\n\n\n<｜DSML｜function_calls>\n" + invoke("f", "") + kClose).content, "a\n");
  EXPECT_EQ(check("a <｜DSML｜function_calls>" + invoke("f", "") + kClose).content, "a ");
  // Text after a block is content again; a lone '<' or "\n\n" at the end is released at the end.
  Outcome o = check(kOpen + invoke("f", "") + kClose + " after<");
  EXPECT_EQ(o.content, " after<");
  EXPECT_EQ(o.calls.size(), 1u);
  EXPECT_EQ(check("prose mentioning ｜DSML｜ and <｜DSML｜invoke> text\n\n").content,
            "prose mentioning ｜DSML｜ and <｜DSML｜invoke> text\n\n");
  EXPECT_EQ(check("x\n\n<｜DSML｜function_call").content, "x\n\n<｜DSML｜function_call");
}

TEST(ToolParserV32, D15MalformedOrTruncatedBecomesContent) {
  const std::vector<std::string> bad = {
      "Sure.\n\n<｜DSML｜function_calls>\n" + invoke("f", "stray text " + param("a", "1", false)) + kClose,
      "Sure.\n\n<｜DSML｜function_calls>\n" + invoke("f", "{\"a\": 1") + kClose + "}",
      "Sure.\n\n<｜DSML｜function_calls>\njunk\n" + kClose,
      "Sure.\n\n<｜DSML｜function_calls>\n" + kClose,                                    // no invoke
      "Sure.\n\n<｜DSML｜function_calls>\n<｜DSML｜invoke name=\"\">\n</｜DSML｜invoke>\n" + kClose,  // empty name
      "Sure.\n\n<｜DSML｜function_calls>\n<｜DSML｜invoke name=\"f\">\n" + param("a", "1", false),  // truncated
      "Sure.\n\n<｜DSML｜function_calls>\n" + invoke("f", param("a", "1", false)),      // no closer
  };
  for (const auto& text : bad) {
    Outcome o = check(text);
    EXPECT_EQ(o.content, text) << "raw text must become content";
    EXPECT_TRUE(o.calls.empty());
    EXPECT_TRUE(o.malformed);
    EXPECT_EQ(o.finish_reason, "stop");  // never tool_calls (D15)
  }
  // A valid block followed by a malformed one: the calls stand, finish_reason is not tool_calls.
  std::string two = kOpen + invoke("f", "") + kClose + kOpen + "oops" + kClose;
  Outcome o = check(two);
  EXPECT_EQ(o.calls.size(), 1u);
  EXPECT_EQ(o.content, kOpen + "oops" + kClose);
  EXPECT_EQ(o.finish_reason, "stop");
}

TEST(ToolParserV32, UnknownNamesDropped) {
  Outcome o = check(kOpen + invoke("nope", "") + invoke("get_weather", param("city", "Oslo", true)) + kClose, {"get_weather"});
  ASSERT_EQ(o.calls.size(), 1u);
  EXPECT_EQ(o.calls[0].index, 0);
  EXPECT_EQ(o.calls[0].name, "get_weather");
  EXPECT_EQ(o.finish_reason, "tool_calls");
}

TEST(ToolParserV32, StreamEventsStartThenArguments) {
  ds::ToolParserV32 p;
  std::vector<ds::ToolEvent> ev = p.feed("Hi.\n");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].text, "Hi.");  // "\n" may open "\n\n<｜DSML｜..." and is held
  ev = p.feed("\n<｜DSML｜function_calls>\n" + invoke("f", param("a", "x", true)));
  EXPECT_TRUE(ev.empty());  // the block is held until its closer
  ev = p.feed(kClose);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].kind, ds::ToolEvent::Kind::CallStart);
  EXPECT_EQ(ev[0].name, "f");
  EXPECT_TRUE(std::regex_match(ev[0].id, std::regex("call_[0-9a-f]{24}"))) << ev[0].id;
  EXPECT_EQ(ev[1].kind, ds::ToolEvent::Kind::CallArguments);
  EXPECT_EQ(ev[1].index, 0);
  EXPECT_EQ(ev[1].text, R"({"a": "x"})");
  EXPECT_TRUE(p.finish().empty());
  EXPECT_TRUE(p.finish_as_tool_calls());
  // Random ids differ between calls.
  EXPECT_NE(ds::make_tool_call_id(), ds::make_tool_call_id());
}

TEST(ToolParserV32, FactoryNamesAndError) {
  EXPECT_EQ(ds::make_tool_parser("deepseekv32")->name(), "deepseekv32");
  EXPECT_EQ(ds::make_tool_parser("deepseekv31")->name(), "deepseekv31");
  try {
    ds::make_tool_parser("qwen25");
    FAIL() << "expected ToolParserError";
  } catch (const ds::ToolParserError& e) {
    EXPECT_NE(std::string(e.what()).find("--tool-call-parser"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("qwen25"), std::string::npos);
  }
}

TEST(ToolParserV32, ThinkingPipelineWithCall) {
  // Reasoning, then prose, then a call; the same with the call right inside reasoning (D13).
  auto opts = ds::testing::choice_opts(true, "deepseekv32");
  std::string block = kOpen + invoke("f", param("q", "1", false)) + kClose;
  for (const std::string& text : {"think</think>Prose." + block, "think" + block}) {
    Outcome whole = ds::testing::run_choice({text}, opts);
    EXPECT_EQ(whole.reasoning, "think");
    ASSERT_EQ(whole.calls.size(), 1u);
    EXPECT_EQ(whole.calls[0].arguments, R"({"q": 1})");
    EXPECT_EQ(whole.finish_reason, "tool_calls");
    for (const auto& ch : ds::testing::chunkings(text, 1500))
      ASSERT_TRUE(ds::testing::same_result(whole, ds::testing::run_choice(ch, opts))) << ds::testing::show(ch);
  }
}

TEST(ToolParserV32, LongArgumentInSmallDeltas) {
  // A 100 KB code argument in 7-byte deltas (the closer search resumes where it stopped).
  std::string code;
  for (int i = 0; code.size() < 100000; ++i) code += "line " + std::to_string(i) + ": if a < b { x = \"y\"; }\n";
  std::string text = kOpen + invoke("write", param("code", code, true)) + kClose;
  ds::ToolParserV32 p;
  std::vector<ds::ToolEvent> all;
  for (std::size_t i = 0; i < text.size(); i += 7) {
    auto ev = p.feed(std::string_view(text).substr(i, 7));
    all.insert(all.end(), ev.begin(), ev.end());
  }
  auto tail = p.finish();
  all.insert(all.end(), tail.begin(), tail.end());
  ds::ToolParseResult r = ds::collect_tool_events(all);
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(r.calls[0].arguments)["code"].get<std::string>(), code);
  EXPECT_EQ(r.content, "");
}
