#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/gemm.h"

namespace ds::cpu {

void mqa_attention(const float* q_lat, const float* q_pe, int H, int dc, int dr, const float* latent,
                   const float* k_pe, const int32_t* idx, int n, float scale, float* o_lat) {
  thread_local std::vector<float> p;
  p.resize(size_t(n));
  for (int h = 0; h < H; ++h) {
    const float* ql = q_lat + int64_t(h) * dc;
    const float* qp = q_pe + int64_t(h) * dr;
    float mx = -INFINITY;
    for (int s = 0; s < n; ++s) {
      const int64_t j = idx[s];
      float v = dot_fixed(ql, latent + j * dc, dc) + dot_fixed(qp, k_pe + j * dr, dr);
      p[s] = v * scale;
      mx = std::max(mx, p[s]);
    }
    float sum = 0.f;
    for (int s = 0; s < n; ++s) {
      p[s] = std::exp(p[s] - mx);
      sum += p[s];
    }
    const float inv = 1.0f / sum;
    float* o = o_lat + int64_t(h) * dc;
    std::fill(o, o + dc, 0.f);
    for (int s = 0; s < n; ++s) {
      const float w = p[s] * inv;
      const float* c = latent + int64_t(idx[s]) * dc;
      for (int d = 0; d < dc; ++d) o[d] += w * c[d];
    }
  }
}

}  // namespace ds::cpu
