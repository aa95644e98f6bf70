#include "kernels/cpu/act_quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "common/numeric.h"

namespace ds::cpu {

float ue8m0_scale(float amax) {
  float a = std::max(amax, 1e-4f) * (1.0f / 448.0f);
  uint32_t u;
  std::memcpy(&u, &a, 4);
  int e = int((u >> 23) & 0xffu) - 127 + ((u & 0x7fffffu) != 0 ? 1 : 0);
  return std::ldexp(1.0f, e);
}

void act_quant(const float* x, int64_t rows, int64_t cols, float* q, float* scales) {
  if (cols % kQuantBlock != 0)
    throw std::invalid_argument("act_quant: channel count " + std::to_string(cols) +
                                " is not a multiple of 128");
  const int64_t groups = cols / kQuantBlock;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      const float* xs = x + r * cols + g * kQuantBlock;
      float* qs = q + r * cols + g * kQuantBlock;
      float amax = 0.f;
      for (int i = 0; i < kQuantBlock; ++i) amax = std::max(amax, std::fabs(xs[i]));
      float s = ue8m0_scale(amax);
      float inv = 1.0f / s;  // exact: s is a power of two
      for (int i = 0; i < kQuantBlock; ++i) {
        float v = std::clamp(xs[i] * inv, -448.0f, 448.0f);
        qs[i] = fp8_e4m3_to_f32(f32_to_fp8_e4m3(v));
      }
      scales[r * groups + g] = s;
    }
  }
}

void fp8_round_trip(float* x, int64_t rows, int64_t cols) {
  if (cols % kQuantBlock != 0)
    throw std::invalid_argument("fp8_round_trip: channel count " + std::to_string(cols) +
                                " is not a multiple of 128");
  const int64_t groups = cols / kQuantBlock;
  float s_buf[1];
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < groups; ++g) {
      float* p = x + r * cols + g * kQuantBlock;
      act_quant(p, 1, kQuantBlock, p, s_buf);
      for (int i = 0; i < kQuantBlock; ++i) p[i] *= s_buf[0];
    }
}

}  // namespace ds::cpu
