// Engine: continuous batching, stop conditions, abort, error isolation, seeding — on a fake model
// whose next token is (last token + 1) mod vocab, so expected outputs are known exactly.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "engine/engine.h"
#include "test_engine_fake.h"

namespace {

using namespace engine_test;
using namespace std::chrono_literals;

std::unique_ptr<ds::Engine> make_engine(int ctx = 64, int cap = 8, std::unique_ptr<FakeExecutor> ex = nullptr) {
  if (!ex) ex = std::make_unique<FakeExecutor>();
  ds::EngineOptions o;
  o.context_length = ctx;
  o.max_running_requests = cap;
  o.page_size = 4;
  o.max_total_tokens = 4096;
  return std::make_unique<ds::Engine>(std::move(ex), o);
}

TEST(Engine, GreedyUntilMaxTokens) {
  auto e = make_engine();
  e->start();
  auto s = e->submit(req("a", {1, 2}, 4));
  Result r = collect(*s);
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{3, 4, 5, 6}));
  EXPECT_EQ(r.last.finish, ds::FinishReason::Length);
  EXPECT_EQ(r.last.prompt_tokens, 2);
  EXPECT_EQ(r.last.completion_tokens, 4);
  EXPECT_FALSE(r.last.matched_stop.has_value());
}

TEST(Engine, StopsOnEosUnlessIgnored) {
  auto e = make_engine();
  e->start();
  auto q = req("eos", {1}, 10);
  q.stop_token_ids = {4};
  Result r = collect(*e->submit(q));
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{2, 3, 4}));  // the stop token is reported and counted
  EXPECT_EQ(r.last.finish, ds::FinishReason::Stop);
  ASSERT_TRUE(r.last.matched_stop.has_value());
  EXPECT_EQ(*r.last.matched_stop, 4);
  EXPECT_EQ(r.last.completion_tokens, 3);

  q.id = "ignore";
  q.ignore_eos = true;
  q.max_new_tokens = 5;
  Result r2 = collect(*e->submit(q));
  EXPECT_EQ(r2.tokens, (std::vector<int32_t>{2, 3, 4, 5, 6}));
  EXPECT_EQ(r2.last.finish, ds::FinishReason::Length);
}

TEST(Engine, StopsAtContextLength) {
  auto e = make_engine(/*ctx=*/6);
  e->start();
  Result r = collect(*e->submit(req("ctx", {1, 2, 3}, 100)));
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{4, 5, 6}));  // 3 + 3 == context length
  EXPECT_EQ(r.last.finish, ds::FinishReason::Length);
}

TEST(Engine, RejectsBadPromptsWithErrorEvents) {
  auto e = make_engine(/*ctx=*/4);
  e->start();
  Result r = collect(*e->submit(req("long", {1, 2, 3, 4}, 1)));
  EXPECT_EQ(r.last.finish, ds::FinishReason::Error);
  EXPECT_EQ(r.last.error, "The input (4 tokens) is longer than the model's context length (4 tokens).");
  Result r2 = collect(*e->submit(req("oov", {1, kVocab}, 1)));
  EXPECT_EQ(r2.last.finish, ds::FinishReason::Error);
  EXPECT_NE(r2.last.error.find("outside the vocabulary"), std::string::npos);
  Result r3 = collect(*e->submit(req("empty", {}, 1)));
  EXPECT_EQ(r3.last.finish, ds::FinishReason::Error);
  // Each is the request's fault (HTTP 400), not the server's.
  EXPECT_TRUE(r.last.invalid_request);
  EXPECT_TRUE(r2.last.invalid_request);
  EXPECT_TRUE(r3.last.invalid_request);
  // Still serving.
  Result ok = collect(*e->submit(req("ok", {1}, 2)));
  EXPECT_EQ(ok.tokens, (std::vector<int32_t>{2, 3}));
}

