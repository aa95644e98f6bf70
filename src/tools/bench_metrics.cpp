// Metrics of `deepserve bench` (spec/serving.md 6.1). See bench_metrics.h.
#include "tools/bench_metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include <fmt/format.h>

namespace ds::bench {

double percentile(std::vector<double> v, double q) {
  if (!(q >= 0 && q <= 100)) throw std::invalid_argument(fmt::format("percentile: q={} outside [0, 100]", q));
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double rank = q / 100.0 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  const double frac = rank - static_cast<double>(lo);
  return v[lo] + (v[hi] - v[lo]) * frac;
}

Summary summarize(const std::vector<double>& v) {
  Summary s;
  if (v.empty()) return s;
  const double n = static_cast<double>(v.size());
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / n;
  double ss = 0;
  for (double x : v) ss += (x - s.mean) * (x - s.mean);
  s.std = std::sqrt(ss / n);  // numpy's np.std: population (ddof=0)
  s.median = percentile(v, 50);
  s.p90 = percentile(v, 90);
  s.p95 = percentile(v, 95);
  s.p99 = percentile(v, 99);
  s.max = *std::max_element(v.begin(), v.end());
  return s;
}

std::optional<double> tpot(const RequestResult& r) {
  if (r.output_len <= 1) return std::nullopt;
  return (r.latency - r.ttft) / static_cast<double>(r.output_len - 1);
}

Peaks peak_rates(const std::vector<RequestResult>& results) {
  Peaks p;
  double t0 = 0, t1 = 0;
  bool any = false;
  for (const auto& r : results) {
    if (!r.success) continue;
    t0 = any ? std::min(t0, r.start_time) : r.start_time;
    t1 = any ? std::max(t1, r.start_time + r.latency) : r.start_time + r.latency;
    any = true;
  }
  if (!any) return p;
  const auto nbins = static_cast<long long>(std::ceil(t1 - t0)) + 1;
  std::vector<double> tokens(static_cast<size_t>(nbins), 0.0);
  std::vector<int> conc(static_cast<size_t>(nbins), 0);
  for (const auto& r : results) {
    if (!r.success) continue;
    double t = r.start_time + r.ttft;
    auto add_token = [&](double when) {
      const auto b = static_cast<long long>(when - t0);  // Python int(): truncation toward zero
      if (b >= 0 && b < nbins) tokens[static_cast<size_t>(b)] += 1;
    };
    add_token(t);
    for (double gap : r.itl) {
      t += gap;
      add_token(t);
    }
    const auto first = static_cast<long long>(r.start_time - t0);
    const auto last = static_cast<long long>(r.start_time + r.latency - t0);
    for (long long b = first; b < std::min(last + 1, nbins); ++b) conc[static_cast<size_t>(b)] += 1;
  }
  p.max_output_tokens_per_s = *std::max_element(tokens.begin(), tokens.end());
  p.max_concurrent_requests = *std::max_element(conc.begin(), conc.end());
  return p;
}

bool use_retokenized_itl(const std::string& backend, std::optional<double> accept_length) {
  return accept_length && *accept_length > 0 && (backend == "sglang-oai" || backend == "sglang-oai-chat");
}

BenchMetrics calculate_metrics(const std::vector<RequestResult>& results, double duration_s,
                               const std::function<int(const std::string&)>& retokenize,
                               std::optional<double> accept_length, const std::string& backend) {
  if (!(duration_s > 0)) throw std::invalid_argument(fmt::format("calculate_metrics: duration {} s is not > 0", duration_s));
  const bool retok_itl = use_retokenized_itl(backend, accept_length);
  if (retok_itl && !retokenize)
    throw std::invalid_argument("calculate_metrics: the retokenized ITL of backend '" + backend + "' needs a tokenizer");
  BenchMetrics m;
  m.duration_s = duration_s;
  std::vector<double> e2e, ttft, tpots, itl;
  for (const auto& r : results) {
    if (!r.success) {
      ++m.failed;
      continue;
    }
    ++m.completed;
    m.total_input += r.prompt_len;
    m.total_output += r.output_len;
    if (retokenize) m.total_output_retokenized += retokenize(r.generated_text);
    if (r.server_prompt_tokens) m.total_server_prompt_tokens += *r.server_prompt_tokens;
    e2e.push_back(r.latency * 1000);
    ttft.push_back(r.ttft * 1000);
    if (auto t = tpot(r)) tpots.push_back(*t * 1000);
    if (!retok_itl) {
      for (double x : r.itl) itl.push_back(x * 1000);
      continue;
    }
    if (r.text_chunks.size() != r.itl.size())
      throw std::invalid_argument(fmt::format("calculate_metrics: a request has {} ITL entries but {} text chunks",
                                              r.itl.size(), r.text_chunks.size()));
    for (size_t k = 0; k < r.itl.size(); ++k) {
      const int n = std::max(1, retokenize(r.text_chunks[k]));  // a non-empty chunk has >= 1 token
      for (int i = 0; i < n; ++i) itl.push_back(r.itl[k] / n * 1000);
    }
  }
  m.request_throughput = m.completed / duration_s;
  m.input_throughput = static_cast<double>(m.total_input) / duration_s;
  m.output_throughput = static_cast<double>(m.total_output) / duration_s;
  m.total_throughput = static_cast<double>(m.total_input + m.total_output) / duration_s;
  m.concurrency = std::accumulate(e2e.begin(), e2e.end(), 0.0) / 1000.0 / duration_s;
  m.peaks = peak_rates(results);
  if (accept_length && *accept_length > 0) m.accept_length = accept_length;
  m.e2e_ms = summarize(e2e);
  m.ttft_ms = summarize(ttft);
  m.tpot_ms = summarize(tpots);
  m.itl_ms = summarize(itl);
  return m;
}

std::string python_float_str(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (std::isnan(v)) return "nan";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip, like Python's repr
  std::string s(buf, res.ptr);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

namespace {
std::string row(const std::string& name, const std::string& value) { return fmt::format("{:<40} {:<10}\n", name, value); }
std::string rowf(const std::string& name, double v) { return fmt::format("{:<40} {:<10.2f}\n", name, v); }
// Python's "{s:{c}^{n}}": centred in 50 columns, the extra fill column on the right.
std::string rule(const std::string& title, char c) {
  const size_t pad = title.size() >= 50 ? 0 : 50 - title.size();
  return std::string(pad / 2, c) + title + std::string(pad - pad / 2, c) + "\n";
}
}  // namespace

std::string render_report(const ReportHeader& h, const BenchMetrics& m) {
  std::string s = rule(" Serving Benchmark Result ", '=');
  s += row("Backend:", h.backend);
  s += row("Traffic request rate:", python_float_str(h.request_rate));
  s += row("Max request concurrency:", h.max_concurrency ? std::to_string(*h.max_concurrency) : "not set");
  s += row("Successful requests:", std::to_string(m.completed));
  s += rowf("Benchmark duration (s):", m.duration_s);
  s += row("Total input tokens:", std::to_string(m.total_input));
  s += row("Total input text tokens:", std::to_string(m.total_input));
  s += row("Total input vision tokens:", "0");
  s += row("Total generated tokens:", std::to_string(m.total_output));
  s += row("Total generated tokens (retokenized):", std::to_string(m.total_output_retokenized));
  s += rowf("Request throughput (req/s):", m.request_throughput);
  s += rowf("Input token throughput (tok/s):", m.input_throughput);
  s += rowf("Output token throughput (tok/s):", m.output_throughput);
  s += rowf("Peak output token throughput (tok/s):", m.peaks.max_output_tokens_per_s);
  s += row("Peak concurrent requests:", std::to_string(m.peaks.max_concurrent_requests));
  s += rowf("Total token throughput (tok/s):", m.total_throughput);
  s += rowf("Concurrency:", m.concurrency);
  if (m.accept_length) s += rowf("Accept length:", *m.accept_length);
  s += rule("End-to-End Latency", '-');
  s += rowf("Mean E2E Latency (ms):", m.e2e_ms.mean);
  s += rowf("Median E2E Latency (ms):", m.e2e_ms.median);
  s += rowf("P90 E2E Latency (ms):", m.e2e_ms.p90);
  s += rowf("P99 E2E Latency (ms):", m.e2e_ms.p99);
  s += rule("Time to First Token", '-');
  s += rowf("Mean TTFT (ms):", m.ttft_ms.mean);
  s += rowf("Median TTFT (ms):", m.ttft_ms.median);
  s += rowf("P99 TTFT (ms):", m.ttft_ms.p99);
  s += rule("Time per Output Token (excl. 1st token)", '-');
  s += rowf("Mean TPOT (ms):", m.tpot_ms.mean);
  s += rowf("Median TPOT (ms):", m.tpot_ms.median);
  s += rowf("P99 TPOT (ms):", m.tpot_ms.p99);
  s += rule("Inter-Token Latency", '-');
  s += rowf("Mean ITL (ms):", m.itl_ms.mean);
  s += rowf("Median ITL (ms):", m.itl_ms.median);
  s += rowf("P95 ITL (ms):", m.itl_ms.p95);
  s += rowf("P99 ITL (ms):", m.itl_ms.p99);
  s += rowf("Max ITL (ms):", m.itl_ms.max);
  s += std::string(50, '=') + "\n";
  return s;
}

nlohmann::json metrics_to_json(const BenchMetrics& m) {
  nlohmann::json j;
  j["duration"] = m.duration_s;
  j["completed"] = m.completed;
  j["failed"] = m.failed;
  j["total_input_tokens"] = m.total_input;
  j["total_input_text_tokens"] = m.total_input;
  j["total_input_vision_tokens"] = 0;
  j["total_output_tokens"] = m.total_output;
  j["total_output_tokens_retokenized"] = m.total_output_retokenized;
  j["total_server_prompt_tokens"] = m.total_server_prompt_tokens;
  j["request_throughput"] = m.request_throughput;
  j["input_throughput"] = m.input_throughput;
  j["output_throughput"] = m.output_throughput;
  j["total_throughput"] = m.total_throughput;
  j["concurrency"] = m.concurrency;
  j["max_output_tokens_per_s"] = m.peaks.max_output_tokens_per_s;
  j["max_concurrent_requests"] = m.peaks.max_concurrent_requests;
  j["accept_length"] = m.accept_length ? nlohmann::json(*m.accept_length) : nlohmann::json(nullptr);
  auto put = [&](const char* name, const Summary& s) {
    j[fmt::format("mean_{}_ms", name)] = s.mean;
    j[fmt::format("median_{}_ms", name)] = s.median;
    j[fmt::format("std_{}_ms", name)] = s.std;
    j[fmt::format("p90_{}_ms", name)] = s.p90;
    j[fmt::format("p95_{}_ms", name)] = s.p95;
    j[fmt::format("p99_{}_ms", name)] = s.p99;
    j[fmt::format("max_{}_ms", name)] = s.max;
  };
  put("e2e_latency", m.e2e_ms);
  put("ttft", m.ttft_ms);
  put("tpot", m.tpot_ms);
  put("itl", m.itl_ms);
  return j;
}

}  // namespace ds::bench
