// act_quant's FP8 rounding (bit-trick form) equals the reference encoder/decoder
// round_fp8_e4m3 (common/numeric) bit for bit on its whole domain [-448, 448] and NaN. CI sweeps
// every 61st float bit pattern plus every FP8 value, the midpoints between neighbours and their
// FP32 neighbours (where rounding decides); the full sweep of all ~2.2e9 floats was run once
// (DEEPSERVE_FULL_SWEEP=1, ~2 min) when the fast form was introduced.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/numeric.h"
#include "kernels/cpu/act_quant.h"

namespace {

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

void expect_same(float v) {
  const float want = ds::round_fp8_e4m3(v), got = ds::cpu::round_fp8_clamped_for_test(v);
  if (std::isnan(want)) {
    ASSERT_TRUE(std::isnan(got)) << v;
    ASSERT_EQ(bits(got), bits(want)) << "NaN payload";
    return;
  }
  ASSERT_EQ(bits(got), bits(want)) << "v = " << v << " (bits " << std::hex << bits(v) << ")";
}

}  // namespace

TEST(ActQuantFast, RoundingEqualsReferenceEncoder) {
  const uint32_t max448 = bits(448.0f);
  const bool full = std::getenv("DEEPSERVE_FULL_SWEEP") != nullptr;
  const uint32_t step = full ? 1 : 61;
  for (uint32_t u = 0; u <= max448; u += step) {
    expect_same(from_bits(u));
    expect_same(-from_bits(u));
  }
  // Every FP8 value, the midpoints to the next one and the FP32 neighbours of both.
  std::vector<float> vals;
  for (int c = 0; c < 0x7f; ++c) vals.push_back(ds::fp8_e4m3_to_f32(uint8_t(c)));
  for (size_t i = 0; i + 1 < vals.size(); ++i) {
    const float mid = 0.5f * (vals[i] + vals[i + 1]);
    for (float v : {vals[i], mid})
      for (int d = -2; d <= 2; ++d) {
        const float x = from_bits(uint32_t(int64_t(bits(v)) + d));
        if (x > 448.0f || bits(v) + d > 0x7fffffffu) continue;
        expect_same(x);
        expect_same(-x);
      }
  }
  expect_same(0.0f);
  expect_same(-0.0f);
  expect_same(448.0f);
  expect_same(-448.0f);
  expect_same(std::nanf(""));
  expect_same(-std::nanf(""));
}
