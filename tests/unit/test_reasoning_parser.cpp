// Reasoning parser `deepseek-v3` (spec/serving.md 2, Appendix B; D13, D14): own cases, each run
// under every 1/2-way, byte-wise and sampled 3-way chunking against the non-streaming split.
#include <gtest/gtest.h>

#include "parser_test_util.h"
#include "text/reasoning_parser.h"

using ds::ReasoningParser;
using ds::ReasoningParserOptions;

namespace {
ReasoningParserOptions opts(bool thinking, std::vector<std::string> markers = ReasoningParserOptions::default_tool_start_markers()) {
  ReasoningParserOptions o;
  o.start_in_reasoning = thinking;
  o.tool_start_markers = std::move(markers);
  return o;
}

/// Expects `text` to split into (reasoning, content) as a whole and under every chunking.
void expect_split(const std::string& text, const ReasoningParserOptions& o, const std::string& reasoning,
                  const std::string& content) {
  ds::ReasoningDelta whole = ds::separate_reasoning(text, o);
  EXPECT_EQ(whole.reasoning, reasoning) << "text: " << text;
  EXPECT_EQ(whole.content, content) << "text: " << text;
  for (const auto& ch : ds::testing::chunkings(text)) {
    ReasoningParser p(o);
    std::string r, c;
    bool content_started = false;
    for (const auto& piece : ch) {
      ds::ReasoningDelta d = p.feed(piece);
      if (!d.reasoning.empty()) {
        EXPECT_FALSE(content_started) << "reasoning after content";
      }
      r += d.reasoning;
      c += d.content;
      content_started = content_started || !d.content.empty();
    }
    ds::ReasoningDelta d = p.finish();
    r += d.reasoning;
    c += d.content;
    ASSERT_EQ(r, reasoning) << ds::testing::show(ch);
    ASSERT_EQ(c, content) << ds::testing::show(ch);
  }
}
}  // namespace

TEST(ReasoningParser, ThinkingSplitsAtFirstEndTag) {
  expect_split("a</think>b", opts(true), "a", "b");
  expect_split("step 1\nstep 2</think>\n\nAnswer: 42", opts(true), "step 1\nstep 2", "\n\nAnswer: 42");
  expect_split("</think>only content", opts(true), "", "only content");
  expect_split("r</think>c</think>d<think>e", opts(true), "r", "c</think>d<think>e");
}

TEST(ReasoningParser, UnterminatedReasoningStaysReasoning) {
  expect_split("still thinking when max_tokens hit", opts(true), "still thinking when max_tokens hit", "");
  expect_split("ends in a partial </thi", opts(true), "ends in a partial </thi", "");
  expect_split("x < y and a<b", opts(true), "x < y and a<b", "");
  expect_split("", opts(true), "", "");
}

TEST(ReasoningParser, EchoedStartTagDroppedOnceAtStart) {
  expect_split("<think>plan</think>done", opts(true), "plan", "done");
  expect_split("<think><think>x</think>y", opts(true), "<think>x", "y");  // only one is an echo
  expect_split("a<think>b</think>c", opts(true), "a<think>b", "c");       // not at start: text
  expect_split("<thin", opts(true), "<thin", "");
}

TEST(ReasoningParser, ChatModeIsContent) {
  expect_split("Hello there.", opts(false), "", "Hello there.");
  expect_split("</think>Paris.", opts(false), "", "Paris.");                       // D14
  expect_split("Paris</think> and </think>", opts(false), "", "Paris</think> and </think>");
  expect_split("</think></think>x", opts(false), "", "</think>x");                // only the first
  expect_split(" </think>x", opts(false), "", " </think>x");                      // not at the start
  expect_split("</thi", opts(false), "", "</thi");
  // The model opening reasoning itself at the very start (SGLang non-forced behaviour).
  expect_split("<think>hm</think>ok", opts(false), "hm", "ok");
}

TEST(ReasoningParser, D13ToolMarkerEndsReasoning) {
  const std::string dsml = "<｜DSML｜function_calls>\n<｜DSML｜invoke name=\"f\">\n</｜DSML｜invoke>\n</｜DSML｜function_calls>";
  expect_split("need f\n\n" + dsml, opts(true), "need f", "\n\n" + dsml);
  expect_split("need f\n" + dsml, opts(true), "need f\n", dsml);
  expect_split("need f" + dsml, opts(true), "need f", dsml);
  const std::string v31 = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>f<｜tool▁sep｜>{}<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
  expect_split("call it." + v31, opts(true), "call it.", v31);
  // </think> first: the marker is content anyway; marker first: a later </think> is content.
  expect_split("r</think>c" + v31, opts(true), "r", "c" + v31);
  expect_split("r" + v31 + "</think>", opts(true), "r", v31 + "</think>");
  // Without markers (tool parsing off) the markup stays reasoning.
  expect_split("r\n\n" + dsml + "</think>c", opts(true, {}), "r\n\n" + dsml, "c");
  // Trailing "\n\n" that never opens a block stays reasoning.
  expect_split("r\n\n", opts(true), "r\n\n", "");
  expect_split("r\n\n<｜DSML｜functio", opts(true), "r\n\n<｜DSML｜functio", "");
}

TEST(ReasoningParser, EndTagHeldNotLeaked) {
  ReasoningParser p(opts(true));
  EXPECT_EQ(p.feed("weighing it").reasoning, "weighing it");
  ds::ReasoningDelta d = p.feed("</th");
  EXPECT_EQ(d.reasoning, "");
  EXPECT_EQ(d.content, "");
  d = p.feed("ink>Ans");
  EXPECT_EQ(d.reasoning, "");
  EXPECT_EQ(d.content, "Ans");
  EXPECT_FALSE(p.in_reasoning());
  EXPECT_TRUE(p.reasoning_ended());
  EXPECT_EQ(p.feed("wer.").content, "wer.");
}

TEST(ReasoningParser, StartsOpenFollowsPrompt) {
  EXPECT_TRUE(ds::reasoning_starts_open("<｜User｜>hi<｜Assistant｜><think>"));
  EXPECT_FALSE(ds::reasoning_starts_open("<｜User｜>hi<｜Assistant｜></think>"));
  EXPECT_TRUE(ds::reasoning_starts_open("</think>x<｜end▁of▁sentence｜>\n</function_results>\n\n<think>"));
  EXPECT_FALSE(ds::reasoning_starts_open("<think>r</think>\n\n</think>"));
  EXPECT_TRUE(ds::reasoning_starts_open("<｜Assistant｜><think>partial reasoning continued"));  // continue_final_message
  EXPECT_FALSE(ds::reasoning_starts_open("no tags at all"));
}

TEST(ReasoningParser, MultiByteTextSplitAnywhere) {
  expect_split("思考中…😀</think>答案：四", opts(true), "思考中…😀", "答案：四");
}
