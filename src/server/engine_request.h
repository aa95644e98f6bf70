// From a validated OpenAI/SGLang request to engine requests: the one context check and the one
// field mapping shared by /v1/chat/completions, /v1/completions and /generate.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/request.h"
#include "server/chat_service.h"

namespace ds {

/// Context checks of spec/serving.md 4.6 for one prompt of N = ids.size() tokens and a context of
/// M = ctx.context_length. Returns the max new tokens: `max_tokens`, or M - N when absent.
/// Errors (ApiError 400 with SGLang's messages, verbatim): max_tokens > M ("<limit_name> is too large: K.This
/// model supports at most M completion tokens.", no space after the period as in SGLang; param
/// `max_param`; only when `limit_name` is not empty: SGLang's chat route checks it and names
/// max_completion_tokens whichever field was sent; completions and /generate pass "" and get the next one),
/// N >= M (`prompt_param`), N + max_tokens > M (`max_param`). With --allow-auto-truncate the prompt keeps its first M - 1
/// tokens (the engine needs room for one new token) and max_tokens is clamped to M - N instead.
int64_t fit_context(const ServeContext& ctx, std::vector<int32_t>& ids, std::optional<int64_t> max_tokens,
                    const std::string& max_param, const std::string& prompt_param, const std::string& limit_name);

/// The engine request for `prompt_ids` with the request's sampling fields over the server defaults,
/// EOS + stop_token_ids as stop ids, penalties, min_tokens and `top_logprobs` (-1 = no logprobs).
/// The caller sets `id` and the per-choice seed.
Request make_engine_request(const ServeContext& ctx, const ChatCompletionRequest& r, std::vector<int32_t> prompt_ids,
                            int64_t max_new_tokens, int top_logprobs);

/// Blocks until the first event of `stream` (the outcome of admission and prefill). Every 100 ms
/// without an event it asks `gone`; when the client is gone the stream is aborted and
/// ClientDisconnected is thrown (a long prefill of an abandoned request stops at the next chunk).
TokenEvent first_event(RequestStream& stream, const ClientGone& gone = {});

/// The HTTP error for a request that ended with FinishReason::Error before any byte was sent:
/// 400 invalid_request_error naming `prompt_param` when the engine marked the request itself invalid
/// (its prompt: empty, over the context, larger than the KV pool, ids outside the vocabulary), else 500.
ApiError request_error(const TokenEvent& ev, const std::string& prompt_param);

/// ctx.engine->submit(q); an engine that is shutting down becomes ApiError 503.
std::shared_ptr<RequestStream> submit_or_503(const ServeContext& ctx, Request q);

}  // namespace ds
