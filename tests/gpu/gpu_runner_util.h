// Shared helpers of the whole-model GPU drivers (gpu_model, gpu_graphs, gpu_oracle): deterministic
// prompts and paged segments for ds::cuda::CudaModel plans. Header-only, host code.
#pragma once
#include <cstdint>
#include <vector>

#include "model/batch.h"

namespace ds::gputest {

/// n token ids in [0, vocab) from an LCG seeded by `seed` (deterministic across machines).
inline std::vector<int32_t> prompt(int n, int vocab, uint32_t seed) {
  std::vector<int32_t> t;
  uint32_t x = seed * 2654435761u + 12345u;
  for (int i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    t.push_back(int32_t((x >> 8) % uint32_t(vocab)));
  }
  return t;
}

/// Pages [first, first + n) for a sequence (each sequence gets its own range).
inline std::vector<int32_t> pages(int first, int n) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back(first + i);
  return p;
}

/// A segment of `toks` starting at position `start` over page table `pt` (logits of every row
/// when `all`).
inline ds::Segment seg(const std::vector<int32_t>& toks, int start, const std::vector<int32_t>& pt, bool all = false) {
  ds::Segment s;
  s.start_pos = start;
  s.tokens = toks;
  s.page_table = pt;
  s.all_logits = all;
  return s;
}

}  // namespace ds::gputest
