// Test helpers shared by the engine tests: a paged fake model and event collection.
#pragma once
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine.h"

namespace engine_test {

using namespace std::chrono_literals;

constexpr int kVocab = 16;
constexpr int32_t kPoison = 13;  // a forward over a segment holding this token throws

// A paged fake model: a pool of token ids per KV slot. The forward writes each segment's tokens
// into its page-table slots and reads the whole sequence back through the page table, so a wrong
// page (shared, reused, leaked or preempted badly) changes the output in `hash` mode.
class FakeExecutor : public ds::ModelExecutor {
 public:
  bool flat = false;                      // uniform logits (for sampling tests)
  bool hash = false;                      // next token = f(every token read through the page table)
  std::chrono::milliseconds delay{0};     // per forward
  int page_size = 0;
  std::vector<int32_t> slots;             // token id per KV slot (-1 = never written)
  void init_kv(int ps, int64_t num_pages) override {
    page_size = ps;
    slots.assign(size_t(ps * num_pages), -1);
  }
  ds::Logits forward(const ds::BatchPlan& plan) override {
    if (delay.count()) std::this_thread::sleep_for(delay);
    ds::Logits out;
    out.vocab = kVocab;
    out.row_begin.push_back(0);
    for (const auto& s : plan.segments) {
      if (s.cache) throw std::invalid_argument("the engine must use pages");
      if (int64_t(s.page_table.size()) * page_size < s.start_pos + int64_t(s.tokens.size()))
        throw std::invalid_argument("short page table");
      for (int32_t t : s.tokens)
        if (t == kPoison) throw std::runtime_error("poison token");
    }
    for (const auto& s : plan.segments) {
      auto slot = [&](int64_t p) { return size_t(s.page_table[size_t(p / page_size)] * page_size + p % page_size); };
      for (size_t i = 0; i < s.tokens.size(); ++i) slots[slot(s.start_pos + int64_t(i))] = s.tokens[i];
      const int64_t end = s.start_pos + int64_t(s.tokens.size());
      uint32_t h = 7;
      for (int64_t p = 0; p < end; ++p) h = h * 31u + uint32_t(slots[slot(p)] + 1);
      std::vector<float> row(kVocab, 0.0f);
      if (flat) row[size_t(kPoison)] = -1e30f;  // flat over the other tokens; never sample the poison
      else if (hash) row[size_t(h % 12u)] = 10.0f;  // ids 0..11: never the poison
      else row[size_t((s.tokens.back() + 1) % kVocab)] = 10.0f;
      out.data.insert(out.data.end(), row.begin(), row.end());
      out.row_begin.push_back(out.row_begin.back() + 1);
    }
    return out;
  }
  int vocab_size() const override { return kVocab; }
};

struct Result {
  std::vector<int32_t> tokens;
  ds::TokenEvent last;
};

inline Result collect(ds::RequestStream& s, std::chrono::milliseconds limit = 5000ms) {
  Result r;
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    auto ev = s.pop(50ms);
    if (!ev) continue;
    if (ev->token >= 0) r.tokens.push_back(ev->token);
    r.last = *ev;
    if (ev->finished()) return r;
  }
  ADD_FAILURE() << "request " << s.id() << " did not finish";
  return r;
}

inline ds::Request req(std::string id, std::vector<int32_t> prompt, int max_new) {
  ds::Request r;
  r.id = std::move(id);
  r.prompt_ids = std::move(prompt);
  r.max_new_tokens = max_new;
  r.sampling.temperature = 0.0f;
  return r;
}

}  // namespace engine_test
