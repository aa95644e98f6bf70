#include "kernels/cpu/layernorm.h"

#include <cmath>
#include <vector>

#include "common/numeric.h"

namespace ds::cpu {

void layernorm(const float* x, const float* w, const float* b, int64_t n, float eps, float* y, bool bf16_out) {
  float sum = 0.f;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const float mean = sum / float(n);
  float var = 0.f;
  for (int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  var /= float(n);
  const float inv = 1.0f / std::sqrt(var + eps);
  for (int64_t i = 0; i < n; ++i) {
    float v = (x[i] - mean) * inv * w[i] + b[i];
    y[i] = bf16_out ? round_bf16(v) : v;
  }
}

}  // namespace ds::cpu
