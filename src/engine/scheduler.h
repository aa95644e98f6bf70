// The scheduler of the engine thread (docs/architecture.md "How a chat request flows", step 2):
// owns the requests, the page allocator and the radix prefix cache; each step it plans one
// BatchPlan mixing prefill chunks and decodes, runs it, samples and retires requests.
#pragma once
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/page_allocator.h"
#include "engine/radix_cache.h"
#include "engine/request.h"
#include "model/batch.h"

namespace ds {

class ModelExecutor;

/// --schedule-policy: fcfs = arrival order; lpm = longest cached prefix first (ties: arrival).
enum class SchedulePolicy { Fcfs, Lpm };
/// Throws std::invalid_argument naming --schedule-policy on other values.
SchedulePolicy parse_schedule_policy(const std::string& s);

/// Scheduler limits (SGLang's flags). Token counts are KV slots.
struct SchedulerOptions {
  int context_length = 4096;
  int max_running_requests = 64;
  int page_size = 64;
  int64_t max_total_tokens = 1 << 20;   // pool = max_total_tokens / page_size pages
  int chunked_prefill_size = 8192;      // most prompt tokens of one request per step; <= 0: no chunking
  int max_prefill_tokens = 16384;       // most prefill tokens of all requests per step
  SchedulePolicy policy = SchedulePolicy::Fcfs;
  bool disable_radix_cache = false;
};

/// KV accounting at one instant: every page is free, cached (radix tree) or owned by exactly one
/// running request; `invariant_error` is empty when that holds.
struct KvStats {
  int64_t total_pages = 0, free_pages = 0, cached_pages = 0, owned_pages = 0;
  int running = 0, waiting = 0;
  uint64_t preemptions = 0;
  std::string invariant_error;
};

/// One queued or running request inside the scheduler.
struct SchedRequest {
  Request req;
  std::shared_ptr<RequestStream> stream;
  SamplerRng rng;
  uint64_t arrival = 0;
  std::vector<int32_t> seq;        // prompt + generated ids
  int n_prompt = 0;
  std::vector<int32_t> pages;      // page table; pages[0, n_tree_pages) belong to the radix tree
  int n_tree_pages = 0;
  RadixCache::Node* node = nullptr;  // locked tree node ending at n_tree_pages (null: none)
  int computed = 0;                // positions whose keys are in the page slots
  int cached_tokens = -1;          // radix hit at first admission (-1: not admitted yet)
  bool done = false;               // finished; removed at the end of the step
  /// Prompt log-probabilities (Request.prompt_logprob_start >= 0): collected while prefilling,
  /// sent on the first event. `prompt_lp_next` = next prompt position to score (its logits row is
  /// position prompt_lp_next - 1); -1 before first admission or when none are wanted.
  std::vector<PromptTokenLogprob> prompt_lp;
  int prompt_lp_next = -1;
  bool prompt_lp_sent = false;
  /// True while prompt positions remain to be scored (prefill must return every row's logits).
  bool wants_prompt_logits() const { return prompt_lp_next >= 0 && prompt_lp_next < n_prompt; }
  SchedRequest(Request r, std::shared_ptr<RequestStream> s, uint64_t seed, uint64_t arr);
  int generated() const { return int(seq.size()) - n_prompt; }
};

/// Engine-thread-only. `exec` must outlive it; its KV pool is (re)initialized by the constructor.
class Scheduler {
 public:
  /// Throws std::invalid_argument naming the flag on bad options (page size < 1, pool < 1 page).
  Scheduler(ModelExecutor& exec, SchedulerOptions opts);
  ~Scheduler();

  /// Queues a request (validated at admission; invalid ones get an Error event).
  void add(std::unique_ptr<SchedRequest> r);
  bool idle() const { return running_.empty() && waiting_.empty(); }
  /// One engine step: drop aborted requests, admit, plan, forward, sample, retire.
  void step();
  /// Ends every request with an Abort event and frees its pages.
  void abort_all();
  /// Empties the radix cache if no request is queued or running; false (cache kept) otherwise.
  bool flush_cache();
  /// Current accounting, with the page invariant checked.
  KvStats stats() const;

  /// Forward steps run; counted before the step's events are posted, and readable from any thread.
  uint64_t steps() const { return steps_.load(); }
  /// Largest number of segments in one plan; readable from any thread.
  int max_batch_seen() const { return max_batch_.load(); }
  /// Called with every finished request (for the engine's in-flight count). Set before use.
  std::function<void()> on_finish;

 private:
  void admit();
  bool plan(BatchPlan& plan, std::vector<SchedRequest*>& who);
  bool take_pages(int64_t n, std::vector<int32_t>& out);
  void cache_prefix(SchedRequest& r);
  void release(SchedRequest& r);
  void preempt(size_t running_index);
  void finish(SchedRequest& r, TokenEvent ev);
  void fail(SchedRequest& r, const std::string& msg, bool invalid_request = false);
  /// Samples (CPU, from `logits`) or takes `device_token` (logits null: sampled by the executor),
  /// then emits the token event; true when the request finished.
  bool advance(SchedRequest& r, const float* logits, int32_t device_token = -1);
  /// Posts the event of `tok` (already appended to r.seq): stop / length checks, counters.
  bool emit(SchedRequest& r, int32_t tok, TokenEvent ev);
  /// Whether this request's next token can be sampled on the device (no penalties, logit_bias,
  /// min_new_tokens hold, constraint, logprobs, forced ids, prompt logprobs).
  bool device_samplable(const SchedRequest& r) const;
  void collect_prompt_logprobs(SchedRequest& r, const Segment& seg, const Logits& lg, int segment);
  void remove_finished();

  ModelExecutor& exec_;
  SchedulerOptions opts_;
  PageAllocator alloc_;
  RadixCache tree_;
  std::deque<std::unique_ptr<SchedRequest>> waiting_;
  std::vector<std::unique_ptr<SchedRequest>> running_;  // admission order
  std::atomic<uint64_t> steps_{0};
  uint64_t preemptions_ = 0;
  std::atomic<int> max_batch_{0};
};

}  // namespace ds
