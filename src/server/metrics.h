// Prometheus metrics with SGLang's names (spec/serving.md 7; `--enable-metrics`, GET /metrics).
// No Prometheus client library is packaged, so the text exposition format (version 0.0.4) is
// written here: HELP/TYPE lines, label values escaped (\\, \", \n), histogram buckets cumulative
// with a final le="+Inf", then _sum and _count.
#pragma once
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace ds {

/// `v` escaped for a label value in the text format: backslash, double quote and newline.
std::string prom_escape_label(const std::string& v);
/// A sample value: integers without a fraction ("3"), else shortest round-trip ("0.25"),
/// "+Inf"/"-Inf"/"NaN".
std::string prom_number(double v);

/// A histogram with fixed upper bounds (seconds). Not thread-safe by itself (ServerMetrics locks).
struct PromHistogram {
  std::vector<double> bounds;    // ascending upper bounds; +Inf is implicit
  std::vector<uint64_t> counts;  // per bucket (not cumulative), bounds.size() + 1 entries
  double sum = 0;
  uint64_t count = 0;
  explicit PromHistogram(std::vector<double> b);
  /// Adds `times` observations of `v` (v <= bound goes into that bucket, Prometheus' `le`).
  void observe(double v, uint64_t times = 1);
  /// "# HELP", "# TYPE name histogram", then name_bucket{labels,le="..."} cumulative counts,
  /// name_sum, name_count. `labels` is the rendered label list without braces (may be empty).
  std::string render(const std::string& name, const std::string& help, const std::string& labels) const;
};

/// The engine-side gauges, read when /metrics is scraped.
struct EngineGauges {
  int num_running_reqs = 0;
  int num_queue_reqs = 0;
  double token_usage = 0;  // fraction of the KV pool in use, [0, 1]
  uint64_t cuda_graph_replays = 0;  // decode steps replayed from a CUDA graph (0 on the CPU backend)
};

/// Request-level series of one server (labels: model_name). Thread-safe.
class ServerMetrics {
 public:
  explicit ServerMetrics(std::string model_name);
  /// A request (one engine request: a choice of n, a prompt of a batch) was admitted.
  void request_started(int prompt_tokens);
  /// `n` tokens arrived `interval_s` after the previous ones (the first ones: interval = TTFT,
  /// recorded in time_to_first_token_seconds; later ones in inter_token_latency_seconds as
  /// interval / n, n times, as SGLang does).
  void tokens(int n, double interval_s, bool first);
  /// The request ended. `active_tokens` = prompt + generated tokens it held (for token_usage).
  void request_finished(int prompt_tokens, int completion_tokens, int cached_tokens, double e2e_s, bool aborted);
  /// The whole exposition (Content-Type text/plain; version=0.0.4).
  std::string render(const EngineGauges& g) const;
  /// Tokens held by requests in flight (prompt + generated so far).
  int64_t active_tokens() const;
  /// Generated tokens per second over the last 10 s (sglang:gen_throughput; also
  /// /get_server_info internal_states[0].last_gen_throughput).
  double gen_throughput() const;

 private:
  std::string labels_;
  mutable std::mutex mu_;
  uint64_t prompt_tokens_ = 0, generation_tokens_ = 0, cached_tokens_ = 0, requests_ = 0, aborted_ = 0;
  int64_t active_tokens_ = 0;
  PromHistogram ttft_, itl_, e2e_;
  std::deque<std::pair<std::chrono::steady_clock::time_point, int>> recent_;  // gen_throughput window
  double gen_throughput_locked() const;
};

/// Per engine request: timestamps for TTFT / inter-token latency / e2e; reports to ServerMetrics
/// (null: metrics off, every call is a no-op).
class RequestMetrics {
 public:
  RequestMetrics(ServerMetrics* m, int prompt_tokens);
  ~RequestMetrics();  // finish(aborted = true) if not finished
  void tokens(int n);
  void finish(int completion_tokens, int cached_tokens, bool aborted);

 private:
  ServerMetrics* m_;
  int prompt_tokens_;
  int generated_ = 0;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace ds
