// The unit of work the engine hands the model: a batch plan of segments (D27).
#pragma once
#include <cstdint>
#include <vector>

namespace ds {

struct SequenceCache;

/// One request's slice of a forward step: `tokens` at absolute positions
/// [start_pos, start_pos + tokens.size()). Logits are produced for the last token only, or for
/// every token if `all_logits`. The KV state is addressed in one of two ways:
///  - paged (the engine): `cache` is null and `page_table` lists page ids of the model's KvPool
///    (DeepseekV32::init_kv_pool); position p lives in slot
///    page_table[p / page_size] * page_size + p % page_size. Slots of positions [0, start_pos)
///    must already hold this sequence's keys (earlier steps or a shared radix prefix); the forward
///    writes positions [start_pos, start_pos + tokens.size()), so the table must cover them.
///  - private (tests, tools): `cache` holds exactly start_pos tokens; the forward appends.
struct Segment {
  SequenceCache* cache = nullptr;
  int32_t start_pos = 0;
  std::vector<int32_t> tokens;
  bool all_logits = false;
  std::vector<int32_t> page_table = {};
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
