// y[M, N] = x[M, K] * W[N, K]^T on CPU with FP8 block-scaled, BF16 or F32 weights
// (spec/model.md 3.4, 9.1, 9.2). Batch invariant (D27): every output element is computed by the
// same code path with the same reduction order, whatever M, the other rows or the thread count.
#pragma once
#include <cstdint>

#include "common/numeric.h"

namespace ds::cpu {

/// A weight matrix [rows = N, cols = K], row-major, viewed in place (usually inside the mmap).
/// FP8 (F8_E4M3): `scale_inv` is [ceil(rows/128), ceil(cols/128)] F32, W = fp8(Wq) * scale_inv
/// (spec 3.4). BF16 and F32 weights have no scale. `data` needs no alignment.
struct WeightView {
  DType dtype = DType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  const uint8_t* data = nullptr;
  const float* scale_inv = nullptr;
  bool fp8() const { return dtype == DType::F8_E4M3; }
  bool empty() const { return data == nullptr; }
};

/// How a GEMM rounds (D23).
struct GemmOptions {
  /// Official FP8 path (spec 9.2): quantize x per row per 128 channels to E4M3 with UE8M0 scales,
  /// per-K-block FP32 partial sums of fp8(a)*fp8(w) times (a_scale * w_scale), FP32 accumulate.
  /// Only valid with an FP8 weight and K % 128 == 0. Otherwise x (FP32) times the FP32 value of W.
  bool fp8_activations = false;
  /// Round every output to BF16 (the demo's BF16 GEMM outputs).
  bool bf16_output = false;
};

/// y[M, N] = x[M, K] W^T (FP32 in memory). Throws std::invalid_argument on an FP8 request with
/// K % 128 != 0 or a non-FP8 weight, or an unsupported dtype.
void gemm(const float* x, int64_t M, const WeightView& w, float* y, GemmOptions opt);

/// Dequantizes rows [r0, r0 + n) of `w` to FP32 (fp8 * scale_inv, bf16 upcast, or copy) into
/// out[n, cols].
void dequantize_rows(const WeightView& w, int64_t r0, int64_t n, float* out);

/// Fixed-order FP32 dot product (16 lanes, then a fixed tree): the one reduction used by every
/// CPU kernel that must be batch invariant.
float dot_fixed(const float* a, const float* b, int64_t n);

}  // namespace ds::cpu
