// Scheduler over the paged KV pool on the fake model in `hash` mode (its next token depends on
// every token read back through the page table): batching, chunked prefill, preemption, prefix
// cache hits, aborts and errors must give the same outputs as a request alone, and leave every
// page free or cached (the KV invariant, checked by state once the engine is idle).
#include <gtest/gtest.h>

#include <map>

#include "engine/engine.h"
#include "engine/scheduler.h"
#include "test_engine_fake.h"

namespace {

using namespace engine_test;
using namespace std::chrono_literals;

std::unique_ptr<ds::Engine> engine(ds::EngineOptions o, bool hash = true, std::chrono::milliseconds delay = 0ms) {
  auto ex = std::make_unique<FakeExecutor>();
  ex->hash = hash;
  ex->delay = delay;
  return std::make_unique<ds::Engine>(std::move(ex), o);
}

ds::EngineOptions opts(int page, int64_t total, int cap = 64) {
  ds::EngineOptions o;
  o.context_length = 512;
  o.max_running_requests = cap;
  o.page_size = page;
  o.max_total_tokens = total;
  return o;
}

std::vector<int32_t> prompt(int n, int seed) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back(int32_t((seed * 7 + i * 3 + i / 5) % 12));
  return p;
}

// Solo outputs of `prompts` (one engine, one request at a time, radix cache off).
std::vector<std::vector<int32_t>> solo(const std::vector<std::vector<int32_t>>& prompts, int max_new) {
  auto o = opts(4, 4096);
  o.disable_radix_cache = true;
  auto e = engine(o);
  e->start();
  std::vector<std::vector<int32_t>> out;
  for (size_t i = 0; i < prompts.size(); ++i) out.push_back(collect(*e->submit(req("s" + std::to_string(i), prompts[i], max_new))).tokens);
  return out;
}

void expect_clean(ds::Engine& e) {
  auto st = e.wait_idle(5000ms);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->invariant_error, "");
  EXPECT_EQ(st->owned_pages, 0);
  EXPECT_EQ(st->free_pages + st->cached_pages, st->total_pages);
  EXPECT_EQ(st->running, 0);
  EXPECT_EQ(st->waiting, 0);
}

// 16 distinct prompts of lengths 1..31 in one batch (chunks of 5, prefill budget 24 per step)
// equal each prompt alone; the batch really mixed requests (max batch 16).
TEST(EnginePaged, BatchedAndChunkedEqualSolo) {
  std::vector<std::vector<int32_t>> ps;
  for (int i = 0; i < 16; ++i) ps.push_back(prompt(1 + (i * 13) % 31, i));
  auto want = solo(ps, 12);
  auto o = opts(4, 4096);
  o.chunked_prefill_size = 5;
  o.max_prefill_tokens = 24;
  auto e = engine(o);
  std::vector<std::shared_ptr<ds::RequestStream>> ss;
  for (size_t i = 0; i < ps.size(); ++i) ss.push_back(e->submit(req("b" + std::to_string(i), ps[i], 12)));
  e->start();
  for (size_t i = 0; i < ps.size(); ++i) EXPECT_EQ(collect(*ss[i]).tokens, want[i]) << i;
  EXPECT_EQ(e->max_batch_seen(), 16);
  expect_clean(*e);
}

// A pool of 12 pages x 4 slots for 8 requests needing 8 pages each: decodes run out of pages, the
// newest requests are preempted (pages freed, recomputed later) and all outputs still equal solo.
TEST(EnginePaged, PreemptionUnderTinyPoolGivesSameOutputs) {
  std::vector<std::vector<int32_t>> ps;
  for (int i = 0; i < 8; ++i) ps.push_back(prompt(10 + i, 100 + i));
  auto want = solo(ps, 20);
  for (bool radix : {true, false}) {
    auto o = opts(4, 48);
    o.disable_radix_cache = !radix;
    auto e = engine(o);
    std::vector<std::shared_ptr<ds::RequestStream>> ss;
    for (size_t i = 0; i < ps.size(); ++i) ss.push_back(e->submit(req("p" + std::to_string(i), ps[i], 20)));
    e->start();
    for (size_t i = 0; i < ps.size(); ++i) EXPECT_EQ(collect(*ss[i]).tokens, want[i]) << i << " radix " << radix;
    auto st = e->wait_idle(5000ms);
    ASSERT_TRUE(st.has_value());
    EXPECT_GT(st->preemptions, 0u);
    expect_clean(*e);
  }
}

