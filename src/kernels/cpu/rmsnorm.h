// RMSNorm and the fused residual-add RMSNorm of the decoder layer (spec/model.md 4.2, 9.1).
#pragma once
#include <cstdint>

namespace ds::cpu {

/// y = x * rsqrt(mean(x^2) + eps) * w, FP32 math, one rounding to BF16 at the end if `bf16_out`.
/// x, w, y: [n]; y may alias x.
void rmsnorm(const float* x, const float* w, int64_t n, float eps, float* y, bool bf16_out);

/// Fused residual step of spec 4.2: s = f + r (FP32); r <- bf16(s) if `bf16` else s;
/// y = RMSNorm(s) * w normalized from the UN-rounded s, rounded to BF16 if `bf16`.
/// f == nullptr means no add (the first layer: s = r). All [n].
void add_rmsnorm(const float* f, float* r, const float* w, int64_t n, float eps, float* y, bool bf16);

}  // namespace ds::cpu
