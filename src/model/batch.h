// The unit of work the engine hands the model: a batch plan of segments (D27).
#pragma once
#include <cstdint>
#include <vector>

namespace ds {

struct SequenceCache;

/// One request's slice of a forward step: `tokens` at absolute positions
/// [start_pos, start_pos + tokens.size()). `cache` must already hold exactly start_pos tokens of this
/// sequence (prefill chunk or decode step); the forward appends the new tokens' latent and indexer
/// keys to it. Logits are produced for the last token only, or for every token if `all_logits`.
struct Segment {
  SequenceCache* cache = nullptr;
  int32_t start_pos = 0;
  std::vector<int32_t> tokens;
  bool all_logits = false;
};

/// A forward step over several requests. Results for a segment never depend on the other
/// segments in the plan (batch invariance, D27).
struct BatchPlan {
  std::vector<Segment> segments;
};

/// Logits of one forward: for segment i, rows [row_begin[i], row_begin[i+1]) of `data`,
/// each `vocab` floats (FP32).
struct Logits {
  int vocab = 0;
  std::vector<float> data;
  std::vector<int> row_begin;
  const float* row(int segment, int r = 0) const {
    return data.data() + size_t(row_begin[segment] + r) * size_t(vocab);
  }
  /// Last row of a segment (the next-token distribution).
  const float* last(int segment) const { return data.data() + size_t(row_begin[segment + 1] - 1) * size_t(vocab); }
};

}  // namespace ds
