// Prompt log-probabilities through the engine (Request.prompt_logprob_start; OpenAI echo+logprobs,
// SGLang /generate logprob_start_len) on the real tiny-a model: the logprob of prompt token p is
// the log-softmax of position p-1's logits in a direct model forward (private cache, all_logits),
// whatever the chunking or the radix cache's state; position 0 has none.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <vector>

#include "engine/engine.h"
#include "model/deepseek_v32.h"
#include "tools/make_model.h"
#include "tiny_model_util.h"

namespace fs = std::filesystem;
using namespace ds;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<DeepseekV32> tiny() { return tinyutil::tiny_a("ds_prompt_lp_test"); }

EngineOptions opts(int chunk, bool radix) {
  EngineOptions o;
  o.context_length = 1024;
  o.page_size = 8;
  o.max_total_tokens = 4096;
  o.chunked_prefill_size = chunk;
  o.disable_radix_cache = !radix;
  return o;
}

using tinyutil::prompt;

Request req(std::string id, std::vector<int32_t> p, int max_new, int lp_start, int top) {
  Request r;
  r.id = std::move(id);
  r.prompt_ids = std::move(p);
  r.max_new_tokens = max_new;
  r.sampling.temperature = 0.0f;
  r.ignore_eos = true;
  r.prompt_logprob_start = lp_start;
  r.top_logprobs = top;
  return r;
}

struct Out {
  std::vector<TokenEvent> events;
};
Out collect(RequestStream& s) {
  Out o;
  const auto deadline = std::chrono::steady_clock::now() + 60000ms;
  while (std::chrono::steady_clock::now() < deadline) {
    auto ev = s.pop(50ms);
    if (!ev) continue;
    o.events.push_back(*ev);
    if (ev->finished()) return o;
  }
  ADD_FAILURE() << "request " << s.id() << " did not finish";
  return o;
}

// Reference: every row's logits of one private-cache forward over the whole prompt.
std::vector<std::vector<float>> direct_rows(const std::vector<int32_t>& toks) {
  auto m = tiny();
  auto cache = m->new_cache();
  BatchPlan plan;
  plan.segments.push_back(Segment{cache.get(), 0, toks, true});
  Logits lg = m->forward(plan);
  std::vector<std::vector<float>> rows;
  for (size_t i = 0; i < toks.size(); ++i) rows.emplace_back(lg.row(0, int(i)), lg.row(0, int(i)) + lg.vocab);
  return rows;
}

// log-softmax computed here independently (FP64 log-sum-exp).
double log_softmax(const std::vector<float>& row, int32_t t) {
  double mx = -INFINITY;
  for (float v : row) mx = std::max(mx, double(v));
  double s = 0;
  for (float v : row) s += std::exp(double(v) - mx);
  return double(row[size_t(t)]) - mx - std::log(s);
}

}  // namespace

// Start 0, top 3: entry 0 is the first token with no logprob; entry p (p >= 1) is the
// log-softmax of the direct forward's row p-1 at token p (tolerance 1e-6: the engine rounds
// the FP64 value to float once); the top-3 list is sorted and its first id is the row's argmax.
// One pass, chunks of 16 and 7 give bit-identical values (D27: chunking never changes a row).
TEST(PromptLogprobs, EqualLogSoftmaxOfDirectForwardAnyChunking) {
  const auto toks = prompt(40, 5);
  const auto rows = direct_rows(toks);
  std::vector<std::vector<PromptTokenLogprob>> runs;
  for (int chunk : {0, 16, 7}) {
    Engine e(make_deepseek_executor(tiny()), opts(chunk, false));
    e.start();
    Out o = collect(*e.submit(req("c" + std::to_string(chunk), toks, 2, 0, 3)));
    ASSERT_EQ(o.events.size(), 2u);
    EXPECT_TRUE(o.events[1].prompt_logprobs.empty());  // only on the first event
    runs.push_back(o.events[0].prompt_logprobs);
  }
  const auto& lp = runs[0];
  ASSERT_EQ(lp.size(), toks.size());
  EXPECT_EQ(lp[0].token, toks[0]);
  EXPECT_FALSE(lp[0].logprob.has_value());
  EXPECT_TRUE(lp[0].top.empty());
  for (size_t p = 1; p < toks.size(); ++p) {
    ASSERT_TRUE(lp[p].logprob.has_value()) << p;
    EXPECT_EQ(lp[p].token, toks[p]);
    EXPECT_NEAR(*lp[p].logprob, log_softmax(rows[p - 1], toks[p]), 1e-6) << p;
    ASSERT_EQ(lp[p].top.size(), 3u);
    const auto& row = rows[p - 1];
    EXPECT_EQ(lp[p].top[0].first, int32_t(std::max_element(row.begin(), row.end()) - row.begin()));
    EXPECT_GE(lp[p].top[0].second, lp[p].top[1].second);
    EXPECT_GE(lp[p].top[1].second, lp[p].top[2].second);
    EXPECT_NEAR(lp[p].top[1].second, log_softmax(row, lp[p].top[1].first), 1e-6);
  }
  for (size_t r = 1; r < runs.size(); ++r) {
    ASSERT_EQ(runs[r].size(), lp.size());
    for (size_t p = 1; p < lp.size(); ++p) {
      EXPECT_EQ(*runs[r][p].logprob, *lp[p].logprob) << "run " << r << " position " << p;
      EXPECT_EQ(runs[r][p].top, lp[p].top);
    }
  }
}

