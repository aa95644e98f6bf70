// One chat completion in flight, independent of the HTTP library: validate -> render (DSV32
// encoder) -> tokenize -> submit n engine requests -> turn TokenEvents into the OpenAI response or
// SSE chunks (spec/serving.md 4.3, 4.4).
#pragma once
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "server/openai_protocol.h"
#include "server/choice_stream.h"
#include "server/prompt_render.h"
#include "text/tokenizer.h"

namespace ds {

class ServerMetrics;

/// Everything a request needs from the running server. Immutable while serving.
struct ServeContext {
  std::shared_ptr<const Tokenizer> tokenizer;
  Engine* engine = nullptr;
  std::string served_model_name;
  int context_length = 0;
  std::vector<int32_t> eos_ids;  // end generation with finish_reason "stop"
  SamplingParams defaults;       // --sampling-defaults (request values win)
  bool allow_auto_truncate = false;
  bool log_requests = false;
  int log_requests_level = 2;
  int stream_interval = 1;
  int max_n = 64;
  PromptFormat prompt_format = PromptFormat::Dsv32;  // D7
  std::string reasoning_parser;  // "" or "deepseek-v3"
  std::string tool_call_parser;  // "" | "deepseekv32" | "deepseekv31"
  /// --debug-inject-output (test builds only, DEEPSERVE_ALLOW_TEST_HOOKS=1): a request's
  /// `debug_model_text` replaces sampling by the tokens of that text.
  bool debug_inject = false;
  /// --enable-metrics: request-level Prometheus series (null when off). Thread-safe.
  ServerMetrics* metrics = nullptr;
};

/// The rendered prompt of a validated request (ctx.prompt_format's encoder + tokenizer); ApiError 400
/// on EncodeError.
RenderedPrompt render_chat_prompt(const ServeContext& ctx, const ChatCompletionRequest& req);

/// Says whether the HTTP client of a request has closed its connection (polled while the request
/// waits for its first event). Empty: the caller cannot tell (never gone).
using ClientGone = std::function<bool()>;

/// Thrown by first_event when the client closed its connection before the first event: the
/// request is aborted (its pages are freed by the engine's next step) and no response is sent.
struct ClientDisconnected : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class ChatSession {
 public:
  /// Parses, renders, checks the context length (SGLang's messages, spec 4.6), submits `n` engine
  /// requests, and waits for each choice's first event so that failures at admission or prefill
  /// are an HTTP error (not a 200 body). Throws ApiError; ClientDisconnected when `gone` says the
  /// client left before the first event (the requests are aborted).
  static std::shared_ptr<ChatSession> start(const ServeContext& ctx, const std::string& body,
                                            const ClientGone& gone = {});
  ~ChatSession();

  bool streaming() const { return req_.stream; }
  /// Streaming: appends the next SSE bytes to `out` (waits up to ~50 ms for engine output).
  /// Returns false once the stream is complete (`data: [DONE]` appended).
  bool next_stream(std::string& out);
  /// Non-streaming: waits up to ~50 ms; returns true with the complete JSON body in `out`.
  bool poll_complete(std::string& out);
  /// The client is gone: abort every choice (the engine drops them at its next step).
  void abort();

  const std::string& id() const { return id_; }
  int prompt_tokens() const { return int(prompt_ids_.size()); }

 private:
  struct Choice;
  ChatSession(const ServeContext& ctx, ChatCompletionRequest req);
  bool pump(bool wait);  // moves engine events into choices; true if any arrived
  void apply(Choice& c, const TokenEvent& ev);
  ChoiceStream make_output() const;
  nlohmann::json chunk(nlohmann::json choices) const;
  nlohmann::json usage() const;
  /// Streaming: {"content": entries not sent yet} (null when none or logprobs were not asked for).
  nlohmann::json unsent_logprobs(Choice& c) const;
  void log_finish() const;

  const ServeContext& ctx_;
  ChatCompletionRequest req_;
  std::string id_;
  int64_t created_ = 0;
  std::vector<int32_t> prompt_ids_;
  std::vector<std::unique_ptr<Choice>> choices_;
  bool opens_reasoning_ = false;  // the prompt ended inside reasoning (parsers start there)
  bool injected_ = false;         // --debug-inject-output: events come from injected_stream()
  int32_t dsml_id_ = -1;          // `｜DSML｜` when it is a token: kept for the parsers (D11)
  bool role_sent_ = false;
  bool done_sent_ = false;
};

}  // namespace ds
