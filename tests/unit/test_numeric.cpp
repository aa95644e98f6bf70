// FP8 E4M3 "fn" table and encoder, BF16 rounding, block (de)quantization (spec/model.md 3.4).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/numeric.h"

using namespace ds;

TEST(Numeric, DtypeTable) {
  EXPECT_EQ(dtype_size(DType::F32), 4u);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::F8_E4M3), 1u);
  EXPECT_EQ(dtype_size(DType::I64), 8u);
  EXPECT_EQ(dtype_name(DType::F8_E4M3), "F8_E4M3");
  EXPECT_EQ(dtype_from_name("BF16"), DType::BF16);
  EXPECT_EQ(dtype_from_name("U8"), DType::U8);
  EXPECT_FALSE(dtype_from_name("F16").has_value());
  EXPECT_FALSE(dtype_from_name("bf16").has_value());  // case-sensitive like safetensors
}

TEST(Numeric, Fp8TableEntries) {
  EXPECT_EQ(kFp8E4M3Table[0x38], 1.0f);                  // e=7, m=0
  EXPECT_EQ(kFp8E4M3Table[0x7e], 448.0f);                // e=15, m=6: max finite
  EXPECT_EQ(kFp8E4M3Table[0x01], std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_EQ(kFp8E4M3Table[0x07], 7.0f * std::ldexp(1.0f, -9));
  EXPECT_EQ(kFp8E4M3Table[0x08], std::ldexp(1.0f, -6));  // smallest normal
  EXPECT_EQ(kFp8E4M3Table[0x39], 1.125f);
  EXPECT_EQ(kFp8E4M3Table[0x77], 240.0f);  // 1.875 * 2^7
  EXPECT_EQ(kFp8E4M3Table[0xb8], -1.0f);
  EXPECT_EQ(kFp8E4M3Table[0xfe], -448.0f);
  EXPECT_EQ(kFp8E4M3Table[0x00], 0.0f);
  EXPECT_FALSE(std::signbit(kFp8E4M3Table[0x00]));
  EXPECT_EQ(kFp8E4M3Table[0x80], 0.0f);
  EXPECT_TRUE(std::signbit(kFp8E4M3Table[0x80]));  // -0.0
  EXPECT_TRUE(std::isnan(kFp8E4M3Table[0x7f]));
  EXPECT_TRUE(std::isnan(kFp8E4M3Table[0xff]));
  int nans = 0;
  for (int b = 0; b < 256; ++b) nans += std::isnan(kFp8E4M3Table[b]) ? 1 : 0;
  EXPECT_EQ(nans, 2);  // "fn": only S.1111.111, no infinities
}

TEST(Numeric, Fp8EncodeRoundTripsEveryFiniteCode) {
  for (int b = 0; b < 256; ++b) {
    if (b == 0x7f || b == 0xff) continue;
    EXPECT_EQ(f32_to_fp8_e4m3(kFp8E4M3Table[b]), b) << "code " << b;
  }
}

TEST(Numeric, Fp8RoundToNearestEven) {
  // Normal range: between 1.0 (0x38) and 1.125 (0x39) the midpoint 1.0625 goes to the even code.
  EXPECT_EQ(f32_to_fp8_e4m3(1.0625f), 0x38);
  EXPECT_EQ(f32_to_fp8_e4m3(std::nextafter(1.0625f, 2.0f)), 0x39);
  EXPECT_EQ(f32_to_fp8_e4m3(std::nextafter(1.0625f, 0.0f)), 0x38);
  EXPECT_EQ(f32_to_fp8_e4m3(1.1875f), 0x3a);  // midpoint 1.125..1.25 -> even mantissa 2
  EXPECT_EQ(f32_to_fp8_e4m3(-1.1875f), 0xba);
  // Mantissa overflow carries into the exponent: 1.9375 is the midpoint 1.875..2.0 -> 2.0 (0x40).
  EXPECT_EQ(f32_to_fp8_e4m3(1.9375f), 0x40);
  // Subnormals (quantum 2^-9): 0.5 q -> 0, 1.5 q -> 2 q, 2.5 q -> 2 q, 7.5 q -> 8 q = min normal.
  const float q = std::ldexp(1.0f, -9);
  EXPECT_EQ(f32_to_fp8_e4m3(0.5f * q), 0x00);
  EXPECT_EQ(f32_to_fp8_e4m3(-0.5f * q), 0x80);
  EXPECT_EQ(f32_to_fp8_e4m3(1.5f * q), 0x02);
  EXPECT_EQ(f32_to_fp8_e4m3(2.5f * q), 0x02);
  EXPECT_EQ(f32_to_fp8_e4m3(7.5f * q), 0x08);
  EXPECT_EQ(f32_to_fp8_e4m3(1e-30f), 0x00);
  EXPECT_EQ(f32_to_fp8_e4m3(-0.0f), 0x80);
}

TEST(Numeric, Fp8Saturates) {
  EXPECT_EQ(f32_to_fp8_e4m3(448.0f), 0x7e);
  EXPECT_EQ(f32_to_fp8_e4m3(449.0f), 0x7e);
  EXPECT_EQ(f32_to_fp8_e4m3(464.0f), 0x7e);  // midpoint to the (NaN) next code
  EXPECT_EQ(f32_to_fp8_e4m3(1e9f), 0x7e);
  EXPECT_EQ(f32_to_fp8_e4m3(-500.0f), 0xfe);
  EXPECT_EQ(f32_to_fp8_e4m3(INFINITY), 0x7e);
  EXPECT_EQ(f32_to_fp8_e4m3(-INFINITY), 0xfe);
  EXPECT_EQ(f32_to_fp8_e4m3(NAN), 0x7f);
  EXPECT_EQ(f32_to_fp8_e4m3(432.0f), 0x7e);  // midpoint 416..448 -> even (448 = m 6)
  EXPECT_EQ(f32_to_fp8_e4m3(420.0f), 0x7d);  // 416
  EXPECT_EQ(round_fp8_e4m3(3.3f), 3.25f);
}

TEST(Numeric, Bf16RoundToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);  // tie -> even
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)), 0x3f81);
  EXPECT_EQ(f32_to_bf16(-2.0f), 0xc000);
  EXPECT_EQ(bf16_to_f32(0x4049), 3.140625f);
  EXPECT_EQ(round_bf16(3.14159265f), 3.140625f);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
  EXPECT_EQ(f32_to_bf16(INFINITY), 0x7f80);
}

