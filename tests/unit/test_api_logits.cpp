// Penalties and log-probabilities (src/model/logit_processing.*), hand-computed values.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "model/logit_processing.h"

namespace ds {
namespace {

TEST(ApiLogits, PenaltiesOnGeneratedIds) {
  std::vector<float> l = {2.0f, -1.0f, 0.5f, 3.0f};
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.25f;
  const std::vector<int32_t> gen = {0, 0, 1, 99};  // 99: outside the vocabulary, ignored
  apply_penalties(l, p, gen);
  EXPECT_FLOAT_EQ(l[0], 2.0f / 2 - 0.5f * 2 - 0.25f);     // positive: divided; seen twice
  EXPECT_FLOAT_EQ(l[1], -1.0f * 2 - 0.5f * 1 - 0.25f);    // negative: multiplied; seen once
  EXPECT_FLOAT_EQ(l[2], 0.5f);                            // not generated: untouched
  EXPECT_FLOAT_EQ(l[3], 3.0f);
}

TEST(ApiLogits, DefaultsChangeNothing) {
  std::vector<float> l = {1.0f, 2.0f};
  SamplingParams p;
  EXPECT_FALSE(has_penalties(p));
  apply_penalties(l, p, std::vector<int32_t>{0, 1});
  EXPECT_EQ(l, (std::vector<float>{1.0f, 2.0f}));
}

TEST(ApiLogits, LogSoftmaxOfChosenAndTop) {
  const std::vector<float> l = {0.0f, std::log(3.0f), std::log(3.0f), std::log(1.0f)};  // probs 1/8, 3/8, 3/8, 1/8
  TokenLogprobs lp = token_logprobs(l.data(), 4, 3, 3);
  EXPECT_NEAR(lp.logprob, std::log(1.0 / 8), 1e-6);  // FP32 result of an FP64 computation
  ASSERT_EQ(lp.top.size(), 3u);
  EXPECT_EQ(lp.top[0].first, 1);  // tie 1/2 broken by the lower id
  EXPECT_EQ(lp.top[1].first, 2);
  EXPECT_EQ(lp.top[2].first, 0);  // tie 0/3: lower id
  EXPECT_NEAR(lp.top[0].second, std::log(3.0 / 8), 1e-6);
  EXPECT_NEAR(lp.top[2].second, std::log(1.0 / 8), 1e-6);
  EXPECT_TRUE(token_logprobs(l.data(), 4, 1, 0).top.empty());
}

}  // namespace
}  // namespace ds
