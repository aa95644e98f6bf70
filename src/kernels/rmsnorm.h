// Fused residual-add RMSNorm on the GPU (official mode of spec/model.md 4.2), launcher only: no
// CUDA headers. CPU twin: ds::cpu::add_rmsnorm with bf16 = true (src/kernels/cpu/rmsnorm.h).
// Design and measurements: docs/cuda.md.
#pragma once
#include <cstdint>

typedef struct CUstream_st* cudaStream_t;  // same declaration as CUDA's driver_types.h

namespace ds::cuda {

/// For each of `rows` rows of width n (BF16 bits, row-major, contiguous):
///   s = f + r in FP32 (f == nullptr: s = r, the first layer / a plain RMSNorm);
///   r <- bf16(s) (round to nearest even), in place;
///   y = bf16(w * (s * (1 / sqrt(sum(s^2) / n + eps)))) normalized from the UN-rounded s.
/// w: [n] BF16 bits. y must not alias f or r. FP32 arithmetic; the sum of squares is in a fixed
/// order (deterministic, independent of `rows`). Fast path: n % 8 == 0 and 16-byte aligned
/// pointers; otherwise a scalar path with the same bits. Asynchronous on `stream`.
/// Throws std::invalid_argument for rows < 0, n < 1, n > 50000, null r/w/y; std::runtime_error
/// for a CUDA launch error.
void add_rmsnorm_bf16(const uint16_t* f, uint16_t* r, const uint16_t* w, int64_t rows, int64_t n,
                      float eps, uint16_t* y, cudaStream_t stream);

}  // namespace ds::cuda
