// Load generation of `deepserve bench`. See bench_runner.h.
#include "tools/bench_runner.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "tools/http_client.h"

namespace ds::bench {

double now_s() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

RequestResult send_one(const RunConfig& cfg, const DatasetRow& row) {
  RequestResult r;
  r.prompt_len = row.prompt_len;
  r.requested_output_len = row.output_len;
  r.output_len = row.output_len;
  const std::string body = build_payload(cfg.api, row.prompt, row.output_len, cfg.payload).dump();
  const auto headers = http::auth_headers();
  r.start_time = now_s();
  try {
    if (cfg.payload.stream) {
      StreamParser parser(cfg.api, r);
      auto resp = http::post_json(cfg.url, body, headers, [&](const std::string& line) { parser.feed(line, now_s()); },
                                  cfg.timeout_s);
      if (resp.status == 200 && resp.error.empty()) {
        parser.finish();
      } else {
        r.success = false;
        r.error = http::describe_failure(resp);
      }
    } else {
      auto resp = http::post_json(cfg.url, body, headers, nullptr, cfg.timeout_s);
      if (resp.status == 200) {
        parse_nonstream(cfg.api, resp.body, now_s(), r);
      } else {
        r.success = false;
        r.error = http::describe_failure(resp);
      }
    }
  } catch (const std::exception& e) {
    r.success = false;
    r.error = e.what();
  }
  return r;
}

std::vector<double> arrival_gaps(int n, double rate, uint64_t seed) {
  if (!(rate > 0)) throw std::invalid_argument(fmt::format("--request-rate: {} must be > 0 (or inf)", rate));
  std::vector<double> gaps(static_cast<size_t>(std::max(n, 0)), 0.0);
  if (std::isinf(rate)) return gaps;
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> d(rate);
  for (auto& g : gaps) g = d(rng);  // bench_serving sleeps after each yield: gap i follows request i
  return gaps;
}

namespace {

// A counting semaphore with a runtime limit (std::counting_semaphore needs a compile-time maximum).
class Slots {
 public:
  explicit Slots(int n) : free_(n) {}
  void acquire() {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return free_ > 0; });
    --free_;
  }
  void release() {
    {
      std::lock_guard lk(mu_);
      ++free_;
    }
    cv_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int free_;
};

void draw_progress(int done, int total, double elapsed) {
  const int width = 40;
  const int fill = total ? done * width / total : width;
  std::fprintf(stderr, "\r%3d%%|%s%s| %d/%d [%.1fs]", total ? done * 100 / total : 100, std::string(fill, '#').c_str(),
               std::string(width - fill, ' ').c_str(), done, total, elapsed);
  std::fflush(stderr);
}

}  // namespace

std::vector<RequestResult> run_benchmark(const std::vector<DatasetRow>& rows, const RunConfig& cfg, double& duration_s) {
  const int n = static_cast<int>(rows.size());
  std::vector<RequestResult> results(rows.size());
  const auto gaps = arrival_gaps(n, cfg.request_rate, cfg.seed);
  std::optional<Slots> slots;
  if (cfg.max_concurrency) slots.emplace(*cfg.max_concurrency);
  std::atomic<int> done{0};
  std::atomic<bool> finished{false};
  const double t0 = now_s();
  std::thread progress;
  if (cfg.progress) {
    progress = std::thread([&] {
      while (!finished.load()) {
        draw_progress(done.load(), n, now_s() - t0);
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
      draw_progress(done.load(), n, now_s() - t0);
      std::fputc('\n', stderr);
    });
  }
  std::vector<std::thread> workers;
  workers.reserve(rows.size());
  for (int i = 0; i < n; ++i) {
    workers.emplace_back([&, i] {
      if (slots) slots->acquire();
      results[static_cast<size_t>(i)] = send_one(cfg, rows[static_cast<size_t>(i)]);
      if (slots) slots->release();
      done.fetch_add(1);
    });
    if (gaps[static_cast<size_t>(i)] > 0 && i + 1 < n)
      std::this_thread::sleep_for(std::chrono::duration<double>(gaps[static_cast<size_t>(i)]));
  }
  for (auto& w : workers) w.join();
  duration_s = now_s() - t0;
  finished = true;
  if (progress.joinable()) progress.join();
  return results;
}

}  // namespace ds::bench
