// Small-M FP8 block-scaled GEMM on the GPU (decode-sized batches), launcher only: no CUDA headers.
// y[M, N] = x[M, K] * dequant(W)^T with W FP8 E4M3 [N, K] and 128x128 F32 scale_inv blocks
// (spec/model.md 3.4). CPU twin: ds::cpu::gemm in exact mode (D23: FP32 arithmetic on dequantized
// weights, src/kernels/cpu/gemm.h). Design and measurements: docs/cuda.md.
#pragma once
#include <cstdint>

typedef struct CUstream_st* cudaStream_t;  // same declaration as CUDA's driver_types.h

namespace ds::cuda {

/// Element type of the activations x.
enum class ActType { F32, BF16 };

/// An FP8 E4M3 weight in device memory: data [rows = N, cols = K] row-major bytes; scale_inv
/// [ceil(N/128), ceil(K/128)] F32, W[n, k] = fp8(data[n, k]) * scale_inv[n / 128, k / 128].
struct Fp8WeightDev {
  const uint8_t* data = nullptr;
  const float* scale_inv = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
};

/// Largest M the small-M kernel takes.
constexpr int64_t kGemmSmallMaxM = 16;

/// y[M, N] (F32, device) = x[M, K] (F32 or BF16, device, row-major) * dequant(w)^T, FP32
/// arithmetic. bf16_output rounds each output to the nearest BF16 (kept in F32 storage), as the
/// CPU twin's GemmOptions::bf16_output. Fast path: K % 16 == 0 and data/x 16-byte aligned; any
/// other shape runs a slower generic kernel with the same result up to summation order.
/// Deterministic, and each output row's bits do not depend on M or on the other rows.
/// Asynchronous on `stream`. Throws std::invalid_argument for M < 1, M > kGemmSmallMaxM, empty or
/// inconsistent shapes, null pointers; std::runtime_error for a CUDA launch error.
void gemm_fp8_small_m(const void* x, ActType xt, int64_t M, const Fp8WeightDev& w, float* y,
                      bool bf16_output, cudaStream_t stream);

}  // namespace ds::cuda
