// Dense (BF16 or F32 weight) GEMM on the GPU, any M, launcher only: no CUDA headers. CPU twin:
// ds::cpu::gemm with a BF16/F32 WeightView and default options (src/kernels/cpu/gemm.h). Used for
// lm_head (BF16 [129280, 7168]), the MoE router weight, the indexer weights_proj and other dense
// projections (spec/model.md 3.4, 6.1, 7). Design and measurements: docs/cuda.md ("Dense GEMM").
#pragma once
#include <cstdint>

typedef struct CUstream_st* cudaStream_t;  // same declaration as CUDA's driver_types.h

namespace ds::cuda {

/// A dense weight in device memory: [rows = N, cols = K] row-major, BF16 (bf16 = true, 2 bytes per
/// element) or F32 (4 bytes per element).
struct DenseWeightDev {
  const void* data = nullptr;
  bool bf16 = true;
  int64_t rows = 0, cols = 0;
};

/// y[M, N] F32 = x[M, K] (F32 storage, row-major) * W^T, FP32 arithmetic on CUDA cores: each output
/// is a fixed-order sum (lane l of a warp takes the 8-wide K chunks l, l + 32, ..., FMA in order,
/// then a fixed butterfly over lanes), so it is deterministic and row m's bits do not depend on M
/// or on the other rows (D27). bf16_output rounds each output to the nearest BF16. M = 1 is a
/// weight stream (bandwidth-bound); large M is a simple register-tiled kernel (not tensor cores).
/// Fast path: K % 8 == 0 and x / W 16-byte aligned; anything else runs the same kernel with scalar
/// loads (same bits). Asynchronous on `stream`. Throws std::invalid_argument naming the argument
/// for M < 1, empty shapes, null pointers; std::runtime_error for a CUDA launch error.
void gemm_dense(const float* x, int64_t M, const DenseWeightDev& w, float* y, bool bf16_output,
                cudaStream_t stream);

}  // namespace ds::cuda
