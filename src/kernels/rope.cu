// RoPE / YaRN apply (see rope.h; spec/model.md 4.4).
//
// One thread per rotated pair (token, head, i), 256 threads per block; consecutive threads take
// consecutive i of one head, so interleaved pairs are adjacent loads and half-split pairs are two
// coalesced runs. cos/sin are computed from the angle (no table): the angle product is the twin's
// FP32 product, sincosf differs from glibc by <= 2 ulp.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/rope.h"

namespace ds::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float ld(const float* p) { return *p; }
__device__ __forceinline__ float ld(const __nv_bfloat16* p) { return __bfloat162float(*p); }
__device__ __forceinline__ void st(float* p, float v, bool bf16_out) {
  *p = bf16_out ? __bfloat162float(__float2bfloat16_rn(v)) : v;
}
__device__ __forceinline__ void st(__nv_bfloat16* p, float v, bool) { *p = __float2bfloat16_rn(v); }

template <class T>
__global__ void __launch_bounds__(kThreads)
rope_kernel(T* __restrict__ x, int64_t heads, int64_t token_stride, int64_t head_stride, int64_t offset,
            const int64_t* __restrict__ pos, const float* __restrict__ freqs, int n_freq, bool half_split,
            bool bf16_out, int64_t pairs) {
  const int64_t id = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (id >= pairs) return;
  const int i = int(id % n_freq);
  const int64_t th = id / n_freq;
  const int64_t h = th % heads, t = th / heads;
  T* base = x + t * token_stride + h * head_stride + offset;
  T* pa = half_split ? base + i : base + 2 * i;
  T* pb = half_split ? base + i + n_freq : base + 2 * i + 1;
  const float angle = __fmul_rn(float(pos[t]), freqs[i]);
  float s, c;
  sincosf(angle, &s, &c);
  const float a = ld(pa), b = ld(pb);
  st(pa, __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s)), bf16_out);
  st(pb, __fadd_rn(__fmul_rn(a, s), __fmul_rn(b, c)), bf16_out);
}

}  // namespace

void rope_apply(const RopeView& v, const int64_t* pos, const float* freqs, int n_freq, RopeLayout layout,
                bool bf16_out, cudaStream_t stream) {
  if (n_freq < 1 || v.tokens < 0 || v.heads < 1 || v.token_stride < 0 || v.head_stride < 0 || v.offset < 0)
    throw std::invalid_argument("rope_apply: bad shape n_freq=" + std::to_string(n_freq) + " tokens=" +
                                std::to_string(v.tokens) + " heads=" + std::to_string(v.heads));
  if (!v.x || !pos || !freqs) throw std::invalid_argument("rope_apply: null x, pos or freqs pointer");
  if (v.tokens == 0) return;
  const int64_t pairs = v.tokens * v.heads * n_freq;
  const int64_t blocks = (pairs + kThreads - 1) / kThreads;
  if (blocks > 0x7fffffff) throw std::invalid_argument("rope_apply: too many pairs");
  const bool hs = layout == RopeLayout::HalfSplit;
  if (v.type == RopeType::F32)
    rope_kernel<float><<<unsigned(blocks), kThreads, 0, stream>>>(static_cast<float*>(v.x), v.heads, v.token_stride,
                                                                   v.head_stride, v.offset, pos, freqs, n_freq, hs,
                                                                   bf16_out, pairs);
  else
    rope_kernel<__nv_bfloat16><<<unsigned(blocks), kThreads, 0, stream>>>(
        static_cast<__nv_bfloat16*>(v.x), v.heads, v.token_stride, v.head_stride, v.offset, pos, freqs, n_freq, hs,
        bf16_out, pairs);
  DS_CUDA_CHECK_LAUNCH("rope_kernel");
}

}  // namespace ds::cuda