TEST(Numeric, BlockDequant130x130PartialEdges) {
  const int64_t R = 130, C = 130;
  std::vector<uint8_t> w(R * C, 0x38);  // 1.0 everywhere
  w[129 * C + 127] = 0x40;              // 2.0 in block (1, 0)
  w[0 * C + 129] = 0xc4;                // -3.0 in block (0, 1)
  w[129 * C + 129] = 0x01;              // 2^-9 in block (1, 1)
  const float s[4] = {2.0f, 3.0f, 5.0f, 7.0f};  // [2, 2] = [ceil(130/128)]^2
  std::vector<float> out(R * C);
  dequant_fp8_blocks(w.data(), s, R, C, out.data());
  EXPECT_EQ(out[0], 2.0f);
  EXPECT_EQ(out[127 * C + 127], 2.0f);
  EXPECT_EQ(out[127 * C + 128], 3.0f);  // first column of the 2-wide edge block
  EXPECT_EQ(out[0 * C + 129], -9.0f);
  EXPECT_EQ(out[128 * C + 0], 5.0f);    // first row of the 2-high edge block
  EXPECT_EQ(out[129 * C + 127], 10.0f);
  EXPECT_EQ(out[128 * C + 128], 7.0f);
  EXPECT_EQ(out[129 * C + 129], 7.0f * std::ldexp(1.0f, -9));
}

TEST(Numeric, BlockQuantizeScalesAndCodes) {
  const int64_t R = 130, C = 130;
  std::vector<float> x(R * C, 0.0f);
  x[5] = 448.0f;  // block (0,0): amax 448 -> scale 1, exact codes
  x[6] = -1.0f;
  // block (0,1) stays all zero -> scale 1, codes 0
  x[128 * C + 0] = 0.5f;  // block (1,0): amax 0.5 -> scale 0.5/448
  x[128 * C + 128] = 1.0f;  // block (1,1), the 2x2 corner: amax 2
  x[128 * C + 129] = -2.0f;
  x[129 * C + 128] = 0.5f;
  x[129 * C + 129] = 0.25f;
  std::vector<uint8_t> q(R * C);
  float s[4];
  quantize_fp8_blocks(x.data(), R, C, q.data(), s);
  EXPECT_EQ(s[0], 1.0f);
  EXPECT_EQ(s[1], 1.0f);
  EXPECT_EQ(s[2], 0.5f / 448.0f);
  EXPECT_EQ(s[3], 2.0f / 448.0f);
  EXPECT_EQ(q[5], 0x7e);
  EXPECT_EQ(q[6], 0xb8);
  EXPECT_EQ(q[0 * C + 129], 0x00);
  EXPECT_EQ(q[128 * C + 0], 0x7e);
  EXPECT_EQ(q[128 * C + 128], 0x76);  // 1.0 / (2/448) = 224 = 1.75 * 2^7
  EXPECT_EQ(q[128 * C + 129], 0xfe);  // -448
  EXPECT_EQ(q[129 * C + 128], 0x6e);  // 112
  EXPECT_EQ(q[129 * C + 129], 0x66);  // 56
}
