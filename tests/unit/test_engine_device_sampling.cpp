// Engine with an executor that samples "on the device" (ModelExecutor::forward_sample, the path the
// CUDA runner takes): the scheduler must use it only when every request of the step allows it, draw
// each request's uniform from its own RNG exactly as the CPU sampler would, and so give the same
// tokens as CPU sampling for the same seed.
#include <gtest/gtest.h>

#include <atomic>

#include "engine/engine.h"
#include "model/sampler.h"
#include "test_engine_fake.h"

namespace {

using namespace engine_test;

/// FakeExecutor whose forward_sample applies ds::sample_token's rule with the given uniform: an
/// RNG stand-in that returns exactly `u` (so the choice is sample_token's for that draw).
class DeviceSamplingExecutor : public FakeExecutor {
 public:
  std::atomic<int> sample_calls{0}, forward_calls{0};
  bool can_sample() const override { return true; }
  ds::Logits forward(const ds::BatchPlan& plan) override {
    ++forward_calls;
    return FakeExecutor::forward(plan);
  }
  std::vector<int32_t> forward_sample(const ds::BatchPlan& plan, const std::vector<SampleRow>& rows) override {
    ++sample_calls;
    EXPECT_EQ(rows.size(), plan.segments.size());
    ds::Logits lg = FakeExecutor::forward(plan);
    std::vector<int32_t> ids;
    for (size_t i = 0; i < rows.size(); ++i) {
      ds::SamplingParams p;
      p.temperature = rows[i].temperature, p.top_p = rows[i].top_p, p.top_k = rows[i].top_k, p.min_p = rows[i].min_p;
      // Inverse CDF over ascending ids with u (sample_token's draw), on the filtered probabilities.
      const std::vector<double> probs = ds::filtered_probs(lg.last(int(i)), kVocab, p);
      double cum = 0;
      int32_t pick = 0, last = 0;
      bool found = false;
      for (int t = 0; t < kVocab && !found; ++t) {
        if (probs[size_t(t)] <= 0) continue;
        last = t;
        cum += probs[size_t(t)];
        if (rows[i].u < cum) pick = t, found = true;
      }
      ids.push_back(found ? pick : last);
    }
    return ids;
  }
};

std::unique_ptr<ds::Engine> engine(std::unique_ptr<FakeExecutor> ex) {
  ds::EngineOptions o;
  o.context_length = 64;
  o.max_running_requests = 8;
  o.page_size = 4;
  o.max_total_tokens = 4096;
  auto e = std::make_unique<ds::Engine>(std::move(ex), o);
  e->start();
  return e;
}

ds::Request sampled_req(uint64_t seed) {
  auto q = req("s", {1}, 20);
  q.sampling.temperature = 0.8f;
  q.sampling.top_k = 10;
  q.sampling.top_p = 0.9f;
  q.sampling.seed = seed;
  return q;
}

TEST(EngineDeviceSampling, SameTokensAsCpuSamplingForTheSameSeed) {
  auto cpu_ex = std::make_unique<FakeExecutor>();
  cpu_ex->flat = true;
  auto cpu = engine(std::move(cpu_ex));
  auto dev_ex = std::make_unique<DeviceSamplingExecutor>();
  dev_ex->flat = true;
  DeviceSamplingExecutor* dev_raw = dev_ex.get();
  auto dev = engine(std::move(dev_ex));
  for (uint64_t seed : {11u, 12u, 99u}) {
    const auto a = collect(*cpu->submit(sampled_req(seed))).tokens;
    const auto b = collect(*dev->submit(sampled_req(seed))).tokens;
    ASSERT_EQ(a.size(), 20u);
    EXPECT_EQ(a, b) << "seed " << seed;
  }
  EXPECT_EQ(dev_raw->sample_calls.load(), 60);  // every step of the three requests (one prefill + 19 decodes)
  EXPECT_EQ(dev_raw->forward_calls.load(), 0);
}

TEST(EngineDeviceSampling, GreedyOnTheDevicePath) {
  auto dev_ex = std::make_unique<DeviceSamplingExecutor>();  // not flat: next token = last + 1
  DeviceSamplingExecutor* dev_raw = dev_ex.get();
  auto dev = engine(std::move(dev_ex));
  const auto g = collect(*dev->submit(req("g", {1, 2}, 4))).tokens;
  EXPECT_EQ(g, (std::vector<int32_t>{3, 4, 5, 6}));
  EXPECT_EQ(dev_raw->sample_calls.load(), 4);
  EXPECT_EQ(dev_raw->forward_calls.load(), 0);
}

TEST(EngineDeviceSampling, FeaturesTheDeviceLacksUseTheCpuPath) {
  auto dev_ex = std::make_unique<DeviceSamplingExecutor>();
  DeviceSamplingExecutor* dev_raw = dev_ex.get();
  auto dev = engine(std::move(dev_ex));
  auto lp = req("logprobs", {1}, 3);
  lp.top_logprobs = 2;
  const auto r1 = collect(*dev->submit(lp));
  EXPECT_EQ(r1.tokens, (std::vector<int32_t>{2, 3, 4}));
  auto pen = req("penalty", {1}, 3);
  pen.sampling.frequency_penalty = 0.5f;
  const auto r2 = collect(*dev->submit(pen));
  EXPECT_EQ(r2.tokens, (std::vector<int32_t>{2, 3, 4}));
  auto bias = req("bias", {1}, 2);
  bias.sampling.logit_bias = {{7, 100.0f}};  // +100 beats the fake's 10 on id 2: the CPU path applies it
  const auto r3 = collect(*dev->submit(bias));
  EXPECT_EQ(r3.tokens, (std::vector<int32_t>{7, 7}));
  EXPECT_EQ(dev_raw->sample_calls.load(), 0);
  EXPECT_EQ(dev_raw->forward_calls.load(), 3 + 3 + 2);
}

}  // namespace
