#include "engine/scheduler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "engine/engine.h"
#include "model/logit_processing.h"

namespace ds {

SchedulePolicy parse_schedule_policy(const std::string& s) {
  if (s == "fcfs") return SchedulePolicy::Fcfs;
  if (s == "lpm") return SchedulePolicy::Lpm;
  throw std::invalid_argument("--schedule-policy: unsupported value '" + s + "' (supported: fcfs, lpm)");
}

std::vector<int32_t> ModelExecutor::forward_sample(const BatchPlan&, const std::vector<SampleRow>&) {
  throw std::logic_error("ModelExecutor::forward_sample: this executor samples on the CPU (can_sample() is false)");
}

SchedRequest::SchedRequest(Request r, std::shared_ptr<RequestStream> s, uint64_t seed, uint64_t arr)
    : req(std::move(r)), stream(std::move(s)), rng(seed), arrival(arr) {
  seq = req.prompt_ids;
  n_prompt = int(seq.size());
}

namespace {
int64_t pool_pages(const SchedulerOptions& o) {
  if (o.page_size < 1) throw std::invalid_argument("--page-size must be >= 1 (got " + std::to_string(o.page_size) + ")");
  if (o.max_running_requests < 1) throw std::invalid_argument("--max-running-requests must be >= 1");
  if (o.context_length < 2) throw std::invalid_argument("context length must be >= 2");
  if (o.max_prefill_tokens < 1) throw std::invalid_argument("--max-prefill-tokens must be >= 1");
  const int64_t pages = o.max_total_tokens / o.page_size;
  if (pages < 1)
    throw std::invalid_argument("--max-total-tokens " + std::to_string(o.max_total_tokens) +
                                " is smaller than one page (--page-size " + std::to_string(o.page_size) + ")");
  return pages;
}
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
// Most prompt tokens per prefill chunk of a request whose every logits row is returned (prompt
// log-probabilities): bounds the logits buffer (rows x vocab FP32). Chunking never changes the
// numbers (D27).
constexpr int kMaxAllLogitsChunk = 256;
// The first event of a request carries its prompt log-probabilities (once).
void attach_prompt_logprobs(SchedRequest& r, TokenEvent& ev) {
  if (r.prompt_lp_next < 0 || r.prompt_lp_sent) return;
  ev.prompt_logprobs = std::move(r.prompt_lp);
  r.prompt_lp.clear();
  r.prompt_lp_sent = true;
}
TokenEvent abort_event() {
  TokenEvent ev;
  ev.finish = FinishReason::Abort;
  return ev;
}
}  // namespace

Scheduler::Scheduler(ModelExecutor& exec, SchedulerOptions opts)
    : exec_(exec), opts_(opts), alloc_(pool_pages(opts)), tree_(opts.page_size) {
  exec_.init_kv(opts_.page_size, alloc_.num_pages());
}

Scheduler::~Scheduler() = default;

void Scheduler::add(std::unique_ptr<SchedRequest> r) { waiting_.push_back(std::move(r)); }

bool Scheduler::take_pages(int64_t n, std::vector<int32_t>& out) {
  if (n <= 0) return true;
  if (alloc_.free_pages() < n && !opts_.disable_radix_cache) alloc_.free(tree_.evict(n - alloc_.free_pages()));
  return alloc_.alloc(n, out);
}

// Moves the request's fully computed pages into the radix tree (its own duplicates of pages the
// tree already holds are freed and replaced by the tree's, which hold the same values).
void Scheduler::cache_prefix(SchedRequest& r) {
  if (opts_.disable_radix_cache) return;
  const int ps = opts_.page_size;
  const int k = std::min<int>(r.computed / ps, int(r.pages.size()));
  if (k <= r.n_tree_pages) return;
  std::vector<int32_t> tp(r.pages.begin(), r.pages.begin() + k);
  RadixCache::Node* node = tree_.insert(r.seq.data(), size_t(k) * size_t(ps), tp);
  for (int j = r.n_tree_pages; j < k; ++j)
    if (tp[size_t(j)] != r.pages[size_t(j)]) {
      alloc_.free(&r.pages[size_t(j)], 1);
      r.pages[size_t(j)] = tp[size_t(j)];
    }
  tree_.lock(node);
  if (r.node) tree_.unlock(r.node);
  r.node = node;
  r.n_tree_pages = k;
}

void Scheduler::release(SchedRequest& r) {
  if (r.pages.size() > size_t(r.n_tree_pages))
    alloc_.free(r.pages.data() + r.n_tree_pages, r.pages.size() - size_t(r.n_tree_pages));
  if (r.node) tree_.unlock(r.node);
  r.pages.clear();
  r.n_tree_pages = 0;
  r.node = nullptr;
  r.computed = 0;
}

void Scheduler::preempt(size_t i) {
  std::unique_ptr<SchedRequest> r = std::move(running_[i]);
  running_.erase(running_.begin() + long(i));
  spdlog::debug("preempting request {} ({} tokens computed)", r->req.id, r->computed);
  cache_prefix(*r);
  release(*r);
  ++preemptions_;
  waiting_.push_front(std::move(r));
}

void Scheduler::finish(SchedRequest& r, TokenEvent ev) {
  if (ev.finish == FinishReason::Stop || ev.finish == FinishReason::Length) cache_prefix(r);
  release(r);
  r.done = true;
  ev.prompt_tokens = r.n_prompt;
  ev.completion_tokens = r.generated();
  ev.cached_tokens = std::max(0, r.cached_tokens);
  if (ev.finish != FinishReason::Error) attach_prompt_logprobs(r, ev);
  if (on_finish) on_finish();  // before the final event, so a reader that saw it sees the count
  r.stream->push(std::move(ev));
}

void Scheduler::fail(SchedRequest& r, const std::string& msg, bool invalid_request) {
  spdlog::warn("request {} failed: {}", r.req.id, msg);
  TokenEvent ev;
  ev.finish = FinishReason::Error;
  ev.error = msg;
  ev.invalid_request = invalid_request;
  finish(r, std::move(ev));
}

void Scheduler::abort_all() {
  for (auto* q : {&running_}) for (auto& r : *q) if (!r->done) finish(*r, abort_event());
  for (auto& r : waiting_) if (!r->done) finish(*r, abort_event());
  running_.clear();
  waiting_.clear();
}

// Validates a request at its first admission; false (request finished) if it cannot run.
static std::string validate(const SchedRequest& r, int vocab, int context, int64_t capacity) {
  const auto& ids = r.req.prompt_ids;
  if (ids.empty()) return "the prompt is empty";
  if (int64_t(ids.size()) >= context)
    return "The input (" + std::to_string(ids.size()) + " tokens) is longer than the model's context length (" +
           std::to_string(context) + " tokens).";
  if (int64_t(ids.size()) >= capacity)
    return "The input (" + std::to_string(ids.size()) + " tokens) does not fit in the KV cache (" +
           std::to_string(capacity) + " tokens from --max-total-tokens and --page-size); it can never be scheduled.";
  for (int32_t t : ids)
    if (t < 0 || t >= vocab)
      return "prompt token id " + std::to_string(t) + " is outside the vocabulary [0, " + std::to_string(vocab) + ")";
  return "";
}

void Scheduler::admit() {
  const int ps = opts_.page_size;
  const int64_t capacity = alloc_.num_pages() * ps;
  while (!waiting_.empty() && int(running_.size()) < opts_.max_running_requests) {
    size_t pick = 0;
    if (opts_.policy == SchedulePolicy::Lpm && !opts_.disable_radix_cache && waiting_.size() > 1) {
      size_t best = 0;
      for (size_t i = 0; i < waiting_.size(); ++i) {
        std::vector<int32_t> pg;
        const auto& s = waiting_[i]->seq;
        tree_.match(s.data(), s.size() - 1, pg);
        if (pg.size() > best) best = pg.size(), pick = i;
      }
    }
    SchedRequest& r = *waiting_[pick];
    if (r.cached_tokens < 0) {  // first admission
      if (r.req.max_new_tokens <= 0 && r.req.prompt_logprob_start < 0) {  // nothing to generate or score
        TokenEvent ev;
        ev.finish = FinishReason::Length;
        r.cached_tokens = 0;
        finish(r, ev);
      } else if (std::string err = validate(r, exec_.vocab_size(), opts_.context_length, capacity); !err.empty()) {
        r.cached_tokens = 0;
        fail(r, err, /*invalid_request=*/true);
      }
      if (r.done) {
        waiting_.erase(waiting_.begin() + long(pick));
        continue;
      }
      if (r.req.prompt_logprob_start >= 0) {
        r.prompt_lp_next = std::min(r.req.prompt_logprob_start, r.n_prompt);
        if (r.prompt_lp_next == 0) {  // position 0: no log-probability (nothing precedes it)
          PromptTokenLogprob first;
          first.token = r.seq[0];
          r.prompt_lp.push_back(std::move(first));
          r.prompt_lp_next = 1;
        }
      }
    }
    std::vector<int32_t> matched;
    RadixCache::Node* node = nullptr;
    size_t match_limit = r.seq.size() - 1;  // the last token is always computed
    // Positions whose logits score prompt tokens must be computed by this request (as SGLang).
    if (r.wants_prompt_logits()) match_limit = std::min(match_limit, size_t(r.prompt_lp_next - 1));
    if (!opts_.disable_radix_cache) node = tree_.match(r.seq.data(), match_limit, matched);
    const int computed = int(matched.size()) * ps;
    int first = int(r.seq.size()) - computed;
    if (opts_.chunked_prefill_size > 0) first = std::min(first, opts_.chunked_prefill_size);
    const int64_t need = ceil_div(computed + first, ps) - int64_t(matched.size()) + 1;  // + a decode page
    if (!running_.empty()) {
      if (node) tree_.lock(node);  // the match itself must not count as evictable
      const int64_t avail = alloc_.free_pages() + (opts_.disable_radix_cache ? 0 : tree_.evictable_pages());
      if (node) tree_.unlock(node);
      if (need > avail) break;  // wait for pages (head of line keeps its place)
    }
    if (node) tree_.lock(node);
    r.node = (node && node != tree_.root()) ? node : nullptr;
    if (node && !r.node) tree_.unlock(node);
    r.pages = matched;
    r.n_tree_pages = int(matched.size());
    r.computed = computed;
    if (r.cached_tokens < 0) r.cached_tokens = computed;
    running_.push_back(std::move(waiting_[pick]));
    waiting_.erase(waiting_.begin() + long(pick));
  }
}

bool Scheduler::plan(BatchPlan& plan, std::vector<SchedRequest*>& who) {
  const int ps = opts_.page_size;
  int budget = opts_.max_prefill_tokens;
  for (size_t i = 0; i < running_.size(); ++i) {
    SchedRequest& r = *running_[i];
    const int remaining = int(r.seq.size()) - r.computed;  // >= 1
    int n = 1;
    if (remaining > 1) {
      n = remaining;
      if (opts_.chunked_prefill_size > 0) n = std::min(n, opts_.chunked_prefill_size);
      if (r.wants_prompt_logits()) n = std::min(n, kMaxAllLogitsChunk);
      n = std::min(n, budget);
      if (n <= 0) continue;
    }
    int64_t need = ceil_div(r.computed + n, ps) - int64_t(r.pages.size());
    if (!take_pages(need, r.pages)) {
      if (remaining > 1) {  // prefill: shrink the chunk to the pages there are
        const int64_t avail = alloc_.free_pages() + (opts_.disable_radix_cache ? 0 : tree_.evictable_pages());
        n = int(std::min<int64_t>(n, (int64_t(r.pages.size()) + avail) * ps - r.computed));
        if (n <= 0) continue;
        need = ceil_div(r.computed + n, ps) - int64_t(r.pages.size());
        if (!take_pages(need, r.pages)) continue;
      } else {  // decode: preempt the newest requests not yet planned, else this one
        bool ok = false;
        while (!(ok = take_pages(need, r.pages)) && running_.size() - 1 > i) preempt(running_.size() - 1);
        if (!ok) {
          preempt(i);
          --i;
          continue;
        }
      }
    }
    if (remaining > 1) budget -= n;
    Segment seg;
    seg.start_pos = r.computed;
    seg.tokens.assign(r.seq.begin() + r.computed, r.seq.begin() + r.computed + n);
    seg.page_table = r.pages;
    seg.all_logits = remaining > 1 && r.wants_prompt_logits();
    plan.segments.push_back(std::move(seg));
    who.push_back(&r);
  }
  return !plan.segments.empty();
}

// Scores the prompt positions whose previous position this segment computed: row i of an
// all_logits segment is the distribution of position start_pos + i + 1.
void Scheduler::collect_prompt_logprobs(SchedRequest& r, const Segment& seg, const Logits& lg, int segment) {
  if (!seg.all_logits || !r.wants_prompt_logits()) return;
  const int vocab = exec_.vocab_size();
  const int rows = lg.row_begin[size_t(segment) + 1] - lg.row_begin[size_t(segment)];
  const int top = std::max(r.req.top_logprobs, 0);
  for (int i = 0; i < rows && i < int(seg.tokens.size()); ++i) {
    const int p = seg.start_pos + i + 1;
    if (p != r.prompt_lp_next || p >= r.n_prompt) continue;
    TokenLogprobs lp = token_logprobs(lg.row(segment, i), vocab, r.seq[size_t(p)], top);
    PromptTokenLogprob e;
    e.token = r.seq[size_t(p)];
    e.logprob = lp.logprob;
    e.top = std::move(lp.top);
    r.prompt_lp.push_back(std::move(e));
    r.prompt_lp_next = p + 1;
  }
}

bool Scheduler::device_samplable(const SchedRequest& r) const {
  const bool hold_stops = !r.req.ignore_eos && r.generated() < r.req.min_new_tokens;
  return r.req.max_new_tokens > 0 && !has_penalties(r.req.sampling) && r.req.sampling.logit_bias.empty() &&
         !hold_stops && !r.req.constraint && r.req.top_logprobs < 0 &&
         size_t(r.generated()) >= r.req.forced_output.size() && !r.wants_prompt_logits();
}

bool Scheduler::advance(SchedRequest& r, const float* logits, int32_t device_token) {
  if (r.req.max_new_tokens <= 0) {  // prompt scoring only (max_new_tokens 0 with prompt logprobs)
    TokenEvent ev;
    ev.finish = FinishReason::Length;
    finish(r, std::move(ev));
    return true;
  }
  const int vocab = exec_.vocab_size();
  const auto& stops = r.req.stop_token_ids;
  if (!logits) {  // sampled on the device (device_samplable: no logit processing, no logprobs)
    r.seq.push_back(device_token);
    return emit(r, device_token, TokenEvent{});
  }
  // Penalties and min_new_tokens work on a copy of this request's logits (model/logit_processing.h).
  std::vector<float> processed;
  const bool hold_stops = !r.req.ignore_eos && r.generated() < r.req.min_new_tokens;
  if (has_penalties(r.req.sampling) || hold_stops || !r.req.sampling.logit_bias.empty()) {
    processed.assign(logits, logits + vocab);
    apply_logit_bias(processed, r.req.sampling);
    apply_penalties(processed, r.req.sampling, std::span<const int32_t>(r.seq).subspan(size_t(r.n_prompt)));
    if (hold_stops)
      for (int32_t s : stops)
        if (s >= 0 && s < vocab) processed[size_t(s)] = -std::numeric_limits<float>::infinity();
    logits = processed.data();
  }
  if (r.req.constraint) {  // constrained decoding (text/token_mask.h): forbidden tokens get -inf
    if (processed.empty()) processed.assign(logits, logits + vocab);
    if (!r.req.constraint->apply(processed))  // only the end ids are left: min_tokens cannot hold them
      for (int32_t s : stops)
        if (s >= 0 && s < vocab && std::isinf(processed[size_t(s)])) processed[size_t(s)] = 0.0f;
    logits = processed.data();
  }
  const size_t n_gen = size_t(r.generated());
  const int32_t tok = n_gen < r.req.forced_output.size() ? r.req.forced_output[n_gen]  // test hook
                                                          : sample_token(logits, vocab, r.req.sampling, r.rng);
  if (r.req.constraint) r.req.constraint->accept(tok);
  r.seq.push_back(tok);
  TokenEvent ev;
  if (r.req.top_logprobs >= 0) {
    TokenLogprobs lp = token_logprobs(logits, vocab, tok, r.req.top_logprobs);
    ev.logprob = lp.logprob;
    ev.top_logprobs = std::move(lp.top);
  }
  return emit(r, tok, std::move(ev));
}

bool Scheduler::emit(SchedRequest& r, int32_t tok, TokenEvent ev) {
  const auto& stops = r.req.stop_token_ids;
  ev.token = tok;
  const int64_t capacity = alloc_.num_pages() * opts_.page_size;
  if (!r.req.ignore_eos && std::find(stops.begin(), stops.end(), tok) != stops.end()) {
    ev.finish = FinishReason::Stop;
    ev.matched_stop = tok;
  } else if (r.generated() >= r.req.max_new_tokens || int(r.seq.size()) >= opts_.context_length ||
             int64_t(r.seq.size()) >= capacity) {
    ev.finish = FinishReason::Length;
  }
  if (ev.finished()) {
    finish(r, std::move(ev));
    return true;
  }
  ev.prompt_tokens = r.n_prompt;
  ev.completion_tokens = r.generated();
  ev.cached_tokens = std::max(0, r.cached_tokens);
  attach_prompt_logprobs(r, ev);
  r.stream->push(std::move(ev));
  return false;
}

void Scheduler::remove_finished() {
  std::erase_if(running_, [](const auto& r) { return r->done; });
  std::erase_if(waiting_, [](const auto& r) { return r->done; });
}

void Scheduler::step() {
  for (auto& r : running_)
    if (r->stream->aborted()) {
      spdlog::debug("request {} aborted by the client after {} tokens", r->req.id, r->generated());
      finish(*r, abort_event());
    }
  for (auto& r : waiting_)
    if (r->stream->aborted()) finish(*r, abort_event());
  remove_finished();
  admit();
  BatchPlan p;
  std::vector<SchedRequest*> who;
  while (!plan(p, who)) {
    if (running_.empty()) return;
    if (running_.size() == 1) {  // alone and still no pages: cannot happen for a validated request
      fail(*running_[0], "no KV pages for a request running alone (--max-total-tokens too small)");
      remove_finished();
      return;
    }
    preempt(running_.size() - 1);  // prefills blocked each other: make room
  }
  if (int(p.segments.size()) > max_batch_.load()) max_batch_.store(int(p.segments.size()));
  auto update = [&](SchedRequest& r, const Segment& seg, const Logits& lg, int segment) {
    collect_prompt_logprobs(r, seg, lg, segment);
    r.computed += int(seg.tokens.size());
    if (r.computed == int(r.seq.size())) advance(r, lg.last(segment));
    else cache_prefix(r);  // a long prompt's finished pages become shareable while it prefills
  };
  // Device sampling (ModelExecutor::forward_sample) when every request of the step can use it; the
  // uniforms come from each request's RNG as the CPU sampler would draw them (restored on failure).
  bool on_device = exec_.can_sample();
  for (size_t i = 0; on_device && i < who.size(); ++i) {
    const SchedRequest& r = *who[i];
    const bool completes = r.computed + int(p.segments[i].tokens.size()) == int(r.seq.size());
    on_device = !p.segments[i].all_logits && !r.wants_prompt_logits() && (!completes || device_samplable(r));
  }
  if (on_device) {
    std::vector<SamplerRng> saved;
    std::vector<ModelExecutor::SampleRow> rows(who.size());
    for (size_t i = 0; i < who.size(); ++i) {
      SchedRequest& r = *who[i];
      saved.push_back(r.rng);
      const SamplingParams& sp = r.req.sampling;
      ModelExecutor::SampleRow& row = rows[i];
      row.temperature = sp.temperature, row.top_p = sp.top_p, row.top_k = sp.top_k, row.min_p = sp.min_p;
      const bool completes = r.computed + int(p.segments[i].tokens.size()) == int(r.seq.size());
      if (!completes) row.temperature = 0.0f;  // a mid-prompt chunk: its token is not used
      else if (sp.temperature >= 1e-6f) row.u = r.rng.next_double();  // sample_token's one draw
    }
    try {
      const std::vector<int32_t> ids = exec_.forward_sample(p, rows);
      ++steps_;
      for (size_t i = 0; i < who.size(); ++i) {
        SchedRequest& r = *who[i];
        r.computed += int(p.segments[i].tokens.size());
        if (r.computed == int(r.seq.size())) advance(r, nullptr, ids[i]);
        else cache_prefix(r);
      }
      remove_finished();
      return;
    } catch (const std::exception& e) {  // fall through to the CPU path (which also isolates failures)
      spdlog::warn("device sampling step over {} segments failed ({}); rerunning with CPU sampling",
                   p.segments.size(), e.what());
      for (size_t i = 0; i < who.size(); ++i) who[i]->rng = saved[i];
    }
  }
  try {
    Logits lg = exec_.forward(p);
    ++steps_;
    for (size_t i = 0; i < who.size(); ++i) update(*who[i], p.segments[i], lg, int(i));
  } catch (const std::exception& e) {
    // Isolate the failure: every segment alone (validation precedes writes, so rerunning a segment
    // rewrites the same slots with the same values).
    spdlog::warn("forward over {} segments failed ({}); retrying segment by segment", p.segments.size(), e.what());
    ++steps_;
    for (size_t i = 0; i < who.size(); ++i) {
      try {
        BatchPlan one;
        one.segments.push_back(p.segments[i]);
        Logits lg = exec_.forward(one);
        update(*who[i], p.segments[i], lg, 0);
      } catch (const std::exception& e2) {
        fail(*who[i], std::string("forward failed: ") + e2.what());
      }
    }
  }
  remove_finished();
}

bool Scheduler::flush_cache() {
  if (!idle()) return false;
  alloc_.free(tree_.reset());
  return true;
}

KvStats Scheduler::stats() const {
  KvStats s;
  s.total_pages = alloc_.num_pages();
  s.free_pages = alloc_.free_pages();
  s.cached_pages = tree_.cached_pages();
  s.running = int(running_.size());
  s.waiting = int(waiting_.size());
  s.preemptions = preemptions_;
  std::vector<int> seen(size_t(s.total_pages), 0);
  auto mark = [&](int32_t p, const char* what) {
    if (p < 0 || p >= s.total_pages) {
      if (s.invariant_error.empty()) s.invariant_error = std::string(what) + " page " + std::to_string(p) + " out of range";
      return;
    }
    if (++seen[size_t(p)] == 2 && s.invariant_error.empty())
      s.invariant_error = "page " + std::to_string(p) + " is held twice (second holder: " + what + ")";
  };
  for (int32_t p : alloc_.free_list()) mark(p, "free list");
  std::vector<int32_t> cached;
  tree_.collect_pages(cached);
  for (int32_t p : cached) mark(p, "radix cache");
  for (const auto& r : running_) {
    for (size_t j = size_t(r->n_tree_pages); j < r->pages.size(); ++j) mark(r->pages[j], "running request");
    s.owned_pages += int64_t(r->pages.size()) - r->n_tree_pages;
  }
  for (const auto& r : waiting_)
    if (!r->pages.empty() && s.invariant_error.empty()) s.invariant_error = "waiting request " + r->req.id + " holds pages";
  for (size_t p = 0; p < seen.size(); ++p)
    if (seen[p] == 0 && s.invariant_error.empty()) s.invariant_error = "page " + std::to_string(p) + " leaked";
  if (running_.empty() && tree_.evictable_pages() != tree_.cached_pages() && s.invariant_error.empty())
    s.invariant_error = "radix nodes locked with no request running";
  return s;
}

}  // namespace ds
