#include "kernels/cpu/index_score.h"

#include <algorithm>
#include <numeric>

#include "kernels/cpu/gemm.h"

namespace ds::cpu {

void index_scores(const float* q, const float* w, int Hi, int D, const float* keys, const float* k_scale,
                  int64_t L, float* out) {
  for (int64_t s = 0; s < L; ++s) {
    const float* k = keys + s * D;
    float acc = 0.f;
    for (int j = 0; j < Hi; ++j) {
      float v = dot_fixed(q + int64_t(j) * D, k, D);
      acc += std::max(v, 0.f) * w[j];
    }
    out[s] = acc * k_scale[s];
  }
}

std::vector<int32_t> topk_indices(const float* scores, int64_t n, int64_t k) {
  k = std::min(k, n);
  std::vector<int32_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
  });
  idx.resize(size_t(k));
  std::sort(idx.begin(), idx.end());
  return idx;
}

}  // namespace ds::cpu
