// Token masks (src/text/token_mask.*): a small vocabulary with hand-derived answers, the
// JsonConstraint's logits (EOS only when complete, thinking block free), and the real DeepSeek-V3
// vocabulary: the trie walk equals feeding every token separately, with the time per mask printed.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "text/json_recognizer.h"
#include "text/json_schema.h"
#include "text/token_mask.h"
#include "text/tokenizer.h"

using ds::JsonGrammar;
using ds::JsonRecognizer;
using ds::TokenTrie;
using ojson = nlohmann::ordered_json;

namespace {

const char* kCitySchema = R"({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]})";

std::shared_ptr<const JsonGrammar> city_grammar() {
  return std::make_shared<const JsonGrammar>(ds::compile_json_schema(ojson::parse(kCitySchema)));
}

// Ids: 12 is EOS and 15 `</think>` (added tokens, left out of the trie), 13 is empty.
const std::vector<std::string> kSmallVocab = {"{", "}", "\"", "\"city", "\":", " ", "Paris", "\"}", "{\"", "city",
                                              "1", "x\"}", "<eos>", "", "\"c", "</think>"};

std::shared_ptr<const TokenTrie> small_trie() {
  std::vector<bool> inc(kSmallVocab.size(), true);
  inc[12] = inc[15] = false;
  return std::make_shared<const TokenTrie>(kSmallVocab, inc);
}

std::set<int> allowed(const ds::TokenBitmask& m, int vocab) {
  std::set<int> s;
  for (int id = 0; id < vocab; ++id)
    if ((m[size_t(id) / 64] >> (id % 64)) & 1) s.insert(id);
  return s;
}

std::set<int> mask_after(const std::string& prefix) {
  JsonRecognizer r(city_grammar());
  EXPECT_TRUE(r.feed(prefix)) << prefix;
  auto trie = small_trie();
  return allowed(ds::compute_token_mask(r, *trie), trie->vocab_size());
}

std::set<int> finite(const std::vector<float>& logits) {
  std::set<int> s;
  for (size_t i = 0; i < logits.size(); ++i)
    if (std::isfinite(logits[i])) s.insert(int(i));
  return s;
}

}  // namespace

TEST(TokenMask, SmallVocabularyHandDerived) {
  EXPECT_EQ(mask_after(""), (std::set<int>{0, 5, 8}));                 // "{", " ", "{\""
  EXPECT_EQ(mask_after("{"), (std::set<int>{2, 3, 5, 14}));             // a key must start; no "}"
  // A string value starts: `":` is an open quote then a colon inside the string.
  EXPECT_EQ(mask_after("{\"city\":"), (std::set<int>{2, 3, 4, 5, 7, 14}));
  // Inside the string: everything that does not close it into something invalid.
  EXPECT_EQ(mask_after("{\"city\":\"Pa"), (std::set<int>{0, 1, 2, 5, 6, 7, 8, 9, 10, 11}));
  EXPECT_EQ(mask_after("{\"city\":\"x\"}"), (std::set<int>{}));
}

TEST(TokenMask, ConstraintLogitsEosOnlyWhenComplete) {
  ds::JsonConstraint c(city_grammar(), small_trie(), {12}, -1);
  std::vector<float> logits(17, 1.0f);  // one more id than the tokenizer knows (padded model vocabulary)
  EXPECT_TRUE(c.apply(logits));
  EXPECT_EQ(finite(logits), (std::set<int>{0, 5, 8}));
  for (int t : {8, 9, 4, 5, 2, 6}) c.accept(t);  // {"city": "Paris
  logits.assign(17, 0.5f);
  EXPECT_TRUE(c.apply(logits));
  EXPECT_EQ(finite(logits), (std::set<int>{0, 1, 2, 5, 6, 7, 8, 9, 10, 11}));
  EXPECT_EQ(logits[6], 0.5f);  // allowed logits are untouched
  c.accept(7);                 // "}
  logits.assign(17, 2.0f);
  EXPECT_FALSE(c.apply(logits));  // only EOS remains
  EXPECT_EQ(finite(logits), (std::set<int>{12}));
  EXPECT_EQ(logits[12], 2.0f);
  EXPECT_FALSE(c.failed());
}

TEST(TokenMask, ConstraintStartsAfterThinkEnd) {
  ds::JsonConstraint c(city_grammar(), small_trie(), {12}, 15);
  std::vector<float> logits(16, 1.0f);
  for (int t : {6, 1, 9}) {  // reasoning text: anything, unconstrained (even "}")
    EXPECT_TRUE(c.apply(logits));
    EXPECT_EQ(finite(logits).size(), 16u);
    c.accept(t);
  }
  EXPECT_FALSE(c.active());
  c.accept(15);
  EXPECT_TRUE(c.active());
  EXPECT_TRUE(c.apply(logits));
  EXPECT_EQ(finite(logits), (std::set<int>{0, 5, 8}));
  c.accept(1);  // a forced token the grammar rejects switches the constraint off
  EXPECT_TRUE(c.failed());
  logits.assign(16, 1.0f);
  EXPECT_TRUE(c.apply(logits));
  EXPECT_EQ(finite(logits).size(), 16u);
}

