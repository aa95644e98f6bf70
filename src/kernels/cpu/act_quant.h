// Activation quantization to FP8 E4M3 with power-of-two (UE8M0) scales (spec/model.md 9.2).
#pragma once
#include <cstdint>

namespace ds::cpu {

/// Channels per quantization group (spec 9.2: per token, per 128 channels).
constexpr int kQuantBlock = 128;

/// UE8M0 scale of a group with absolute maximum `amax`: s = 2^ceil(log2(max(amax, 1e-4) / 448)),
/// computed as the demo does: amax * fl32(1/448), then exponent - 127 + (mantissa != 0).
/// amax 448 -> 1, amax 449 -> 2, amax 0 -> 2^-22.
float ue8m0_scale(float amax);

/// Quantizes x[rows, cols] (cols % 128 == 0) per row per 128-channel group:
/// q[r, c] = e4m3_rne(clamp(x[r, c] / s, -448, 448)) stored as the float value of the FP8 code,
/// scales[r, c / 128] = s. `q` may alias `x`. Throws std::invalid_argument if cols % 128 != 0.
void act_quant(const float* x, int64_t rows, int64_t cols, float* q, float* scales);

/// The FP8 rounding act_quant applies after clamping (bit-trick form of round_fp8_e4m3, same bits
/// for v in [-448, 448] or NaN). Exposed for tests only.
float round_fp8_clamped_for_test(float v);

/// FP8 quantize -> dequantize round trip in place, per 128-channel group (the cached-latent
/// simulation of spec 4.3 step 6): x <- q * s. Same preconditions as act_quant.
void fp8_round_trip(float* x, int64_t rows, int64_t cols);

}  // namespace ds::cpu
