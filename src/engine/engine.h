// The engine thread: continuous batching over one model (docs/architecture.md "How a chat request
// flows", step 2). HTTP threads submit Requests and read TokenEvents; only the engine thread runs
// the forward.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/request.h"
#include "model/batch.h"

namespace ds {

class DeepseekV32;

/// What the engine needs from a model: fresh per-request caches and one forward over a plan.
/// Called from the engine thread only.
class ModelExecutor {
 public:
  virtual ~ModelExecutor() = default;
  virtual std::unique_ptr<SequenceCache> new_cache() = 0;
  /// Same contract as DeepseekV32::forward (appends each segment's tokens to its cache; returns
  /// the last-token logits per segment). May throw; the engine then fails the guilty request.
  virtual Logits forward(const BatchPlan& plan) = 0;
  virtual int vocab_size() const = 0;
};

/// Adapter over a loaded DeepseekV32 (src/engine/deepseek_executor.cpp).
std::unique_ptr<ModelExecutor> make_deepseek_executor(std::shared_ptr<DeepseekV32> model);

/// Engine limits. `context_length`: prompt + generated tokens never exceed it (finish "length").
/// `max_running_requests`: at most this many requests in one batch; later ones wait, FIFO.
struct EngineOptions {
  int context_length = 4096;
  int max_running_requests = 64;
};

/// One engine thread looping: admit new requests (each prefilled as one segment), build one
/// BatchPlan with every running request (prefills + one-token decodes), forward, sample per request
/// (its own SamplerRng seeded by SamplingParams::seed or a random seed), post TokenEvents, retire
/// finished and aborted requests. A forward that throws is retried request by request from scratch
/// so only the failing request gets an Error event; the engine keeps running.
class Engine {
 public:
  Engine(std::unique_ptr<ModelExecutor> executor, EngineOptions opts);
  ~Engine();  // stop()
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  void start();
  /// Stops the thread; every pending or running request gets an Abort event. Idempotent.
  void stop();

  /// Queues a request; returns its event stream. Thread-safe. Throws std::runtime_error once
  /// stopped. Invalid requests (empty prompt, ids outside the vocabulary, prompt >= context)
  /// are answered with an Error event, not an exception.
  std::shared_ptr<RequestStream> submit(Request req);

  const EngineOptions& options() const { return opts_; }
  /// Forward steps run so far (for tests and metrics).
  uint64_t steps() const { return steps_.load(); }
  /// Largest number of segments seen in one plan (tests check that batching happens).
  int max_batch_seen() const { return max_batch_.load(); }
  /// Requests currently queued or running.
  int in_flight() const { return in_flight_.load(); }

 private:
  struct Running;
  void loop();
  bool admit(std::vector<std::unique_ptr<Running>>& running);
  void step(std::vector<std::unique_ptr<Running>>& running);
  /// Samples the next token of `r` from `logits`, posts the event; true if `r` finished.
  bool advance(Running& r, const float* logits);
  void fail(Running& r, const std::string& msg);

  std::unique_ptr<ModelExecutor> exec_;
  EngineOptions opts_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Running>> inbox_;
  bool stopping_ = false;
  std::thread thread_;
  std::atomic<uint64_t> steps_{0};
  std::atomic<int> max_batch_{0};
  std::atomic<int> in_flight_{0};
};

}  // namespace ds
