// LayerNorm with weight and bias, used by the indexer key (spec/model.md 5.2 step 4).
#pragma once
#include <cstdint>

namespace ds::cpu {

/// y = (x - mean) / sqrt(var + eps) * w + b with the biased variance, FP32 math, rounded to BF16
/// if `bf16_out`. x, w, b, y: [n]; y may alias x.
void layernorm(const float* x, const float* w, const float* b, int64_t n, float eps, float* y, bool bf16_out);

}  // namespace ds::cpu
