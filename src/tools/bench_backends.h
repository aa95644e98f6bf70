// Request payloads and response parsing of `deepserve bench`'s backends, as SGLang's bench_serving
// (spec/serving.md 6.1 "Backends", "Request payloads", "Per-request measurements"). Pure: the
// caller supplies arrival timestamps, so every metric is testable with synthetic timings.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "tools/bench_metrics.h"

namespace ds::bench {

/// Which HTTP API a backend speaks.
enum class Api {
  Generate,     // sglang, sglang-native: POST /generate (cumulative text, meta_info)
  Completions,  // sglang-oai, vllm, openai: POST /v1/completions
  Chat,         // sglang-oai-chat, vllm-chat, openai-chat: POST /v1/chat/completions
};

/// Api of a --backend name; std::invalid_argument naming the backend and the accepted list otherwise.
Api backend_api(const std::string& backend);
/// Route of an Api ("/generate", "/v1/completions", "/v1/chat/completions").
const char* api_path(Api api);
/// bench_serving's default port of a backend (sglang*: 30000, vllm*/openai*: 8000).
int default_port(const std::string& backend);

/// Options shared by all requests of a run.
struct PayloadOptions {
  std::string model;
  bool stream = true;                // !--disable-stream
  bool ignore_eos = true;            // !--disable-ignore-eos
  nlohmann::json extra = nlohmann::json::object();  // --extra-request-body, merged last (wins)
};

/// The JSON body for one prompt: native `{text, sampling_params:{temperature 0, max_new_tokens,
/// ignore_eos}, stream, return_logprob:false, logprob_start_len:-1}`; completions `{model, prompt,
/// temperature 0, best_of 1, max_tokens, stream, ignore_eos}`; chat `{model, messages:[{user}],
/// temperature 0, max_completion_tokens, stream, ignore_eos}`. OpenAI streams also ask for
/// `stream_options.include_usage` so output_len is the server's count (bench_serving falls back to
/// the requested length when no usage arrives). Then `extra` is merged key by key.
nlohmann::json build_payload(Api api, const std::string& prompt, int output_len, const PayloadOptions& opt);

/// Accumulates one streamed response into a RequestResult. Feed every line with its arrival time
/// (seconds, same clock as `start_time`); call finish() at the end of the body.
class StreamParser {
 public:
  /// `r.start_time` and `r.requested_output_len` must be set; output_len starts at the requested
  /// length (bench_serving's fallback).
  StreamParser(Api api, RequestResult& r);
  /// One line of the body ("data: {...}", "data: [DONE]", blank lines ignored). A line that is not
  /// JSON or an `{"error": ...}` event marks the request failed with that text.
  void feed(const std::string& line, double now);
  /// Ends the stream: success unless an error event was seen or no content arrived at all.
  void finish();

 private:
  Api api_;
  RequestResult& r_;
  bool got_text_ = false;
  bool errored_ = false;
  double last_ = 0;
  int last_completion_tokens_ = 0;
};

/// Fills `r` from a non-streaming 200 body received at `now` (TTFT = latency, no ITL).
void parse_nonstream(Api api, const std::string& body, double now, RequestResult& r);

}  // namespace ds::bench
