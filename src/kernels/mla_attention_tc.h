// Internal: the tensor-core path of ds::cuda::mla_sparse_attention (mla_attention.h), launcher
// only. Used by mla_attention.cu when mla_sparse_tc_supported(); not part of the public API.
#pragma once
#include <cstdint>

#include "kernels/mla_cache.h"

typedef struct CUstream_st* cudaStream_t;  // same declaration as CUDA's driver_types.h

namespace ds::cuda::detail {

/// True for the shapes the tensor-core kernel takes: C = 512, dr = 64, H % 64 == 0.
bool mla_sparse_tc_supported(int H, int C, int dr);

/// Same contract as mla_sparse_attention, with q rounded to BF16 (official-mode q is BF16 already).
/// Arguments are validated by the caller. Two warpgroups per (row, 64 heads), wgmma with shared-memory
/// operands, 64-key tiles, 128 accumulator registers per thread (docs/cuda.md "MLA attention").
void mla_sparse_attention_tc(const float* q_lat, const float* q_pe, int64_t R, int H, const uint8_t* cache,
                             KvCacheDtype dt, const int32_t* idx, const int32_t* n, int max_n, float scale, float* o_lat,
                             cudaStream_t stream);

}  // namespace ds::cuda::detail
