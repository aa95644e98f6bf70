// The engine's constrained-decoding hook (Scheduler::advance + text/token_mask.h) on the fake model
// with uniform logits: every sampled sequence is a complete JSON text of the schema ending in EOS,
// min_tokens cannot hold EOS back once the JSON is complete, forced tokens open the grammar after
// </think>, and without the constraint the same sampling is not JSON.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "test_engine_fake.h"
#include "text/json_recognizer.h"
#include "text/json_schema.h"
#include "text/token_mask.h"

using namespace engine_test;

namespace {

// 16 ids as the fake model's vocabulary: 12 is EOS and 15 `</think>` (left out of the trie), 13 is
// the fake model's poison token (empty bytes: never allowed by the grammar). Every structural byte
// has a token of its own (as in a byte-level BPE vocabulary), so no prefix is a dead end.
const std::vector<std::string> kVocabBytes = {"{", "}", "\"", "\"city", "\":", " ", "Paris", "\"}", "{\"", "city",
                                              "1", "x\"}", "<eos>", "", ":", "</think>"};
constexpr int32_t kEos = 12, kThinkEnd = 15;

std::shared_ptr<const ds::JsonGrammar> grammar() {
  return std::make_shared<const ds::JsonGrammar>(ds::compile_json_schema(nlohmann::ordered_json::parse(
      R"({"type":"object","properties":{"city":{"type":"string","maxLength":12}},"required":["city"]})")));
}

std::shared_ptr<const ds::TokenTrie> trie() {
  std::vector<bool> inc(kVocabBytes.size(), true);
  inc[size_t(kEos)] = inc[size_t(kThinkEnd)] = false;
  return std::make_shared<const ds::TokenTrie>(kVocabBytes, inc);
}

std::unique_ptr<ds::Engine> flat_engine() {
  auto ex = std::make_unique<FakeExecutor>();
  ex->flat = true;
  ds::EngineOptions o;
  o.context_length = 512;
  o.max_running_requests = 8;
  o.page_size = 4;
  o.max_total_tokens = 1 << 14;
  return std::make_unique<ds::Engine>(std::move(ex), o);
}

ds::Request sampled(uint64_t seed, bool constrained, int32_t think_end = -1) {
  ds::Request q = req("c" + std::to_string(seed), {1}, 300);
  q.sampling.temperature = 1.0f;
  q.sampling.seed = seed;
  q.stop_token_ids = {kEos};
  if (constrained) q.constraint = std::make_shared<ds::JsonConstraint>(grammar(), trie(), q.stop_token_ids, think_end);
  return q;
}

std::string text_of(const std::vector<int32_t>& toks, size_t from = 0) {
  std::string s;
  for (size_t i = from; i < toks.size(); ++i)
    if (toks[i] != kEos) s += kVocabBytes[size_t(toks[i])];
  return s;
}

bool is_json_of_schema(const std::string& s) {
  ds::JsonRecognizer r(grammar());
  return r.feed(s) && r.can_end();
}

}  // namespace

TEST(EngineConstrained, EverySampledSequenceIsCompleteJsonEndingInEos) {
  auto e = flat_engine();
  e->start();
  int unconstrained_json = 0;
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    Result r = collect(*e->submit(sampled(seed, true)));
    ASSERT_EQ(r.last.finish, ds::FinishReason::Stop) << seed << ": " << text_of(r.tokens);
    EXPECT_EQ(r.last.matched_stop, kEos);
    EXPECT_EQ(r.tokens.back(), kEos);
    EXPECT_TRUE(is_json_of_schema(text_of(r.tokens))) << seed << ": " << text_of(r.tokens);
    Result u = collect(*e->submit(sampled(seed, false)));
    unconstrained_json += is_json_of_schema(text_of(u.tokens));
  }
  EXPECT_EQ(unconstrained_json, 0);  // the same sampling without the grammar: never this JSON
}

TEST(EngineConstrained, MinTokensCannotHoldEosOnceComplete) {
  auto e = flat_engine();
  e->start();
  ds::Request q = sampled(3, true);
  q.min_new_tokens = 250;  // far more than the JSON needs
  Result r = collect(*e->submit(q));
  EXPECT_EQ(r.last.finish, ds::FinishReason::Stop);
  EXPECT_LT(r.tokens.size(), 250u);
  EXPECT_TRUE(is_json_of_schema(text_of(r.tokens)));
}

TEST(EngineConstrained, ForcedThinkEndOpensTheGrammar) {
  auto e = flat_engine();
  e->start();
  for (uint64_t seed = 20; seed < 24; ++seed) {
    ds::Request q = sampled(seed, true, kThinkEnd);
    q.forced_output = {6, 1, 9, kThinkEnd};  // free reasoning "Paris}city", then </think>
    Result r = collect(*e->submit(q));
    ASSERT_GE(r.tokens.size(), 5u);
    EXPECT_EQ(std::vector<int32_t>(r.tokens.begin(), r.tokens.begin() + 4), q.forced_output);
    EXPECT_EQ(r.last.finish, ds::FinishReason::Stop);
    EXPECT_TRUE(is_json_of_schema(text_of(r.tokens, 4))) << text_of(r.tokens, 4);
  }
}