// A prompt sharing 17 tokens with an earlier one reuses 4 pages (16 tokens, page aligned) and
// reports them as cached_tokens (D20); its output equals a cold run. Repeating a prompt exactly
// reuses all whole pages before the last token. /flush_cache then empties the tree.
TEST(EnginePaged, PrefixCacheHitEqualsColdRun) {
  auto a = prompt(23, 1);
  auto b = a;
  b.resize(17);
  for (int32_t t : prompt(9, 2)) b.push_back(t);
  auto want = solo({a, b}, 8);
  auto e = engine(opts(4, 4096));
  e->start();
  auto ra = collect(*e->submit(req("a", a, 8)));
  EXPECT_EQ(ra.tokens, want[0]);
  EXPECT_EQ(ra.last.cached_tokens, 0);
  auto rb = collect(*e->submit(req("b", b, 8)));
  EXPECT_EQ(rb.tokens, want[1]);
  EXPECT_EQ(rb.last.cached_tokens, 16);
  auto ra2 = collect(*e->submit(req("a2", a, 8)));
  EXPECT_EQ(ra2.tokens, want[0]);
  EXPECT_EQ(ra2.last.cached_tokens, 20);  // 22 computable tokens -> 5 whole pages
  auto st = e->wait_idle(5000ms);
  ASSERT_TRUE(st.has_value());
  EXPECT_GT(st->cached_pages, 0);
  expect_clean(*e);
  EXPECT_TRUE(e->flush_cache());
  st = e->wait_idle(5000ms);
  EXPECT_EQ(st->cached_pages, 0);
  EXPECT_EQ(st->free_pages, st->total_pages);
  auto ra3 = collect(*e->submit(req("a3", a, 8)));
  EXPECT_EQ(ra3.tokens, want[0]);
  EXPECT_EQ(ra3.last.cached_tokens, 0);
}

// Aborted (queued and running), failed (poison) and finished requests return every page: checked
// on the idle engine's accounting, not by timing.
TEST(EnginePaged, AbortsAndErrorsReturnEveryPage) {
  auto e = engine(opts(4, 400, 8), true, 1ms);
  e->start();
  std::vector<std::shared_ptr<ds::RequestStream>> ss;
  for (int i = 0; i < 12; ++i) ss.push_back(e->submit(req("x" + std::to_string(i), prompt(5 + i, i), 1000)));
  auto bad = e->submit(req("bad", {1, 2, kPoison}, 5));
  ASSERT_TRUE(ss[0]->pop(2000ms).has_value());
  for (auto& s : ss) s->abort();
  for (auto& s : ss) EXPECT_EQ(collect(*s).last.finish, ds::FinishReason::Abort);
  EXPECT_EQ(collect(*bad).last.finish, ds::FinishReason::Error);
  expect_clean(*e);
  EXPECT_EQ(e->in_flight(), 0);
}

// A prompt that can never fit the pool is refused with a clear error; a request that fits alone
// but would outgrow the pool stops with "length" at the pool size.
TEST(EnginePaged, RequestThatCanNeverFitGetsClearError) {
  auto e = engine(opts(4, 16));
  e->start();
  auto r = collect(*e->submit(req("huge", prompt(16, 3), 4)));
  EXPECT_EQ(r.last.finish, ds::FinishReason::Error);
  EXPECT_EQ(r.last.error, "The input (16 tokens) does not fit in the KV cache (16 tokens from --max-total-tokens and "
                          "--page-size); it can never be scheduled.");
  EXPECT_TRUE(r.last.invalid_request);
  auto g = collect(*e->submit(req("grow", prompt(10, 3), 100)));
  EXPECT_EQ(g.last.finish, ds::FinishReason::Length);
  EXPECT_EQ(g.tokens.size(), 6u);
  expect_clean(*e);
  EXPECT_THROW(engine(opts(4, 3)), std::invalid_argument);
  EXPECT_THROW(ds::parse_schedule_policy("lifo"), std::invalid_argument);
}

// lpm admits the queued request with the longest cached prefix first; fcfs keeps arrival order.
// Driven through the Scheduler directly (no thread), one running slot.
TEST(EnginePaged, LpmPrefersLongestCachedPrefix) {
  for (auto policy : {ds::SchedulePolicy::Fcfs, ds::SchedulePolicy::Lpm}) {
    FakeExecutor ex;
    ex.hash = true;
    auto o = opts(4, 4096, 1);
    o.policy = policy;
    ds::Scheduler s(ex, o);
    auto mk = [&](const std::string& id, std::vector<int32_t> p) {
      auto st = std::make_shared<ds::RequestStream>(id);
      auto q = req(id, std::move(p), 1);
      s.add(std::make_unique<ds::SchedRequest>(q, st, 1, 0));
      return st;
    };
    auto warm = mk("warm", prompt(13, 5));
    while (!s.idle()) s.step();
    auto cold = mk("cold", prompt(13, 6));
    auto hit = mk("hit", prompt(13, 5));
    s.step();  // one slot: exactly one of them ran its prefill and finished (max_new 1)
    EXPECT_EQ(cold->drain().size(), policy == ds::SchedulePolicy::Fcfs ? 1u : 0u);
    EXPECT_EQ(hit->drain().size(), policy == ds::SchedulePolicy::Fcfs ? 0u : 1u);
    while (!s.idle()) s.step();
    EXPECT_EQ(s.stats().invariant_error, "");
  }
}

}  // namespace
