#include "kernels/cpu/parallel.h"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace ds::cpu {
namespace {

thread_local bool t_in_task = false;

int default_threads() {
  if (const char* e = std::getenv("DEEPSERVE_THREADS")) {
    int n = std::atoi(e);
    if (n >= 1) return n;
  }
  unsigned h = std::thread::hardware_concurrency();
  return h == 0 ? 1 : int(h);
}

class Pool {
 public:
  ~Pool() { stop_workers(); }

  int threads() {
    std::lock_guard<std::mutex> g(config_mu_);
    if (want_ == 0) want_ = default_threads();
    return want_;
  }
  void set_threads(int n) {
    std::lock_guard<std::mutex> g(config_mu_);
    want_ = n < 1 ? 1 : n;
  }

  void run(int64_t n, const std::function<void(int64_t)>& fn) {
    std::lock_guard<std::mutex> run_guard(run_mu_);  // one parallel region at a time
    int t = threads();
    if (int(workers_.size()) != t - 1) {
      stop_workers();
      start_workers(t - 1);
    }
    {
      std::lock_guard<std::mutex> g(mu_);
      fn_ = &fn;
      n_ = n;
      next_.store(0);
      active_ = 0;
      open_ = true;
      ++generation_;
    }
    cv_.notify_all();
    work();
    // Close the region: a worker that wakes up only now (the machine is busy) must not be waited
    // for, since every task is already claimed; wait only for workers still inside a task.
    std::unique_lock<std::mutex> lk(mu_);
    open_ = false;
    done_cv_.wait(lk, [&] { return active_ == 0; });
    fn_ = nullptr;
  }

 private:
  void work() {
    t_in_task = true;
    for (;;) {
      int64_t i = next_.fetch_add(1);
      if (i >= n_) break;
      (*fn_)(i);
    }
    t_in_task = false;
  }
  void worker_loop() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return quit_ || generation_ != seen; });
        if (quit_) return;
        seen = generation_;
        if (!open_) continue;  // that region is over
        ++active_;
      }
      work();
      std::lock_guard<std::mutex> g(mu_);
      if (--active_ == 0) done_cv_.notify_one();
    }
  }
  void start_workers(int n) {
    quit_ = false;
    for (int i = 0; i < n; ++i) workers_.emplace_back([this] { worker_loop(); });
  }
  void stop_workers() {
    {
      std::lock_guard<std::mutex> g(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  std::mutex config_mu_, run_mu_, mu_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  std::atomic<int64_t> next_{0};
  int active_ = 0;     // workers inside the current region's work()
  bool open_ = false;  // the current region still accepts workers
  uint64_t generation_ = 0;
  bool quit_ = false;
  int want_ = 0;
};

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

int num_threads() { return pool().threads(); }
void set_num_threads(int n) { pool().set_threads(n); }

void parallel_for(int64_t n_tasks, const std::function<void(int64_t)>& fn) {
  if (n_tasks <= 0) return;
  if (n_tasks == 1 || t_in_task || num_threads() == 1) {
    for (int64_t i = 0; i < n_tasks; ++i) fn(i);
    return;
  }
  pool().run(n_tasks, fn);
}

}  // namespace ds::cpu
