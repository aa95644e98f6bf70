// Lightning-indexer scores and top-k selection (spec/model.md 5.2 step 10, 5.3).
#pragma once
#include <cstdint>
#include <vector>

namespace ds::cpu {

/// score[s] = k_scale[s] * sum_j w[j] * ReLU(q[j]·k[s]) for s in [0, L), FP32 (fixed order).
/// q [Hi, D] (FP8 values in official mode), w [Hi] (head weights incl. q_scale and constants),
/// keys [L, D], k_scale [L], out [L].
void index_scores(const float* q, const float* w, int Hi, int D, const float* keys, const float* k_scale,
                  int64_t L, float* out);

/// Indices of the k largest scores among [0, n) (k = min(k, n)); ties go to the lower index.
/// Returned in ascending index order.
std::vector<int32_t> topk_indices(const float* scores, int64_t n, int64_t k);

}  // namespace ds::cpu
