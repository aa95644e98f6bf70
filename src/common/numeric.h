// Scalar number formats used by DeepSeek-V3.2 checkpoints and numerics (spec/model.md sections 3.4, 9).
#pragma once
#include <cstdint>
#include <cstring>
#include <string_view>
#include <optional>

namespace ds {

/// Element types found in safetensors headers that deepserve reads or writes.
enum class DType { F32, BF16, F8_E4M3, I32, I64, U8 };

/// Bytes per element of `t`.
size_t dtype_size(DType t);
/// safetensors header spelling ("F32", "BF16", "F8_E4M3", ...).
std::string_view dtype_name(DType t);
/// Parses a safetensors dtype string; nullopt if deepserve does not know it.
std::optional<DType> dtype_from_name(std::string_view s);

/// BF16 bits -> float (exact).
inline float bf16_to_f32(uint16_t b) {
  uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
/// float -> BF16 bits, round to nearest even (NaN stays NaN).
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
/// Rounds a float to the nearest BF16 value and returns it as float (the "store as BF16" of D23).
inline float round_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }

/// FP8 E4M3 "fn" decode table: 256 entries, NaN for 0x7f/0xff (spec/model.md 3.4).
extern const float kFp8E4M3Table[256];
/// FP8 E4M3 byte -> float (exact).
inline float fp8_e4m3_to_f32(uint8_t b) { return kFp8E4M3Table[b]; }
/// float -> FP8 E4M3 byte, round to nearest even, saturating to +-448 (inputs are pre-clamped by
/// act_quant; NaN maps to 0x7f).
uint8_t f32_to_fp8_e4m3(float f);
/// Rounds a float to the nearest E4M3 value (saturating), returned as float.
inline float round_fp8_e4m3(float f) { return fp8_e4m3_to_f32(f32_to_fp8_e4m3(f)); }

/// Dequantizes a block-scaled FP8 weight (spec/model.md 3.4):
/// out[r, c] = decode(w[r, c]) * scale_inv[r / block, c / block] (FP32 multiply).
/// w: [rows, cols] E4M3 bytes, row-major; scale_inv: [ceil(rows/block), ceil(cols/block)] F32;
/// out: [rows, cols] floats. Partial edge blocks use the same rule.
void dequant_fp8_blocks(const uint8_t* w, const float* scale_inv, int64_t rows, int64_t cols,
                        float* out, int64_t block = 128);

/// Quantizes a [rows, cols] float matrix per block x block tile as make-model does (D25,
/// docs/make_model.md): s = amax / 448 in FP32 (s = 1 when amax == 0), q = f32_to_fp8_e4m3(x / s)
/// with the division in FP32. Writes q to `out` ([rows, cols]) and s to `scale_inv`
/// ([ceil(rows/block), ceil(cols/block)]).
void quantize_fp8_blocks(const float* x, int64_t rows, int64_t cols, uint8_t* out, float* scale_inv,
                         int64_t block = 128);

}  // namespace ds
