// Stop strings over content deltas (D17) and the shared partial-suffix helper.
#include <gtest/gtest.h>

#include "parser_test_util.h"
#include "text/stop_matcher.h"

using ds::StopMatcher;

namespace {
struct StopRun {
  std::string text;
  std::vector<std::string> deltas;
  std::optional<std::size_t> stopped;
};
StopRun run(const std::vector<std::string>& stops, const std::vector<std::string>& chunks, bool include = false) {
  StopMatcher m(stops, include);
  StopRun r;
  for (const auto& c : chunks) {
    ds::StopOutput o = m.feed(c);
    if (!o.text.empty()) r.deltas.push_back(o.text);
    r.text += o.text;
    if (o.stopped) r.stopped = o.stopped;
  }
  ds::StopOutput o = m.finish();
  if (!o.text.empty()) r.deltas.push_back(o.text);
  r.text += o.text;
  EXPECT_EQ(r.stopped, m.matched_index());
  return r;
}
}  // namespace

TEST(PartialMatchSuffix, LongestProperPrefix) {
  std::vector<std::string_view> p{"</think>", "\n\n<x"};
  EXPECT_EQ(ds::partial_match_suffix("abc</th", p), 4u);
  EXPECT_EQ(ds::partial_match_suffix("abc\n", p), 1u);
  EXPECT_EQ(ds::partial_match_suffix("abc\n\n<", p), 3u);
  EXPECT_EQ(ds::partial_match_suffix("abc</think>", p), 0u);  // a whole pattern is not "partial"
  EXPECT_EQ(ds::partial_match_suffix("abc", p), 0u);
  EXPECT_EQ(ds::partial_match_suffix("", p), 0u);
}

TEST(StopMatcher, AcrossDeltasNeverEmitted) {
  StopRun r = run({"beta gamma"}, {"alpha", " beta", " gam", "ma delta", " epsilon"});
  EXPECT_EQ(r.text, "alpha ");
  EXPECT_EQ(r.stopped, std::optional<std::size_t>(0));
  for (const auto& d : r.deltas) EXPECT_EQ(d.find("beta"), std::string::npos) << d;
}

TEST(StopMatcher, HoldsOnlyWhatCanStillMatch) {
  StopMatcher m({"STOP"});
  EXPECT_EQ(m.feed("abcST").text, "abc");   // "ST" may grow into STOP
  EXPECT_EQ(m.feed("x").text, "STx");       // ruled out: released at once
  EXPECT_EQ(m.feed("S").text, "");
  EXPECT_EQ(m.finish().text, "S");          // end of stream releases the partial
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcher, EarliestCompletionWinsEveryChunking) {
  // "c" completes at offset 3, before "abcd" at 4: generation would have stopped at "c".
  for (const auto& ch : ds::testing::chunkings("xabcd")) {
    StopRun r = run({"abcd", "c"}, ch);
    EXPECT_EQ(r.text, "xab") << ds::testing::show(ch);
    EXPECT_EQ(r.stopped, std::optional<std::size_t>(1));
  }
  // Equal end: the longer string wins (its start is earlier).
  StopRun r = run({"d", "cd"}, {"abcd"});
  EXPECT_EQ(r.text, "ab");
  EXPECT_EQ(r.stopped, std::optional<std::size_t>(1));
}

TEST(StopMatcher, IncludeStopAndNothingAfter) {
  StopRun r = run({"END"}, {"a E", "NDb", "more"}, /*include=*/true);
  EXPECT_EQ(r.text, "a END");
}

TEST(StopMatcher, UnicodeAndRepeatedPrefixes) {
  // Overlapping self-prefix: "aab" inside "aaab"; UTF-8 stop split inside a character.
  for (const auto& ch : ds::testing::chunkings("xaaab")) EXPECT_EQ(run({"aab"}, ch).text, "xa");
  for (const auto& ch : ds::testing::chunkings("你好，世界")) EXPECT_EQ(run({"世界"}, ch).text, "你好，");
}

TEST(StopMatcher, EmptyListAndEmptyStringsMatchNothing) {
  EXPECT_EQ(run({}, {"a", "b"}).text, "ab");
  StopRun r = run({""}, {"a", "b"});
  EXPECT_EQ(r.text, "ab");
  EXPECT_FALSE(r.stopped.has_value());
}

TEST(StopMatcher, InterruptReleasesPartial) {
  StopMatcher m({"xyz"});
  EXPECT_EQ(m.feed("ax").text, "a");
  EXPECT_EQ(m.interrupt().text, "x");
  EXPECT_EQ(m.feed("yz").text, "yz");  // "x" + call + "yz" is not a match
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcher, PipelineMatchesContentNotReasoning) {
  // D17: a stop string inside reasoning does not stop; the same string in content does.
  auto opts = ds::testing::choice_opts(true, "", {"STOP"});
  for (const auto& ch : ds::testing::chunkings("why STOP here</think>ok STOP tail")) {
    auto o = ds::testing::run_choice(ch, opts);
    EXPECT_EQ(o.reasoning, "why STOP here") << ds::testing::show(ch);
    EXPECT_EQ(o.content, "ok ");
    EXPECT_EQ(o.matched_stop, std::optional<std::string>("STOP"));
  }
}
