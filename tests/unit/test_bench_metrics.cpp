// deepserve bench metrics on synthetic timings with hand-computed answers (spec/serving.md 6.1),
// and the report block against the seed's `Serving Benchmark Result` blocks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "tools/bench_metrics.h"

using namespace ds::bench;

namespace {
// Absolute tolerance for values computed in double from exact decimal inputs (rounding only).
constexpr double kTol = 1e-9;

RequestResult req(double start, double ttft, std::vector<double> itl, double latency, int out, int prompt, std::string text) {
  RequestResult r;
  r.success = true;
  r.start_time = start;
  r.ttft = ttft;
  r.itl = std::move(itl);
  r.latency = latency;
  r.output_len = out;
  r.prompt_len = prompt;
  r.generated_text = std::move(text);
  return r;
}

// A: 4 chunks at 0.5, 0.6, 0.8, 1.1, done at 1.2. B: starts 0.5, chunks at 1.5, 1.75, 2.0, done 2.5.
// C: failed (excluded everywhere).
std::vector<RequestResult> three() {
  RequestResult c;
  c.success = false;
  c.error = "HTTP 500";
  c.start_time = 0.2;
  c.latency = 9;
  c.prompt_len = 1000;
  return {req(0.0, 0.5, {0.1, 0.2, 0.3}, 1.2, 4, 10, "ab"), req(0.5, 1.0, {0.25, 0.25}, 2.0, 3, 20, "cde"), c};
}
}  // namespace

TEST(BenchMetrics, PercentileIsNumpyLinear) {
  EXPECT_NEAR(percentile({4, 1, 3, 2}, 50), 2.5, kTol);
  EXPECT_NEAR(percentile({4, 1, 3, 2}, 99), 3.97, kTol);  // rank 2.97 -> 3 + 0.97
  EXPECT_NEAR(percentile({50, 10, 40, 20, 30}, 90), 46.0, kTol);  // rank 3.6 -> 40 + 0.6*10
  EXPECT_EQ(percentile({7}, 99), 7);
  EXPECT_EQ(percentile({}, 99), 0);  // bench_serving's `x or 0`
  EXPECT_EQ(percentile({1, 2}, 0), 1);
  EXPECT_EQ(percentile({1, 2}, 100), 2);
  EXPECT_THROW(percentile({1}, 101), std::invalid_argument);
}

TEST(BenchMetrics, SummaryUsesPopulationStd) {
  auto s = summarize({1, 2, 3, 4});
  EXPECT_NEAR(s.mean, 2.5, kTol);
  EXPECT_NEAR(s.median, 2.5, kTol);
  EXPECT_NEAR(s.std, std::sqrt(1.25), kTol);  // ddof=0
  EXPECT_EQ(s.max, 4);
}

TEST(BenchMetrics, TpotExcludesFirstToken) {
  auto r = req(0, 0.5, {}, 1.2, 4, 0, "");
  EXPECT_NEAR(*tpot(r), (1.2 - 0.5) / 3, kTol);
  r.output_len = 1;
  EXPECT_FALSE(tpot(r).has_value());
}

TEST(BenchMetrics, AggregatesOnSyntheticRun) {
  auto m = calculate_metrics(three(), 2.5, [](const std::string& t) { return static_cast<int>(t.size()); }, std::nullopt);
  EXPECT_EQ(m.completed, 2);
  EXPECT_EQ(m.failed, 1);
  EXPECT_EQ(m.total_input, 30);
  EXPECT_EQ(m.total_output, 7);
  EXPECT_EQ(m.total_output_retokenized, 5);
  EXPECT_NEAR(m.request_throughput, 0.8, kTol);
  EXPECT_NEAR(m.input_throughput, 12.0, kTol);
  EXPECT_NEAR(m.output_throughput, 2.8, kTol);
  EXPECT_NEAR(m.total_throughput, 14.8, kTol);
  EXPECT_NEAR(m.concurrency, (1.2 + 2.0) / 2.5, kTol);
  // ITL per chunk (ms): 100 200 300 250 250.
  EXPECT_NEAR(m.itl_ms.mean, 220, 1e-6);
  EXPECT_NEAR(m.itl_ms.median, 250, 1e-6);
  EXPECT_NEAR(m.itl_ms.p95, 290, 1e-6);  // sorted 100 200 250 250 300, rank 3.8
  EXPECT_NEAR(m.itl_ms.p99, 298, 1e-6);
  EXPECT_NEAR(m.itl_ms.max, 300, 1e-6);
  EXPECT_NEAR(m.ttft_ms.mean, 750, 1e-6);
  EXPECT_NEAR(m.ttft_ms.p99, 995, 1e-6);
  EXPECT_NEAR(m.e2e_ms.mean, 1600, 1e-6);
  EXPECT_NEAR(m.e2e_ms.p90, 1920, 1e-6);
  EXPECT_NEAR(m.tpot_ms.mean, (700.0 / 3 + 500) / 2, 1e-6);
  EXPECT_NEAR(m.tpot_ms.median, (700.0 / 3 + 500) / 2, 1e-6);
  // 1 s bins from t=0: chunk arrivals 0.5 0.6 0.8 | 1.1 1.5 1.75 | 2.0 -> [3, 3, 1, 0].
  EXPECT_EQ(m.peaks.max_output_tokens_per_s, 3);
  // A in bins 0-1, B in bins 0-2 -> [2, 2, 1, 0].
  EXPECT_EQ(m.peaks.max_concurrent_requests, 2);
  EXPECT_FALSE(m.accept_length.has_value());
  EXPECT_THROW(calculate_metrics(three(), 0, nullptr, std::nullopt), std::invalid_argument);
}

