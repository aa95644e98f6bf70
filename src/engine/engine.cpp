#include "engine/engine.h"

#include <algorithm>
#include <random>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "model/deepseek_v32.h"  // SequenceCache

namespace ds {

struct Engine::Running {
  Request req;
  std::shared_ptr<RequestStream> stream;
  std::unique_ptr<SequenceCache> cache;
  std::vector<int32_t> generated;
  SamplerRng rng;
  bool prefilled = false;

  Running(Request r, std::shared_ptr<RequestStream> s, uint64_t seed)
      : req(std::move(r)), stream(std::move(s)), rng(seed) {}
  int total() const { return int(req.prompt_ids.size() + generated.size()); }
  /// The segment that brings the cache up to date and yields the next-token logits.
  Segment next_segment() {
    Segment seg;
    seg.cache = cache.get();
    if (!prefilled) {
      seg.start_pos = 0;
      seg.tokens = req.prompt_ids;
    } else {
      seg.start_pos = total() - 1;
      seg.tokens = {generated.back()};
    }
    return seg;
  }
  /// Everything seen so far as one prefill into a fresh cache (used to isolate a failing forward).
  Segment replay_segment() {
    Segment seg;
    seg.cache = cache.get();
    seg.start_pos = 0;
    seg.tokens = req.prompt_ids;
    seg.tokens.insert(seg.tokens.end(), generated.begin(), generated.end());
    return seg;
  }
};

namespace {
uint64_t random_seed() {
  std::random_device rd;
  return (uint64_t(rd()) << 32) ^ uint64_t(rd());
}
}  // namespace

Engine::Engine(std::unique_ptr<ModelExecutor> executor, EngineOptions opts)
    : exec_(std::move(executor)), opts_(opts) {
  if (!exec_) throw std::invalid_argument("Engine: executor is null");
  if (opts_.context_length < 2) throw std::invalid_argument("Engine: context_length must be >= 2");
  if (opts_.max_running_requests < 1) throw std::invalid_argument("Engine: max_running_requests must be >= 1");
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
  if (thread_.joinable()) thread_.join();
  // Requests that never reached the thread (or arrived when it was not started).
  std::deque<std::unique_ptr<Running>> left;
  {
    std::lock_guard<std::mutex> lk(mu_);
    left.swap(inbox_);
  }
  for (auto& r : left) {
    TokenEvent ev;
    ev.finish = FinishReason::Abort;
    ev.prompt_tokens = int(r->req.prompt_ids.size());
    --in_flight_;  // before the final event, so a reader that saw it also sees the count
    r->stream->push(ev);
  }
}

std::shared_ptr<RequestStream> Engine::submit(Request req) {
  auto stream = std::make_shared<RequestStream>(req.id);
  uint64_t seed = req.sampling.seed ? *req.sampling.seed : random_seed();
  auto r = std::make_unique<Running>(std::move(req), stream, seed);
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopping_) throw std::runtime_error("engine is shutting down");
    inbox_.push_back(std::move(r));
    ++in_flight_;
  }
  cv_.notify_all();
  return stream;
}

void Engine::fail(Running& r, const std::string& msg) {
  spdlog::warn("request {} failed: {}", r.req.id, msg);
  TokenEvent ev;
  ev.finish = FinishReason::Error;
  ev.error = msg;
  ev.prompt_tokens = int(r.req.prompt_ids.size());
  ev.completion_tokens = int(r.generated.size());
  --in_flight_;
  r.stream->push(ev);
}

