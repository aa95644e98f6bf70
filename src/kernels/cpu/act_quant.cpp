#include "kernels/cpu/act_quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "common/numeric.h"

namespace ds::cpu {
namespace {

// round_fp8_e4m3(v) for v in [-448, 448] or NaN (what act_quant feeds it), without the library
// calls of the byte encoder: round half to even to 3 mantissa bits on the FP32 bits (a carry into
// the exponent is the next binade's 1.0), and for |v| < 2^-6 to the subnormal quantum 2^-9
// (v * 512 is exact). Equal to fp8_e4m3_to_f32(f32_to_fp8_e4m3(v)) bit for bit, signed zeros and
// NaN included (checked over every such float by tests/unit/test_act_quant_fast.cpp's sweep).
inline float round_fp8_clamped(float v) {
  if (v != v) return kFp8E4M3Table[0x7f];
  const float a = std::fabs(v);
  float r;
  if (a < 0.015625f) {
    r = std::nearbyint(a * 512.0f) * (1.0f / 512.0f);
  } else {
    uint32_t u;
    std::memcpy(&u, &a, 4);
    u += 0x7ffffu + ((u >> 20) & 1u);
    u &= ~0xfffffu;
    std::memcpy(&r, &u, 4);
    r = std::min(r, 448.0f);
  }
  return std::copysign(r, v);
}

}  // namespace

float round_fp8_clamped_for_test(float v) { return round_fp8_clamped(v); }

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
        qs[i] = round_fp8_clamped(v);
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