// The radix cache holds the whole prompt (a previous identical request), page size 8. A request
// with prompt logprobs from 0 must take no cached tokens; from 20 it may take the pages before
// position 19 (two pages = 16 tokens) and reports positions 20..39 only, equal to the cold values.
TEST(PromptLogprobs, RadixPrefixHitsStopBeforeScoredPositions) {
  const auto toks = prompt(40, 9);
  const auto rows = direct_rows(toks);
  Engine e(make_deepseek_executor(tiny()), opts(0, true));
  e.start();
  Out warm = collect(*e.submit(req("warm", toks, 2, -1, -1)));
  EXPECT_TRUE(warm.events[0].prompt_logprobs.empty());
  Out again = collect(*e.submit(req("again", toks, 1, -1, -1)));
  EXPECT_EQ(again.events.back().cached_tokens, 32);  // the cache works: 4 pages of 8 (< 40 - 1)

  Out all = collect(*e.submit(req("all", toks, 1, 0, 0)));
  EXPECT_EQ(all.events.back().cached_tokens, 0);
  ASSERT_EQ(all.events[0].prompt_logprobs.size(), 40u);

  Out tail = collect(*e.submit(req("tail", toks, 1, 20, 0)));
  EXPECT_EQ(tail.events.back().cached_tokens, 16);
  const auto& lp = tail.events[0].prompt_logprobs;
  ASSERT_EQ(lp.size(), 20u);
  for (size_t i = 0; i < lp.size(); ++i) {
    EXPECT_EQ(lp[i].token, toks[20 + i]);
    EXPECT_EQ(*lp[i].logprob, *all.events[0].prompt_logprobs[20 + i].logprob) << i;
    EXPECT_NEAR(*lp[i].logprob, log_softmax(rows[19 + i], toks[20 + i]), 1e-6);
    EXPECT_TRUE(lp[i].top.empty());
  }
}

// max_new_tokens 0 with prompt logprobs scores the prompt and ends with "length", 0 tokens.
TEST(PromptLogprobs, ZeroNewTokensScoresThePromptOnly) {
  const auto toks = prompt(12, 3);
  const auto rows = direct_rows(toks);
  Engine e(make_deepseek_executor(tiny()), opts(0, true));
  e.start();
  Out o = collect(*e.submit(req("score", toks, 0, 1, 1)));
  ASSERT_EQ(o.events.size(), 1u);
  const TokenEvent& ev = o.events[0];
  EXPECT_EQ(ev.finish, FinishReason::Length);
  EXPECT_EQ(ev.token, -1);
  EXPECT_EQ(ev.completion_tokens, 0);
  ASSERT_EQ(ev.prompt_logprobs.size(), 11u);  // positions 1..11
  EXPECT_NEAR(*ev.prompt_logprobs[10].logprob, log_softmax(rows[10], toks[11]), 1e-6);
  ASSERT_EQ(ev.prompt_logprobs[10].top.size(), 1u);
}
