#include "engine/engine.h"

#include <random>
#include <stdexcept>

#include <spdlog/spdlog.h>

namespace ds {

namespace {
uint64_t random_seed() {
  std::random_device rd;
  return (uint64_t(rd()) << 32) ^ uint64_t(rd());
}
}  // namespace

Engine::Engine(std::unique_ptr<ModelExecutor> executor, EngineOptions opts)
    : exec_(std::move(executor)), opts_(opts) {
  if (!exec_) throw std::invalid_argument("Engine: executor is null");
  sched_ = std::make_unique<Scheduler>(*exec_, opts_);
  sched_->on_finish = [this] { --in_flight_; };
}

Engine::~Engine() { stop(); }

void Engine::start() {
  std::lock_guard<std::mutex> lk(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { loop(); });
}

void Engine::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  idle_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Requests that never reached the thread (or arrived when it was not started).
  std::deque<std::unique_ptr<SchedRequest>> left;
  {
    std::lock_guard<std::mutex> lk(mu_);
    left.swap(inbox_);
  }
  for (auto& r : left) sched_->add(std::move(r));
  sched_->abort_all();
}

std::shared_ptr<RequestStream> Engine::submit(Request req) {
  auto stream = std::make_shared<RequestStream>(req.id);
  uint64_t seed = req.sampling.seed ? *req.sampling.seed : random_seed();
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopping_) throw std::runtime_error("engine is shutting down");
    inbox_.push_back(std::make_unique<SchedRequest>(std::move(req), stream, seed, arrivals_++));
    ++in_flight_;
    idle_ = false;
  }
  cv_.notify_all();
  return stream;
}

bool Engine::flush_cache() {
  std::unique_lock<std::mutex> lk(mu_);
  if (stopping_ || !thread_.joinable()) return false;
  const int ticket = ++flush_requests_;
  cv_.notify_all();
  idle_cv_.wait(lk, [&] { return stopping_ || flush_done_ >= ticket; });
  return flush_done_ >= ticket && flush_result_;
}

std::optional<KvStats> Engine::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  if (!idle_cv_.wait_for(lk, timeout, [&] { return idle_ && inbox_.empty(); })) return std::nullopt;
  return idle_stats_;
}

void Engine::loop() {
  for (;;) {
    std::deque<std::unique_ptr<SchedRequest>> fresh;
    bool flush = false;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !inbox_.empty() || !sched_->idle() || flush_requests_ > flush_done_; });
      if (stopping_) break;
      fresh.swap(inbox_);
      flush = flush_requests_ > flush_done_;
    }
    for (auto& r : fresh) sched_->add(std::move(r));
    if (flush) {
      const bool ok = sched_->flush_cache();
      spdlog::info(ok ? "radix cache flushed" : "flush_cache refused: requests are queued or running");
      // Publish the post-flush accounting with the result, so a wait_idle() right after
      // flush_cache() returns never sees the stats from before the flush.
      std::optional<KvStats> st;
      if (sched_->idle()) st = sched_->stats();
      std::lock_guard<std::mutex> lk(mu_);
      if (st) idle_stats_ = *st;
      flush_result_ = ok;
      flush_done_ = flush_requests_;
      idle_cv_.notify_all();
    }
    if (!sched_->idle()) {
      sched_->step();
    }
    if (sched_->idle()) {
      // Idle: every page must be free or cached (the invariant; cheap, so checked in every build).
      KvStats st = sched_->stats();
      if (!st.invariant_error.empty()) spdlog::error("KV page invariant violated: {}", st.invariant_error);
      std::lock_guard<std::mutex> lk(mu_);
      idle_stats_ = st;
      idle_ = inbox_.empty();
      idle_cv_.notify_all();
    }
  }
  sched_->abort_all();
}

}  // namespace ds
