// Greedy sampling on the GPU: per-row argmax of FP32 logits, launcher only: no CUDA headers.
// Same rule as the CPU sampler's greedy path (ds::sample_token with temperature 0,
// src/model/sampler.h): NaN logits are skipped, ties take the lowest index, a row of only NaN gives
// token 0. Design and measurements: docs/cuda.md.
#pragma once
#include <cstdint>

typedef struct CUstream_st* cudaStream_t;  // same declaration as CUDA's driver_types.h

namespace ds::cuda {

/// ids[r] = lowest index of the maximum of logits[r, 0..vocab) (row-major F32, device) over the
/// non-NaN values, 0 if all are NaN; int32 device [rows]. One 512-thread block per row (16-byte
/// loads when vocab % 4 == 0 and logits is 16-byte aligned). Asynchronous on `stream`. Throws
/// std::invalid_argument for rows < 0, vocab < 1, null pointers; std::runtime_error for a CUDA
/// launch error.
void argmax_rows(const float* logits, int64_t rows, int64_t vocab, int32_t* ids, cudaStream_t stream);

}  // namespace ds::cuda