// Moves queued requests into `running` (up to the cap), validating each. Returns false to stop.
bool Engine::admit(std::vector<std::unique_ptr<Running>>& running) {
  std::vector<std::unique_ptr<Running>> fresh;
  {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return stopping_ || !inbox_.empty() || !running.empty(); });
    if (stopping_) return false;
    while (!inbox_.empty() && int(running.size() + fresh.size()) < opts_.max_running_requests) {
      fresh.push_back(std::move(inbox_.front()));
      inbox_.pop_front();
    }
  }
  const int vocab = exec_->vocab_size();
  for (auto& r : fresh) {
    const auto& ids = r->req.prompt_ids;
    if (!ids.empty() && r->req.max_new_tokens <= 0) {  // nothing to generate (auto-truncated prompts)
      TokenEvent ev;
      ev.finish = FinishReason::Length;
      ev.prompt_tokens = int(ids.size());
      --in_flight_;
      r->stream->push(ev);
      continue;
    }
    std::string err;
    if (ids.empty()) {
      err = "the prompt is empty";
    } else if (int(ids.size()) >= opts_.context_length) {
      err = "The input (" + std::to_string(ids.size()) + " tokens) is longer than the model's context length (" +
            std::to_string(opts_.context_length) + " tokens).";
    } else {
      for (int32_t t : ids)
        if (t < 0 || t >= vocab) {
          err = "prompt token id " + std::to_string(t) + " is outside the vocabulary [0, " + std::to_string(vocab) + ")";
          break;
        }
    }
    if (!err.empty()) {
      fail(*r, err);
      continue;
    }
    try {
      r->cache = exec_->new_cache();
    } catch (const std::exception& e) {
      fail(*r, std::string("cannot allocate the sequence cache: ") + e.what());
      continue;
    }
    running.push_back(std::move(r));
  }
  return true;
}

bool Engine::advance(Running& r, const float* logits) {
  int32_t tok = sample_token(logits, exec_->vocab_size(), r.req.sampling, r.rng);
  r.generated.push_back(tok);
  r.prefilled = true;
  TokenEvent ev;
  ev.token = tok;
  ev.prompt_tokens = int(r.req.prompt_ids.size());
  ev.completion_tokens = int(r.generated.size());
  const auto& stops = r.req.stop_token_ids;
  if (!r.req.ignore_eos && std::find(stops.begin(), stops.end(), tok) != stops.end()) {
    ev.finish = FinishReason::Stop;
    ev.matched_stop = tok;
  } else if (int(r.generated.size()) >= r.req.max_new_tokens || r.total() >= opts_.context_length) {
    ev.finish = FinishReason::Length;
  }
  bool done = ev.finished();
  if (done) --in_flight_;
  r.stream->push(std::move(ev));
  return done;
}

void Engine::step(std::vector<std::unique_ptr<Running>>& running) {
  // Drop requests whose client is gone.
  for (auto& r : running) {
    if (r->stream->aborted()) {
      TokenEvent ev;
      ev.finish = FinishReason::Abort;
      ev.prompt_tokens = int(r->req.prompt_ids.size());
      ev.completion_tokens = int(r->generated.size());
      --in_flight_;
      r->stream->push(ev);
      spdlog::debug("request {} aborted by the client after {} tokens", r->req.id, r->generated.size());
      r.reset();
    }
  }
  std::erase_if(running, [](const auto& r) { return !r; });
  if (running.empty()) return;

  BatchPlan plan;
  for (auto& r : running) plan.segments.push_back(r->next_segment());
  max_batch_.store(std::max(max_batch_.load(), int(plan.segments.size())));

  std::vector<bool> done(running.size(), false);
  try {
    Logits logits = exec_->forward(plan);
    ++steps_;
    for (size_t i = 0; i < running.size(); ++i) done[i] = advance(*running[i], logits.last(int(i)));
  } catch (const std::exception& e) {
    // Isolate the failure: rerun each request alone from a fresh cache.
    spdlog::warn("forward over {} segments failed ({}); retrying request by request", plan.segments.size(), e.what());
    for (size_t i = 0; i < running.size(); ++i) {
      Running& r = *running[i];
      try {
        r.cache = exec_->new_cache();
        BatchPlan one;
        one.segments.push_back(r.replay_segment());
        Logits logits = exec_->forward(one);
        done[i] = advance(r, logits.last(0));
      } catch (const std::exception& e2) {
        fail(r, std::string("forward failed: ") + e2.what());
        done[i] = true;
      }
    }
  }
  for (size_t i = 0; i < running.size(); ++i)
    if (done[i]) running[i].reset();
  std::erase_if(running, [](const auto& r) { return !r; });
}

void Engine::loop() {
  std::vector<std::unique_ptr<Running>> running;
  while (admit(running)) step(running);
  for (auto& r : running) {
    TokenEvent ev;
    ev.finish = FinishReason::Abort;
    ev.prompt_tokens = int(r->req.prompt_ids.size());
    ev.completion_tokens = int(r->generated.size());
    --in_flight_;
    r->stream->push(ev);
  }
}

}  // namespace ds
