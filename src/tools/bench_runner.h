// Load generation of `deepserve bench`: sends the prompts with Poisson arrivals and a concurrency
// cap, as bench_serving (spec/serving.md 6.1 "Load control"), and collects per-request results.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "tools/bench_backends.h"
#include "tools/bench_dataset.h"
#include "tools/bench_metrics.h"

namespace ds::bench {

/// Seconds on the steady clock (the clock of RequestResult::start_time).
double now_s();

/// Settings of one run.
struct RunConfig {
  std::string url;                      // full endpoint URL, e.g. http://127.0.0.1:30000/v1/chat/completions
  Api api = Api::Chat;
  PayloadOptions payload;
  double request_rate = 0;              // requests/s; +inf = all at t=0
  std::optional<int> max_concurrency;   // in-flight cap (bench_serving's semaphore)
  uint64_t seed = 1;                    // Poisson inter-arrival draws
  bool progress = true;                 // progress bar on stderr
  long timeout_s = 6 * 3600;            // per request (bench_serving's aiohttp timeout)
};

/// Sends one prompt and measures it (streaming or not per cfg.payload.stream). Never throws:
/// transport errors and non-200 statuses give success=false with the error text.
RequestResult send_one(const RunConfig& cfg, const DatasetRow& row);

/// Inter-arrival gaps in seconds for n requests: 0 for rate = inf, else exponential with mean
/// 1/rate drawn from std::mt19937_64(seed). std::invalid_argument when rate <= 0.
std::vector<double> arrival_gaps(int n, double rate, uint64_t seed);

/// Runs all rows (one thread per in-flight request); returns results in row order and sets
/// `duration_s` to the wall time from the first dispatch to the last completion.
std::vector<RequestResult> run_benchmark(const std::vector<DatasetRow>& rows, const RunConfig& cfg,
                                         double& duration_s);

}  // namespace ds::bench
