#include "server/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace ds {

namespace {
// SGLang's default buckets (spec/serving.md 7).
const std::vector<double> kTtftBuckets = {0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400};
const std::vector<double> kItlBuckets = {0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.025, 0.030, 0.035, 0.040, 0.060,
                                         0.080, 0.100, 0.200, 0.400, 0.600, 0.800, 1, 2, 4, 6, 8};
const std::vector<double> kE2eBuckets = {0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20,
                                         40, 60, 80, 100, 200, 400, 600, 1200, 1800, 2400};
constexpr double kThroughputWindowS = 10.0;  // gen_throughput: generated tokens over the last 10 s

void scalar(std::string& out, const char* type, const std::string& name, const std::string& help,
            const std::string& labels, double v) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n# TYPE ").append(name);
  out.append(" ").append(type).append("\n").append(name);
  if (!labels.empty()) out.append("{").append(labels).append("}");
  out.append(" ").append(prom_number(v)).append("\n");
}
}  // namespace

std::string prom_escape_label(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string prom_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::abs(v) < 1e15) return std::to_string(int64_t(v));
  char buf[32];
  for (int prec = 1; prec <= 17; ++prec) {  // shortest text that reads back as v
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

PromHistogram::PromHistogram(std::vector<double> b) : bounds(std::move(b)), counts(bounds.size() + 1, 0) {}

void PromHistogram::observe(double v, uint64_t times) {
  size_t i = size_t(std::lower_bound(bounds.begin(), bounds.end(), v) - bounds.begin());  // first bound >= v
  counts[i] += times;
  sum += v * double(times);
  count += times;
}

std::string PromHistogram::render(const std::string& name, const std::string& help, const std::string& labels) const {
  std::string out = "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  const std::string sep = labels.empty() ? "" : labels + ",";
  uint64_t cum = 0;
  for (size_t i = 0; i <= bounds.size(); ++i) {
    cum += counts[i];
    const std::string le = i < bounds.size() ? prom_number(bounds[i]) : "+Inf";
    out += name + "_bucket{" + sep + "le=\"" + le + "\"} " + std::to_string(cum) + "\n";
  }
  std::string braces;
  if (!labels.empty()) braces.append("{").append(labels).append("}");
  out += name + "_sum" + braces + " " + prom_number(sum) + "\n";
  out += name + "_count" + braces + " " + std::to_string(count) + "\n";
  return out;
}

ServerMetrics::ServerMetrics(std::string model_name)
    : labels_("model_name=\"" + prom_escape_label(model_name) + "\""), ttft_(kTtftBuckets), itl_(kItlBuckets), e2e_(kE2eBuckets) {}

void ServerMetrics::request_started(int prompt_tokens) {
  std::lock_guard<std::mutex> l(mu_);
  active_tokens_ += prompt_tokens;
}

void ServerMetrics::tokens(int n, double interval_s, bool first) {
  if (n <= 0) return;
  std::lock_guard<std::mutex> l(mu_);
  generation_tokens_ += uint64_t(n);
  active_tokens_ += n;
  const auto now = std::chrono::steady_clock::now();
  recent_.emplace_back(now, n);
  while (!recent_.empty() && std::chrono::duration<double>(now - recent_.front().first).count() > kThroughputWindowS)
    recent_.pop_front();
  if (first) {
    ttft_.observe(interval_s);
    if (n > 1) itl_.observe(0.0, uint64_t(n - 1));
  } else {
    itl_.observe(interval_s / n, uint64_t(n));
  }
}

void ServerMetrics::request_finished(int prompt_tokens, int completion_tokens, int cached_tokens, double e2e_s, bool aborted) {
  std::lock_guard<std::mutex> l(mu_);
  prompt_tokens_ += uint64_t(std::max(0, prompt_tokens));
  cached_tokens_ += uint64_t(std::max(0, cached_tokens));
  ++requests_;
  if (aborted) ++aborted_;
  active_tokens_ = std::max<int64_t>(0, active_tokens_ - prompt_tokens - completion_tokens);
  e2e_.observe(e2e_s);
}

int64_t ServerMetrics::active_tokens() const {
  std::lock_guard<std::mutex> l(mu_);
  return active_tokens_;
}

std::string ServerMetrics::render(const EngineGauges& g) const {
  std::lock_guard<std::mutex> l(mu_);
  std::string out;
  scalar(out, "counter", "sglang:prompt_tokens_total", "Number of prefill tokens processed.", labels_, double(prompt_tokens_));
  scalar(out, "counter", "sglang:generation_tokens_total", "Number of generation tokens processed.", labels_,
         double(generation_tokens_));
  scalar(out, "counter", "sglang:cached_tokens_total", "Number of cached prompt tokens.", labels_, double(cached_tokens_));
  scalar(out, "counter", "sglang:num_requests_total", "Number of requests processed.", labels_, double(requests_));
  scalar(out, "counter", "sglang:num_aborted_requests_total", "Number of requests aborted.", labels_, double(aborted_));
  out += ttft_.render("sglang:time_to_first_token_seconds", "Histogram of time to first token in seconds.", labels_);
  out += itl_.render("sglang:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", labels_);
  out += e2e_.render("sglang:e2e_request_latency_seconds", "Histogram of End-to-end request latency in seconds", labels_);
  scalar(out, "gauge", "sglang:num_running_reqs", "The number of running requests.", labels_, g.num_running_reqs);
  scalar(out, "gauge", "sglang:num_queue_reqs", "The number of requests in the waiting queue.", labels_, g.num_queue_reqs);
  scalar(out, "gauge", "sglang:token_usage", "The token usage.", labels_, g.token_usage);
  scalar(out, "counter", "sglang:cuda_graph_replays_total", "Number of decode steps replayed from a CUDA graph.",
         labels_, double(g.cuda_graph_replays));
  const double hit = prompt_tokens_ ? double(cached_tokens_) / double(prompt_tokens_) : 0.0;
  scalar(out, "gauge", "sglang:cache_hit_rate", "The prefix cache hit rate.", labels_, hit);
  scalar(out, "gauge", "sglang:gen_throughput", "The generation throughput (token/s).", labels_,
         gen_throughput_locked());
  return out;
}

double ServerMetrics::gen_throughput() const {
  std::lock_guard<std::mutex> lk(mu_);
  return gen_throughput_locked();
}

double ServerMetrics::gen_throughput_locked() const {
  if (recent_.empty()) return 0.0;
  int toks = 0;
  for (const auto& [t, n] : recent_) toks += n;
  const double span = std::chrono::duration<double>(std::chrono::steady_clock::now() - recent_.front().first).count();
  return double(toks) / std::max(span, 1.0);
}

RequestMetrics::RequestMetrics(ServerMetrics* m, int prompt_tokens)
    : m_(m), prompt_tokens_(prompt_tokens), start_(std::chrono::steady_clock::now()), last_(start_) {
  if (m_) m_->request_started(prompt_tokens);
}

RequestMetrics::~RequestMetrics() {
  if (!finished_) finish(generated_, 0, true);
}

void RequestMetrics::tokens(int n) {
  if (!m_ || finished_ || n <= 0) return;
  const auto now = std::chrono::steady_clock::now();
  m_->tokens(n, std::chrono::duration<double>(now - last_).count(), generated_ == 0);
  generated_ += n;
  last_ = now;
}

void RequestMetrics::finish(int completion_tokens, int cached_tokens, bool aborted) {
  if (finished_) return;
  if (m_ && completion_tokens > generated_) tokens(completion_tokens - generated_);
  finished_ = true;
  if (!m_) return;
  m_->request_finished(prompt_tokens_, generated_, cached_tokens,
                       std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(), aborted);
}

}  // namespace ds