TEST(Engine, BatchesConcurrentRequests) {
  auto e = make_engine();
  std::vector<std::shared_ptr<ds::RequestStream>> streams;
  for (int i = 0; i < 4; ++i) streams.push_back(e->submit(req(std::string("r") + std::to_string(i), {int32_t(i)}, 3 + i)));
  e->start();  // all four are in the inbox: the first plan holds four prefills
  for (int i = 0; i < 4; ++i) {
    Result r = collect(*streams[size_t(i)]);
    std::vector<int32_t> want;
    for (int k = 1; k <= 3 + i; ++k) want.push_back(int32_t((i + k) % kVocab));
    EXPECT_EQ(r.tokens, want) << i;
  }
  EXPECT_EQ(e->max_batch_seen(), 4);
  EXPECT_EQ(e->steps(), 6u);  // the longest request needs 6 steps; others ride along
  EXPECT_EQ(e->in_flight(), 0);
}

TEST(Engine, RespectsMaxRunningRequests) {
  auto e = make_engine(64, /*cap=*/2);
  std::vector<std::shared_ptr<ds::RequestStream>> streams;
  for (int i = 0; i < 5; ++i) streams.push_back(e->submit(req(std::string("c") + std::to_string(i), {1}, 3)));
  e->start();
  for (auto& s : streams) EXPECT_EQ(collect(*s).tokens, (std::vector<int32_t>{2, 3, 4}));
  EXPECT_EQ(e->max_batch_seen(), 2);
}

TEST(Engine, AbortRemovesRequest) {
  auto ex = std::make_unique<FakeExecutor>();
  ex->delay = 2ms;
  auto e = make_engine(1 << 20, 8, std::move(ex));
  e->start();
  auto s = e->submit(req("abort", {1}, 1000000));
  ASSERT_TRUE(s->pop(2000ms).has_value());
  s->abort();
  Result r = collect(*s);
  EXPECT_EQ(r.last.finish, ds::FinishReason::Abort);
  EXPECT_EQ(e->in_flight(), 0);
}

TEST(Engine, ForwardErrorFailsOnlyTheGuiltyRequest) {
  auto e = make_engine();
  auto good = e->submit(req("good", {1}, 3));
  auto bad = e->submit(req("bad", {kPoison}, 3));
  e->start();
  Result rb = collect(*bad);
  EXPECT_EQ(rb.last.finish, ds::FinishReason::Error);
  EXPECT_EQ(rb.last.error, "forward failed: poison token");
  EXPECT_FALSE(rb.last.invalid_request);  // a forward failure is the server's (HTTP 500)
  Result rg = collect(*good);
  EXPECT_EQ(rg.tokens, (std::vector<int32_t>{2, 3, 4}));
  EXPECT_EQ(rg.last.finish, ds::FinishReason::Length);
}

TEST(Engine, SeededSamplingIsReproducible) {
  auto ex = std::make_unique<FakeExecutor>();
  ex->flat = true;
  auto e = make_engine(64, 8, std::move(ex));
  e->start();
  auto sampled = [&](std::optional<uint64_t> seed) {
    auto q = req("s", {1}, 20);
    q.sampling.temperature = 1.0f;
    q.sampling.seed = seed;
    return collect(*e->submit(q)).tokens;
  };
  auto a = sampled(11), b = sampled(11), c = sampled(12);
  EXPECT_EQ(a.size(), 20u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);  // 20 draws over 15 tokens: equal with probability 15^-20
}

TEST(Engine, StopAbortsPendingAndRunning) {
  auto ex = std::make_unique<FakeExecutor>();
  ex->delay = 1ms;
  auto e = make_engine(1 << 20, 1, std::move(ex));
  e->start();
  auto running = e->submit(req("run", {1}, 1000000));
  auto pending = e->submit(req("wait", {1}, 5));
  ASSERT_TRUE(running->pop(2000ms).has_value());
  e->stop();
  EXPECT_EQ(collect(*running).last.finish, ds::FinishReason::Abort);
  EXPECT_EQ(collect(*pending).last.finish, ds::FinishReason::Abort);
  EXPECT_THROW(e->submit(req("late", {1}, 1)), std::runtime_error);
}

}  // namespace
