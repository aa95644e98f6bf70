// Metrics of `deepserve bench`: per-request timings -> the aggregates and the report block of
// SGLang's bench_serving (spec/serving.md 6.1; docs/bench.md). Pure functions, no I/O.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ds::bench {

/// What one request measured. Times in seconds; `start_time` on any monotonic clock shared by all
/// requests of a run. `itl` holds one entry per content chunk after the first (OpenAI backends) or
/// per new token (native backend), spec 6.1 "Per-request measurements".
struct RequestResult {
  bool success = false;
  std::string error;          // HTTP status/body or transport error when !success
  double start_time = 0;      // s, just before the POST
  double ttft = 0;            // s, first chunk with non-empty generated text
  double latency = 0;         // s, last received line (incl. [DONE]) - start
  std::vector<double> itl;    // s
  std::vector<std::string> text_chunks;  // text of the chunks that produced `itl` entries
  std::string generated_text;
  int prompt_len = 0;         // client-side prompt token count (dataset)
  int output_len = 0;         // server-reported completion tokens, else the requested length
  int requested_output_len = 0;
  std::optional<int> server_prompt_tokens;  // usage.prompt_tokens / meta_info.prompt_tokens if sent
};

/// numpy.percentile(values, q) with the default linear interpolation: rank = q/100 * (n-1),
/// result = v[floor] + (v[ceil] - v[floor]) * frac on sorted values. `values` empty -> 0 (as
/// bench_serving's `np.percentile(x or 0, q)`). q in [0, 100], else std::invalid_argument.
double percentile(std::vector<double> values, double q);

/// mean / median / population std / p90 / p95 / p99 / max of `values` (empty -> all 0, as
/// bench_serving's `x or 0`).
struct Summary {
  double mean = 0, median = 0, std = 0, p90 = 0, p95 = 0, p99 = 0, max = 0;
};
Summary summarize(const std::vector<double>& values);

/// TPOT of one request (spec 6.1): (latency - ttft) / (output_len - 1); nullopt when output_len <= 1.
std::optional<double> tpot(const RequestResult& r);

/// Peak output tokens/s and peak concurrent requests with bench_serving's 1 s binning: bins of 1 s
/// from the earliest successful start; a chunk arrival (start + ttft, then + each itl) adds 1 to
/// its bin; a request adds 1 to every bin from int(start) to int(end) inclusive. Peaks = max bin.
struct Peaks {
  double max_output_tokens_per_s = 0;
  int max_concurrent_requests = 0;
};
Peaks peak_rates(const std::vector<RequestResult>& results);

/// Aggregates over the successful requests (spec 6.1 "Aggregates"). Times in seconds except the
/// *_ms summaries.
struct BenchMetrics {
  int completed = 0;
  int failed = 0;
  long long total_input = 0;            // sum of client-side prompt_len
  long long total_output = 0;           // sum of output_len
  long long total_output_retokenized = 0;
  long long total_server_prompt_tokens = 0;  // sum of server-reported prompt tokens (when sent)
  double duration_s = 0;
  double request_throughput = 0, input_throughput = 0, output_throughput = 0, total_throughput = 0;
  double concurrency = 0;               // sum of latencies / duration
  Peaks peaks;
  std::optional<double> accept_length;  // server's avg_spec_accept_length when reported (> 0)
  Summary e2e_ms, ttft_ms, tpot_ms, itl_ms;
};

/// bench_serving's speculative-decoding ITL correction applies: the server reported an accept length
/// > 0 and `backend` is exactly `sglang-oai` or `sglang-oai-chat` (SGLang gates it on those two names).
bool use_retokenized_itl(const std::string& backend, std::optional<double> accept_length);

/// Computes the aggregates. `duration_s` > 0 (std::invalid_argument otherwise). `retokenize` counts
/// tokens of a generated text (our tokenizer, no special tokens); may be empty (then 0).
/// When use_retokenized_itl(backend, accept_length): each ITL entry k of a request is replaced by
/// n copies of itl[k] / n, n = retokenize(text_chunks[k]) (at least 1), so a chunk carrying several
/// accepted draft tokens counts as n intervals (bench_serving's calculate_metrics); the peak
/// binning keeps the raw per-chunk entries, as bench_serving does. Needs `retokenize` non-empty.
BenchMetrics calculate_metrics(const std::vector<RequestResult>& results, double duration_s,
                               const std::function<int(const std::string&)>& retokenize,
                               std::optional<double> accept_length, const std::string& backend = "");

/// The run settings printed in the report header.
struct ReportHeader {
  std::string backend;
  double request_rate = 0;              // +inf for "inf"
  std::optional<int> max_concurrency;   // nullopt -> "not set"
};

/// Python's str(float): "inf", "64.0", "2.5" (shortest round-trip digits, ".0" for integers).
std::string python_float_str(double v);

/// The `Serving Benchmark Result` block (rows `{:<40} {:<10}`, section rules 50 wide), field for
/// field as the seed's blocks (seed section 5): the superset layout (vision-token row, P90/P99 E2E),
/// Accept length only when present. Ends with the closing "=" rule and a newline.
std::string render_report(const ReportHeader& header, const BenchMetrics& m);

/// Every metric as JSON (bench_serving's result keys + std/p90/p95 extras).
nlohmann::json metrics_to_json(const BenchMetrics& m);

}  // namespace ds::bench