TEST(BenchMetrics, PeakBinningCountsChunksPerSecond) {
  // Five chunks inside [0, 1) and two in [1, 2): peak 5 tok/s; one request -> peak concurrency 1.
  auto r = req(0.0, 0.1, {0.1, 0.1, 0.1, 0.1, 0.6, 0.1}, 1.3, 7, 1, "");
  auto p = peak_rates({r});
  EXPECT_EQ(p.max_output_tokens_per_s, 5);
  EXPECT_EQ(p.max_concurrent_requests, 1);
}

TEST(BenchMetrics, AcceptLengthOnlyWhenPositive) {
  auto m = calculate_metrics(three(), 2.5, nullptr, 2.46);
  ASSERT_TRUE(m.accept_length.has_value());
  EXPECT_NEAR(*m.accept_length, 2.46, kTol);
  EXPECT_FALSE(calculate_metrics(three(), 2.5, nullptr, 0.0).accept_length.has_value());
}

// bench_serving's speculative-decoding correction: with an accept length > 0 on sglang-oai(-chat),
// a chunk's interval is split evenly over its retokenized tokens. Tokenizer stub: 1 token per char.
TEST(BenchMetrics, RetokenizedItlSplitsChunksOnlyForSglangOaiWithAcceptLength) {
  auto r = req(0.0, 0.5, {0.3, 0.4}, 1.5, 6, 10, "abcdef");
  r.text_chunks = {"bcd", "ef"};  // 3 tokens in 0.3 s, 2 tokens in 0.4 s
  const auto chars = [](const std::string& t) { return static_cast<int>(t.size()); };
  for (const char* backend : {"sglang-oai", "sglang-oai-chat"}) {
    auto m = calculate_metrics({r}, 1.0, chars, 2.5, backend);
    // ITLs = 100, 100, 100, 200, 200 ms (0.3/3 three times, 0.4/2 twice): mean 140, median 100.
    EXPECT_NEAR(m.itl_ms.mean, 140.0, 1e-9) << backend;
    EXPECT_NEAR(m.itl_ms.median, 100.0, 1e-9) << backend;
    EXPECT_NEAR(m.itl_ms.max, 200.0, 1e-9) << backend;
    // Peak binning keeps the raw chunk arrivals: 0.5 and 0.8 in bin 0, 1.2 in bin 1.
    EXPECT_EQ(m.peaks.max_output_tokens_per_s, 2) << backend;
  }
  // Raw per-chunk ITLs (300, 400 ms) for other backends or without an accept length.
  for (auto [backend, accept] : std::vector<std::pair<std::string, std::optional<double>>>{
           {"sglang", 2.5}, {"vllm", 2.5}, {"sglang-oai", std::nullopt}, {"sglang-oai", 0.0}}) {
    auto m = calculate_metrics({r}, 1.0, chars, accept, backend);
    EXPECT_NEAR(m.itl_ms.mean, 350.0, 1e-9) << backend;
    EXPECT_NEAR(m.itl_ms.max, 400.0, 1e-9) << backend;
  }
  EXPECT_TRUE(use_retokenized_itl("sglang-oai-chat", 1.2));
  EXPECT_FALSE(use_retokenized_itl("openai-chat", 1.2));
  // Mismatched chunk bookkeeping or a missing tokenizer are errors, not silent zeros.
  auto bad = r;
  bad.text_chunks.pop_back();
  EXPECT_THROW(calculate_metrics({bad}, 1.0, chars, 2.5, "sglang-oai"), std::invalid_argument);
  EXPECT_THROW(calculate_metrics({r}, 1.0, nullptr, 2.5, "sglang-oai"), std::invalid_argument);
}

TEST(BenchMetrics, PythonFloatStr) {
  EXPECT_EQ(python_float_str(std::numeric_limits<double>::infinity()), "inf");
  EXPECT_EQ(python_float_str(64), "64.0");
  EXPECT_EQ(python_float_str(2.5), "2.5");
  EXPECT_EQ(python_float_str(0.1), "0.1");
}

