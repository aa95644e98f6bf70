#include "server/engine_request.h"

#include <chrono>

#include <spdlog/spdlog.h>

namespace ds {

int64_t fit_context(const ServeContext& ctx, std::vector<int32_t>& ids, std::optional<int64_t> max_tokens,
                    const std::string& max_param, const std::string& prompt_param, const std::string& limit_name) {
  const int64_t M = ctx.context_length;
  int64_t N = int64_t(ids.size());
  auto bad = [](const std::string& param, const std::string& msg) { throw ApiError(400, msg, param); };
  if (!limit_name.empty() && max_tokens && *max_tokens > M && !ctx.allow_auto_truncate)
    bad(max_param, limit_name + " is too large: " + std::to_string(*max_tokens) + ".This model supports at most " +
                       std::to_string(M) + " completion tokens.");
  if (N >= M) {
    if (!ctx.allow_auto_truncate)
      bad(prompt_param, "The input (" + std::to_string(N) + " tokens) is longer than the model's context length (" +
                            std::to_string(M) + " tokens).");
    spdlog::warn("input of {} tokens truncated to {} tokens (context length {})", N, M - 1, M);
    ids.resize(size_t(M - 1));
    N = M - 1;
  }
  if (!max_tokens) return M - N;
  int64_t K = *max_tokens;
  if (N + K > M) {
    if (!ctx.allow_auto_truncate)
      bad(max_param, "Requested token count exceeds the model's maximum context length of " + std::to_string(M) +
                         " tokens. You requested a total of " + std::to_string(N + K) + " tokens: " +
                         std::to_string(N) + " tokens from the input messages and " + std::to_string(K) +
                         " tokens for the completion. Please reduce the number of tokens in the input messages or "
                         "the completion to fit within the limit.");
    K = M - N;
  }
  return K;
}

Request make_engine_request(const ServeContext& ctx, const ChatCompletionRequest& r, std::vector<int32_t> prompt_ids,
                            int64_t max_new_tokens, int top_logprobs) {
  Request q;
  q.prompt_ids = std::move(prompt_ids);
  q.sampling = ctx.defaults;
  if (r.temperature) q.sampling.temperature = *r.temperature;
  if (r.top_p) q.sampling.top_p = *r.top_p;
  if (r.top_k) q.sampling.top_k = *r.top_k;
  if (r.min_p) q.sampling.min_p = *r.min_p;
  q.sampling.frequency_penalty = r.frequency_penalty;
  q.sampling.presence_penalty = r.presence_penalty;
  q.sampling.repetition_penalty = r.repetition_penalty;
  q.max_new_tokens = int(max_new_tokens);
  q.stop_token_ids = ctx.eos_ids;
  q.stop_token_ids.insert(q.stop_token_ids.end(), r.stop_token_ids.begin(), r.stop_token_ids.end());
  q.ignore_eos = r.ignore_eos;
  q.min_new_tokens = r.min_tokens;
  q.top_logprobs = top_logprobs;
  const int64_t vocab = ctx.tokenizer->vocab_size();
  for (const auto& [id, b] : r.logit_bias)
    if (id >= vocab)
      throw ApiError(400, "logit_bias: token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                              std::to_string(vocab) + ")", "logit_bias");
  q.sampling.logit_bias = r.logit_bias;
  return q;
}

TokenEvent first_event(RequestStream& stream, const ClientGone& gone) {
  using namespace std::chrono_literals;
  // Asked before each wait, not only after a 100 ms timeout: with many choices every first event may
  // come within 100 ms of the previous one, and a client gone meanwhile must still be seen.
  for (;;) {
    if (gone && gone()) {
      stream.abort();
      throw ClientDisconnected("the client closed the connection before the first token of request " + stream.id());
    }
    if (std::optional<TokenEvent> ev = stream.pop(100ms)) return *ev;
  }
}

ApiError request_error(const TokenEvent& ev, const std::string& prompt_param) {
  if (ev.invalid_request) return ApiError(400, ev.error, prompt_param, "invalid_request_error");
  return ApiError(500, "Internal server error: " + ev.error, "", "internal_server_error");
}

std::shared_ptr<RequestStream> submit_or_503(const ServeContext& ctx, Request q) {
  try {
    return ctx.engine->submit(std::move(q));
  } catch (const std::exception& e) {
    throw ApiError(503, std::string("The server is shutting down: ") + e.what(), "", "service_unavailable");
  }
}

}  // namespace ds
