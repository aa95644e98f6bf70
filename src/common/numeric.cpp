// Scalar number formats: dtype table, FP8 E4M3 "fn" encode/decode, block (de)quantization
// (spec/model.md sections 3.4, 9).
#include "common/numeric.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

namespace ds {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::BF16: return 2;
    case DType::F8_E4M3: return 1;
    case DType::I32: return 4;
    case DType::I64: return 8;
    case DType::U8: return 1;
  }
  return 0;
}

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::BF16: return "BF16";
    case DType::F8_E4M3: return "F8_E4M3";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::U8: return "U8";
  }
  return "?";
}

std::optional<DType> dtype_from_name(std::string_view s) {
  for (DType t : {DType::F32, DType::BF16, DType::F8_E4M3, DType::I32, DType::I64, DType::U8})
    if (dtype_name(t) == s) return t;
  return std::nullopt;
}

namespace {

// Decodes one E4M3 "fn" byte: 1 sign, 4 exponent bits (bias 7), 3 mantissa bits; exponent 0 is
// subnormal (m * 2^-9); S.1111.111 is NaN; no infinities. Every value is exact in float.
constexpr float decode_e4m3(uint8_t b) {
  const int e = (b >> 3) & 0xf;
  const int m = b & 7;
  const bool neg = (b & 0x80) != 0;
  if (e == 15 && m == 7) return std::numeric_limits<float>::quiet_NaN();
  float mag = 0.0f;
  if (e == 0) {
    mag = float(m) / 512.0f;  // m * 2^-9
  } else {
    float p = 1.0f;  // 2^(e-7)
    for (int i = 7; i < e; ++i) p *= 2.0f;
    for (int i = e; i < 7; ++i) p /= 2.0f;
    mag = (1.0f + float(m) / 8.0f) * p;
  }
  return neg ? -mag : mag;
}

constexpr std::array<float, 256> make_table() {
  std::array<float, 256> t{};
  for (int i = 0; i < 256; ++i) t[size_t(i)] = decode_e4m3(uint8_t(i));
  return t;
}

constexpr std::array<float, 256> kTable = make_table();

}  // namespace

// Plain array so the header can declare it `extern const float[256]`; filled at compile time.
const float kFp8E4M3Table[256] = {
#define DS_E(i) kTable[i], kTable[i + 1], kTable[i + 2], kTable[i + 3], kTable[i + 4], kTable[i + 5], kTable[i + 6], kTable[i + 7]
    DS_E(0),   DS_E(8),   DS_E(16),  DS_E(24),  DS_E(32),  DS_E(40),  DS_E(48),  DS_E(56),
    DS_E(64),  DS_E(72),  DS_E(80),  DS_E(88),  DS_E(96),  DS_E(104), DS_E(112), DS_E(120),
    DS_E(128), DS_E(136), DS_E(144), DS_E(152), DS_E(160), DS_E(168), DS_E(176), DS_E(184),
    DS_E(192), DS_E(200), DS_E(208), DS_E(216), DS_E(224), DS_E(232), DS_E(240), DS_E(248),
#undef DS_E
};

uint8_t f32_to_fp8_e4m3(float f) {
  if (std::isnan(f)) return 0x7f;
  const uint8_t sign = std::signbit(f) ? 0x80 : 0x00;
  const float a = std::fabs(f);
  // Largest finite is 448 = 1.75 * 2^8; the midpoint to the next (NaN) code is 480, but the format
  // saturates: everything >= 448 maps to 448.
  if (a >= 448.0f) return uint8_t(sign | 0x7e);
  // Subnormal range (< 2^-6): quantum 2^-9. a * 512 is exact; round half to even.
  if (a < 0.015625f) {
    const double q = std::nearbyint(double(a) * 512.0);  // 0..8; 8 == min normal code 0x08
    return uint8_t(sign | uint8_t(q));
  }
  int e2 = 0;
  std::frexp(a, &e2);  // a = mant * 2^e2, mant in [0.5, 1)  => exponent e = e2 - 1
  int e = e2 - 1;      // -6 .. 8
  // q in [8, 16]: a / 2^(e-3), exact in double, then round half to even.
  double q = std::nearbyint(std::ldexp(double(a), 3 - e));
  if (q >= 16.0) {
    q = 8.0;
    ++e;
  }
  if (e > 8 || (e == 8 && q > 14.0)) return uint8_t(sign | 0x7e);
  return uint8_t(sign | uint8_t(((e + 7) << 3) | (int(q) - 8)));
}

void dequant_fp8_blocks(const uint8_t* w, const float* scale_inv, int64_t rows, int64_t cols,
                        float* out, int64_t block) {
  const int64_t scols = (cols + block - 1) / block;
  for (int64_t r = 0; r < rows; ++r) {
    const float* srow = scale_inv + (r / block) * scols;
    for (int64_t c = 0; c < cols; ++c)
      out[r * cols + c] = kFp8E4M3Table[w[r * cols + c]] * srow[c / block];
  }
}

void quantize_fp8_blocks(const float* x, int64_t rows, int64_t cols, uint8_t* out, float* scale_inv,
                         int64_t block) {
  const int64_t srows = (rows + block - 1) / block, scols = (cols + block - 1) / block;
  for (int64_t br = 0; br < srows; ++br) {
    for (int64_t bc = 0; bc < scols; ++bc) {
      const int64_t r0 = br * block, r1 = std::min(rows, r0 + block);
      const int64_t c0 = bc * block, c1 = std::min(cols, c0 + block);
      float amax = 0.0f;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(x[r * cols + c]));
      const float s = amax == 0.0f ? 1.0f : amax / 448.0f;
      scale_inv[br * scols + bc] = s;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) out[r * cols + c] = f32_to_fp8_e4m3(x[r * cols + c] / s);
    }
  }
}

}  // namespace ds
