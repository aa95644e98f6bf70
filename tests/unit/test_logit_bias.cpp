// logit_bias: parsing (400s naming the field), the logits it changes, and greedy through the engine
// on the fake model.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "engine/engine.h"
#include "model/logit_processing.h"
#include "server/openai_protocol.h"
#include "test_engine_fake.h"

namespace {

using namespace engine_test;

std::vector<std::pair<int32_t, float>> parse_bias(const std::string& bias_json) {
  ds::ChatCompletionRequest r;
  ds::parse_common_fields(ds::ordered_json::parse(R"({"logit_bias": )" + bias_json + "}"), 8, r);
  return r.logit_bias;
}

std::string bias_error(const std::string& bias_json) {
  try {
    parse_bias(bias_json);
  } catch (const ds::ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.param, "logit_bias");
    return e.what();
  }
  return "(accepted)";
}

TEST(LogitBias, ParsesTokenIdKeysAndRanges) {
  EXPECT_EQ(parse_bias(R"({"5": 100, "0": -100, "17": 2.5})"),
            (std::vector<std::pair<int32_t, float>>{{5, 100.0f}, {0, -100.0f}, {17, 2.5f}}));
  EXPECT_TRUE(parse_bias("null").empty());
  EXPECT_TRUE(parse_bias("{}").empty());
  EXPECT_EQ(bias_error(R"({"5": 100.5})"), "logit_bias['5'] must be in [-100, 100], got 100.5.");
  EXPECT_EQ(bias_error(R"({"abc": 1})"), "logit_bias: key 'abc' is not a token id (a non-negative integer string)");
  EXPECT_EQ(bias_error(R"({"-3": 1})"), "logit_bias: key '-3' is not a token id (a non-negative integer string)");
  EXPECT_EQ(bias_error(R"({"3x": 1})"), "logit_bias: key '3x' is not a token id (a non-negative integer string)");
  EXPECT_EQ(bias_error(R"({"99999999999": 1})"), "logit_bias: key '99999999999' is not a token id (a non-negative integer string)");
  EXPECT_EQ(bias_error(R"({"3": "1"})"), "logit_bias['3']: expected a number");
  EXPECT_EQ(bias_error("[1, 2]"), "logit_bias: expected an object mapping token ids (strings) to numbers");
}

TEST(LogitBias, AddsToLogitsBeforePenalties) {
  std::vector<float> l = {1.0f, 2.0f, 3.0f};
  ds::SamplingParams p;
  p.logit_bias = {{0, 5.0f}, {2, -1.5f}, {9, 100.0f}};  // 9: outside the vocabulary, ignored
  ds::apply_logit_bias(l, p);
  EXPECT_EQ(l, (std::vector<float>{6.0f, 2.0f, 1.5f}));
}

// The fake model's greedy next token is (last + 1) mod 16 with a logit margin of 10: +100 on id 7
// makes every token 7; -100 on the natural next token (3) leaves all others tied at 0, and greedy
// takes the lowest id (0).
TEST(LogitBias, GreedyThroughTheEngine) {
  ds::EngineOptions o;
  o.context_length = 64;
  o.page_size = 4;
  o.max_total_tokens = 1024;
  ds::Engine e(std::make_unique<FakeExecutor>(), o);
  e.start();
  ds::Request force = req("force", {1, 2}, 3);
  force.sampling.logit_bias = {{7, 100.0f}};
  EXPECT_EQ(collect(*e.submit(force)).tokens, (std::vector<int32_t>{7, 7, 7}));
  ds::Request ban = req("ban", {1, 2}, 1);
  ban.sampling.logit_bias = {{3, -100.0f}};
  EXPECT_EQ(collect(*e.submit(ban)).tokens, (std::vector<int32_t>{0}));
  EXPECT_EQ(collect(*e.submit(req("plain", {1, 2}, 1))).tokens, (std::vector<int32_t>{3}));
}

}  // namespace