TEST(TokenMask, TrieGroupsEqualBytesAndSkipsExcluded) {
  TokenTrie t({"ab", "a", "ab", "b", ""}, {true, true, true, false, true});
  EXPECT_EQ(t.ids().size(), 3u);  // "b" excluded, "" dropped
  EXPECT_TRUE(t.included(2));
  EXPECT_FALSE(t.included(3));
  EXPECT_FALSE(t.included(4));
  const auto& n = t.nodes();
  const auto& a = n[size_t(n[0].first_child)];
  EXPECT_EQ(a.byte, 'a');
  EXPECT_EQ(n[0].first_child, n[0].first_child);
  EXPECT_EQ(a.next_sibling, -1);
  const auto& ab = n[size_t(a.first_child)];
  EXPECT_EQ(ab.tok_end - ab.tok_begin, 2);
  EXPECT_EQ(t.ids()[size_t(ab.tok_begin)], 0);
  EXPECT_EQ(t.ids()[size_t(ab.tok_begin + 1)], 2);
}

// The real 129k vocabulary: the trie walk gives exactly the tokens that feeding each token's bytes
// to a copy of the recognizer accepts, at states covering every frame kind. Prints the time per mask.
TEST(TokenMask, RealVocabularyEqualsBruteForce) {
  auto tok = ds::Tokenizer::load(ds::Tokenizer::default_tokenizer_json(), true);
  auto t0 = std::chrono::steady_clock::now();
  auto trie = TokenTrie::for_tokenizer(*tok);
  const double build_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("trie: %d ids, %zu included, %zu nodes, built in %.1f ms\n", trie->vocab_size(), trie->ids().size(),
              trie->nodes().size(), build_ms);
  EXPECT_FALSE(trie->included(tok->eos_id()));
  EXPECT_FALSE(trie->included(*tok->token_to_id("</think>")));
  auto g = std::make_shared<const JsonGrammar>(ds::compile_json_schema(ojson::parse(
      R"({"type":"object","properties":{"city":{"type":"string"},"n":{"type":"number"},
          "tags":{"type":"array","items":{"enum":["red","green"]}}},"required":["city"]})")));
  for (const char* prefix : {"", "{", "{\"city\": ", "{\"city\":\"Pa", "{\"city\":\"x\\", "{\"city\":\"x\", \"n\": 1",
                             "{\"city\":\"x\",\"tags\":[", "{\"city\":\"x\",\"tags\":[\"gr"}) {
    JsonRecognizer r(g);
    ASSERT_TRUE(r.feed(prefix));
    auto s = std::chrono::steady_clock::now();
    ds::TokenBitmask m = ds::compute_token_mask(r, *trie);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s).count();
    const auto got = allowed(m, trie->vocab_size());
    std::set<int> want;
    for (int32_t id = 0; id < trie->vocab_size(); ++id) {
      if (!trie->included(id)) continue;
      JsonRecognizer copy = r;
      if (copy.feed(trie->bytes(id))) want.insert(id);
    }
    EXPECT_EQ(got, want) << prefix;
    EXPECT_FALSE(got.empty()) << prefix;
    std::printf("mask after %-28s %6zu allowed, %7.2f ms\n", ("'" + std::string(prefix) + "'").c_str(), got.size(), ms);
    // A ceiling far above the measured times (docs/constrained_decoding.md): catches a walk that
    // stopped pruning, not machine noise.
    EXPECT_LT(ms, 2000.0) << prefix;
  }
}

TEST(TokenMask, DeadEndAllowsEnd) {
  // The small vocabulary has no ':' token: after {"city" only whitespace continues, and once the
  // 32-byte whitespace run is used up nothing can: the end id is allowed instead of sampling from
  // an all -inf row.
  ds::JsonConstraint c(city_grammar(), small_trie(), {12}, -1);
  for (int t : {8, 9, 2}) c.accept(t);
  std::vector<float> logits(16, 1.0f);
  EXPECT_TRUE(c.apply(logits));
  EXPECT_EQ(finite(logits), (std::set<int>{5}));
  for (int i = 0; i < 32; ++i) c.accept(5);
  logits.assign(16, 1.0f);
  EXPECT_FALSE(c.apply(logits));
  EXPECT_EQ(finite(logits), (std::set<int>{12}));
  EXPECT_FALSE(c.failed());
}
