// Per-row argmax for greedy sampling (see argmax.h).
//
// One block of 512 threads per row: each thread scans a strided share (float4 loads on the fast
// path) keeping (value, index) with "larger value, ties -> lower index, NaN skipped"; a warp
// butterfly and one pass over the 16 warp results in shared memory reduce with the same rule, which
// is associative and commutative, so the result does not depend on the order.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "kernels/argmax.h"
#include "kernels/cuda_check.h"

namespace ds::cuda {
namespace {

constexpr int kThreads = 512;

// Folds candidate (v, i) into (bv, bi); bi < 0 means empty; NaN candidates are skipped.
__device__ __forceinline__ void fold(float v, int64_t i, float& bv, int64_t& bi) {
  if (v != v || i < 0) return;
  if (bi < 0 || v > bv || (v == bv && i < bi)) bv = v, bi = i;
}

__global__ void __launch_bounds__(kThreads)
argmax_kernel(const float* __restrict__ logits, int64_t vocab, int32_t* __restrict__ ids, bool vec) {
  __shared__ float sv[kThreads / 32];
  __shared__ int64_t si[kThreads / 32];
  const float* row = logits + int64_t(blockIdx.x) * vocab;
  float bv = 0.f;
  int64_t bi = -1;
  if (vec) {
    const float4* r4 = reinterpret_cast<const float4*>(row);
    for (int64_t j = threadIdx.x; j < vocab / 4; j += kThreads) {
      const float4 v = __ldg(r4 + j);
      fold(v.x, 4 * j, bv, bi);
      fold(v.y, 4 * j + 1, bv, bi);
      fold(v.z, 4 * j + 2, bv, bi);
      fold(v.w, 4 * j + 3, bv, bi);
    }
  } else {
    for (int64_t j = threadIdx.x; j < vocab; j += kThreads) fold(row[j], j, bv, bi);
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int64_t oi = __shfl_xor_sync(0xffffffffu, bi, o);
    fold(ov, oi, bv, bi);
  }
  if ((threadIdx.x & 31) == 0) sv[threadIdx.x >> 5] = bv, si[threadIdx.x >> 5] = bi;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kThreads / 32; ++w) fold(sv[w], si[w], bv, bi);
    ids[blockIdx.x] = bi < 0 ? 0 : int32_t(bi);
  }
}

}  // namespace

void argmax_rows(const float* logits, int64_t rows, int64_t vocab, int32_t* ids, cudaStream_t stream) {
  if (rows < 0 || vocab < 1 || vocab > 0x7fffffff || rows > 0x7fffffff)
    throw std::invalid_argument("argmax_rows: bad shape rows=" + std::to_string(rows) +
                                " vocab=" + std::to_string(vocab));
  if (!logits || !ids) throw std::invalid_argument("argmax_rows: null logits or ids pointer");
  if (rows == 0) return;
  const bool vec = vocab % 4 == 0 && (reinterpret_cast<uintptr_t>(logits) & 15u) == 0;
  argmax_kernel<<<unsigned(rows), kThreads, 0, stream>>>(logits, vocab, ids, vec);
  DS_CUDA_CHECK_LAUNCH("argmax_kernel");
}

}  // namespace ds::cuda
