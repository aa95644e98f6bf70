// The engine thread: continuous batching over one model (docs/architecture.md "How a chat request
// flows", step 2). HTTP threads submit Requests and read TokenEvents; only the engine thread runs
// the forward.
#pragma once
#include <atomic>
#include <chrono>
#include <optional>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/request.h"
#include "engine/scheduler.h"
#include "model/batch.h"

namespace ds {

class DeepseekV32;

/// What the engine needs from a model: a paged KV pool and one forward over a plan. Called from
/// the engine thread only.
class ModelExecutor {
 public:
  virtual ~ModelExecutor() = default;
  /// (Re)creates the KV pool: `num_pages` pages of `page_size` token slots (contents undefined).
  virtual void init_kv(int page_size, int64_t num_pages) = 0;
  /// Same contract as DeepseekV32::forward with paged segments (writes each segment's keys into
  /// its page-table slots; returns the last-token logits per segment). May throw before writing;
  /// the engine then reruns segments one by one and fails only the guilty request.
  virtual Logits forward(const BatchPlan& plan) = 0;
  virtual int vocab_size() const = 0;

  /// Sampling parameters of one segment for forward_sample (ds::SamplingParams' filter fields, no
  /// penalties / logit_bias / masks / logprobs) and its uniform draw u = SamplerRng::next_double()
  /// (taken by the scheduler exactly when the CPU sampler would take it: non-greedy rows).
  struct SampleRow {
    float temperature = 1.0f, top_p = 1.0f, min_p = 0.0f;
    int top_k = -1;
    double u = 0.0;
  };
  /// True when forward_sample is implemented (device sampling, e.g. the CUDA runner). Default false:
  /// the scheduler samples on the CPU from forward()'s logits.
  virtual bool can_sample() const { return false; }
  /// forward() and then the token of every segment sampled where the logits are (same rule as
  /// ds::sample_token with `rows[i].u` as the draw); only ids come back. No all_logits segments.
  /// Same failure contract as forward(). Default: throws std::logic_error.
  virtual std::vector<int32_t> forward_sample(const BatchPlan& plan, const std::vector<SampleRow>& rows);
  /// Captured decode-graph batch sizes (fixed once the KV pool exists; empty: none) and the number
  /// of graph replays so far (thread-safe; for /metrics and /get_server_info).
  virtual std::vector<int> cuda_graph_sizes() const { return {}; }
  virtual uint64_t cuda_graph_replays() const { return 0; }
};

/// Adapter over a loaded DeepseekV32 (src/engine/deepseek_executor.cpp).
std::unique_ptr<ModelExecutor> make_deepseek_executor(std::shared_ptr<DeepseekV32> model);

/// Engine limits = the scheduler's (context_length and max_running_requests first).
using EngineOptions = SchedulerOptions;

/// One engine thread looping: take submitted requests, Scheduler::step() (admit with radix prefix
/// matching, plan prefill chunks + decodes into one BatchPlan, forward, sample, retire), and when
/// idle check the page invariant (KvStats) and serve /flush_cache.
class Engine {
 public:
  /// Creates the scheduler (and the executor's KV pool). Throws std::invalid_argument naming the
  /// flag on bad options.
  Engine(std::unique_ptr<ModelExecutor> executor, EngineOptions opts);
  ~Engine();  // stop()
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  void start();
  /// Stops the thread; every pending or running request gets an Abort event. Idempotent.
  void stop();

  /// Queues a request; returns its event stream. Thread-safe. Throws std::runtime_error once
  /// stopped. Invalid requests (empty prompt, ids outside the vocabulary, prompt >= context or
  /// >= the KV pool) are answered with an Error event, not an exception.
  std::shared_ptr<RequestStream> submit(Request req);

  /// Empties the radix prefix cache. Thread-safe; waits for the engine thread. False (nothing
  /// done) when requests are queued or running, or the engine is stopped (SGLang's /flush_cache).
  bool flush_cache();
  /// Blocks until the engine thread is idle (no request queued or running) and returns the KV
  /// accounting it checked then; nullopt on timeout. Thread-safe.
  std::optional<KvStats> wait_idle(std::chrono::milliseconds timeout);

  const EngineOptions& options() const { return opts_; }
  /// Forward steps run so far (for tests and metrics).
  uint64_t steps() const { return sched_->steps(); }
  /// Largest number of segments seen in one plan (tests check that batching happens).
  int max_batch_seen() const { return sched_->max_batch_seen(); }
  /// Requests currently queued or running.
  int in_flight() const { return in_flight_.load(); }
  /// The executor's decode-graph sizes and replay count (ModelExecutor); thread-safe.
  std::vector<int> cuda_graph_sizes() const { return exec_->cuda_graph_sizes(); }
  uint64_t cuda_graph_replays() const { return exec_->cuda_graph_replays(); }

 private:
  void loop();

  std::unique_ptr<ModelExecutor> exec_;
  EngineOptions opts_;
  std::unique_ptr<Scheduler> sched_;
  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<std::unique_ptr<SchedRequest>> inbox_;
  bool stopping_ = false;
  bool idle_ = false;                 // the thread published idle_stats_ and has no work
  KvStats idle_stats_;
  int flush_requests_ = 0, flush_done_ = 0;
  bool flush_result_ = false;
  uint64_t arrivals_ = 0;
  std::thread thread_;
  std::atomic<int> in_flight_{0};
};

}  // namespace ds
