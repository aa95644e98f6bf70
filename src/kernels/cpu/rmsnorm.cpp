#include "kernels/cpu/rmsnorm.h"

#include <cmath>
#include <vector>

#include "common/numeric.h"
#include "kernels/cpu/gemm.h"

namespace ds::cpu {

void rmsnorm(const float* x, const float* w, int64_t n, float eps, float* y, bool bf16_out) {
  float ss = dot_fixed(x, x, n);
  float inv = 1.0f / std::sqrt(ss / float(n) + eps);
  for (int64_t i = 0; i < n; ++i) {
    float v = w[i] * (x[i] * inv);
    y[i] = bf16_out ? round_bf16(v) : v;
  }
}

void add_rmsnorm(const float* f, float* r, const float* w, int64_t n, float eps, float* y, bool bf16) {
  thread_local std::vector<float> s;
  s.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) s[i] = f ? f[i] + r[i] : r[i];
  for (int64_t i = 0; i < n; ++i) r[i] = bf16 ? round_bf16(s[i]) : s[i];
  rmsnorm(s.data(), w, n, eps, y, bf16);
}

}  // namespace ds::cpu