namespace {
// Field names of a report block: the text before column 41 of each row, or the whole rule line.
std::vector<std::string> names_of(const std::vector<std::string>& lines) {
  std::vector<std::string> out;
  for (std::string l : lines) {
    while (!l.empty() && (l.back() == ' ' || l.back() == '\r')) l.pop_back();
    if (l.empty()) continue;
    if (l[0] == '-' || l[0] == '=') {
      out.push_back(l);
      continue;
    }
    std::string name = l.substr(0, std::min<size_t>(40, l.size()));
    while (!name.empty() && name.back() == ' ') name.pop_back();
    out.push_back(name);
  }
  return out;
}

std::vector<std::vector<std::string>> seed_blocks() {
  std::ifstream f(std::string(DEEPSERVE_SOURCE_DIR) + "/../shared/seed/000_469ae7b9dfcff9fa.txt");
  std::vector<std::vector<std::string>> blocks;
  std::string line;
  bool in = false;
  while (std::getline(f, line)) {
    if (line.rfind("============ Serving Benchmark Result ============", 0) == 0) {
      blocks.emplace_back();
      in = true;
    }
    if (in) blocks.back().push_back(line);
    if (in && line.rfind(std::string(50, '='), 0) == 0) in = false;
  }
  return blocks;
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  std::string l;
  while (std::getline(ss, l)) v.push_back(l);
  return v;
}
}  // namespace

TEST(BenchReport, FieldsMatchTheSeedBlocks) {
  auto blocks = seed_blocks();
  ASSERT_EQ(blocks.size(), 5u) << "seed section 5 has five Serving Benchmark Result blocks";
  auto m = calculate_metrics(three(), 2.5, nullptr, 2.46);
  const auto ours = names_of(split_lines(render_report({"sglang", std::numeric_limits<double>::infinity(), 1}, m)));
  // Block 1 (B200, latency-sensitive) is the full layout: identical names in identical order.
  EXPECT_EQ(ours, names_of(blocks[0]));
  // Every other block's fields appear in ours in the same order (they omit vision tokens, P90/P99
  // E2E or Accept length depending on the sglang version).
  for (size_t b = 1; b < blocks.size(); ++b) {
    const auto theirs = names_of(blocks[b]);
    size_t k = 0;
    for (const auto& n : ours)
      if (k < theirs.size() && theirs[k] == n) ++k;
    EXPECT_EQ(k, theirs.size()) << "seed block " << b + 1 << " field '" << (k < theirs.size() ? theirs[k] : "") << "'";
  }
  // Accept length is printed only when the server reports it.
  auto no_accept = names_of(split_lines(render_report({"sglang", 64.0, std::nullopt}, calculate_metrics(three(), 2.5, nullptr, std::nullopt))));
  EXPECT_EQ(std::count(no_accept.begin(), no_accept.end(), "Accept length:"), 0);
}

TEST(BenchReport, RowsAreFormattedLikePython) {
  auto m = calculate_metrics(three(), 2.5, nullptr, std::nullopt);
  const auto lines = split_lines(render_report({"sglang", 64.0, std::nullopt}, m));
  EXPECT_EQ(lines[0], "============ Serving Benchmark Result ============");
  EXPECT_EQ(lines[1], "Backend:                                 sglang    ");  // {:<40} {:<10}
  EXPECT_EQ(lines[2], "Traffic request rate:                    64.0      ");
  EXPECT_EQ(lines[3], "Max request concurrency:                 not set   ");
  EXPECT_EQ(lines[4], "Successful requests:                     2         ");
  EXPECT_EQ(lines[5], "Benchmark duration (s):                  2.50      ");
  EXPECT_EQ(lines[17], "Concurrency:                             1.28      ");
  EXPECT_EQ(lines[18], "----------------End-to-End Latency----------------");
  EXPECT_EQ(lines[27], "-----Time per Output Token (excl. 1st token)------");
  EXPECT_EQ(lines.back(), std::string(50, '='));
}

TEST(BenchReport, JsonHasEveryMetric) {
  auto j = metrics_to_json(calculate_metrics(three(), 2.5, nullptr, std::nullopt));
  EXPECT_EQ(j["completed"], 2);
  EXPECT_EQ(j["total_input_tokens"], 30);
  EXPECT_NEAR(j["p95_itl_ms"].get<double>(), 290, 1e-6);
  EXPECT_NEAR(j["std_ttft_ms"].get<double>(), 250, 1e-6);
  EXPECT_EQ(j["max_concurrent_requests"], 2);
  EXPECT_TRUE(j["accept_length"].is_null());
}
