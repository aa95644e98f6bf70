// The one context check shared by chat, completions and /generate (spec/serving.md 4.6).
#include <gtest/gtest.h>

#include "server/engine_request.h"

namespace {

ds::ServeContext ctx_with(int context_length, bool auto_truncate) {
  ds::ServeContext c;
  c.context_length = context_length;
  c.allow_auto_truncate = auto_truncate;
  return c;
}

std::string error_of(const ds::ServeContext& c, std::vector<int32_t> ids, std::optional<int64_t> k) {
  try {
    ds::fit_context(c, ids, k, "max_tokens", "prompt", "max_completion_tokens");
  } catch (const ds::ApiError& e) {
    return std::string(e.what()) + " | param=" + e.param;
  }
  return "no error";
}

TEST(FitContext, AbsentMaxTokensLeavesTheRestOfTheContext) {
  auto c = ctx_with(10, false);
  std::vector<int32_t> ids(4, 7);
  EXPECT_EQ(ds::fit_context(c, ids, std::nullopt, "max_tokens", "prompt", "max_tokens"), 6);
  EXPECT_EQ(ds::fit_context(c, ids, 6, "max_tokens", "prompt", "max_tokens"), 6);
  EXPECT_EQ(ids.size(), 4u);
}

TEST(FitContext, SglangMessagesNameTheParameter) {
  auto c = ctx_with(10, false);
  EXPECT_EQ(error_of(c, std::vector<int32_t>(4, 7), 11),
            "max_completion_tokens is too large: 11.This model supports at most 10 completion tokens. | param=max_tokens");
  EXPECT_EQ(error_of(c, std::vector<int32_t>(10, 7), 1),
            "The input (10 tokens) is longer than the model's context length (10 tokens). | param=prompt");
  EXPECT_EQ(error_of(c, std::vector<int32_t>(4, 7), 7),
            "Requested token count exceeds the model's maximum context length of 10 tokens. You requested a total of "
            "11 tokens: 4 tokens from the input messages and 7 tokens for the completion. Please reduce the number of "
            "tokens in the input messages or the completion to fit within the limit. | param=max_tokens");
}

TEST(FitContext, WithoutALimitNameAHugeMaxTokensIsTheTotalCountMessage) {
  // Completions and /generate (SGLang has "... is too large" on the chat route only).
  auto c = ctx_with(10, false);
  std::vector<int32_t> ids(4, 7);
  try {
    ds::fit_context(c, ids, 200000, "max_new_tokens", "text", "");
    FAIL() << "no error";
  } catch (const ds::ApiError& e) {
    EXPECT_EQ(std::string(e.what()),
              "Requested token count exceeds the model's maximum context length of 10 tokens. You requested a total of "
              "200004 tokens: 4 tokens from the input messages and 200000 tokens for the completion. Please reduce the "
              "number of tokens in the input messages or the completion to fit within the limit.");
    EXPECT_EQ(e.param, "max_new_tokens");
  }
}

TEST(FitContext, AutoTruncateKeepsTheFirstTokensAndRoomForOneMore) {
  auto c = ctx_with(10, true);
  std::vector<int32_t> ids;
  for (int i = 0; i < 15; ++i) ids.push_back(i);
  EXPECT_EQ(ds::fit_context(c, ids, 5, "max_tokens", "prompt", "max_tokens"), 1);
  EXPECT_EQ(ids, (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8}));
  std::vector<int32_t> short_ids(4, 7);
  EXPECT_EQ(ds::fit_context(c, short_ids, 100, "max_tokens", "prompt", "max_tokens"), 6);  // clamped, no error
}

}  // namespace
