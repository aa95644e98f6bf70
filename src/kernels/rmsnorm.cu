// Fused residual-add RMSNorm (see rmsnorm.h; spec/model.md 4.2).
//
// One block of 256 threads per row. Pass 1 reads f and r (16-byte vectors of 8 BF16 when aligned),
// forms s = f + r in FP32, writes r = bf16(s), keeps s in shared memory (n * 4 bytes) and adds s^2
// in a fixed per-thread order; a fixed butterfly per warp and a fixed-order sum over the 8 warps
// give sum(s^2). Pass 2 reads s back from shared memory and writes y. The ops match the CPU twin
// one for one (IEEE division and square root, no contraction), so only the order of the sum of
// squares differs from it.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/rmsnorm.h"

namespace ds::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxN = 50000;  // s in shared memory: 200 KB of the 227 KB opt-in limit

__device__ __forceinline__ float bf(uint16_t b) { return __uint_as_float(uint32_t(b) << 16); }
__device__ __forceinline__ uint16_t to_bf(float v) {
  return __bfloat16_as_ushort(__float2bfloat16_rn(v));
}

__global__ void __launch_bounds__(kThreads)
add_rmsnorm_kernel(const uint16_t* __restrict__ f, uint16_t* __restrict__ r, const uint16_t* __restrict__ w,
                   int64_t n, float eps, uint16_t* __restrict__ y, bool vec) {
  extern __shared__ float s[];
  __shared__ float warp_sum[kThreads / 32];
  const int64_t row = blockIdx.x;
  const uint16_t* fr = f ? f + row * n : nullptr;
  uint16_t* rr = r + row * n;
  uint16_t* yr = y + row * n;
  float ss = 0.f;
  if (vec) {
    for (int64_t v = threadIdx.x; v < n / 8; v += kThreads) {
      uint4 rv = reinterpret_cast<const uint4*>(rr)[v];
      uint4 fv = fr ? reinterpret_cast<const uint4*>(fr)[v] : make_uint4(0, 0, 0, 0);
      const uint32_t ru[4] = {rv.x, rv.y, rv.z, rv.w}, fu[4] = {fv.x, fv.y, fv.z, fv.w};
      uint32_t out[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        float s0 = bf(uint16_t(ru[i] & 0xffffu)), s1 = bf(uint16_t(ru[i] >> 16));
        if (fr) {
          s0 = __fadd_rn(bf(uint16_t(fu[i] & 0xffffu)), s0);
          s1 = __fadd_rn(bf(uint16_t(fu[i] >> 16)), s1);
        }
        s[v * 8 + 2 * i] = s0;
        s[v * 8 + 2 * i + 1] = s1;
        ss = __fadd_rn(ss, __fmul_rn(s0, s0));
        ss = __fadd_rn(ss, __fmul_rn(s1, s1));
        out[i] = uint32_t(to_bf(s0)) | (uint32_t(to_bf(s1)) << 16);
      }
      reinterpret_cast<uint4*>(rr)[v] = make_uint4(out[0], out[1], out[2], out[3]);
    }
  } else {
    for (int64_t i = threadIdx.x; i < n; i += kThreads) {
      float si = fr ? __fadd_rn(bf(fr[i]), bf(rr[i])) : bf(rr[i]);
      s[i] = si;
      ss = __fadd_rn(ss, __fmul_rn(si, si));
      rr[i] = to_bf(si);
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) ss = __fadd_rn(ss, __shfl_xor_sync(0xffffffffu, ss, o));
  if ((threadIdx.x & 31) == 0) warp_sum[threadIdx.x >> 5] = ss;
  __syncthreads();
  float total = 0.f;
#pragma unroll
  for (int i = 0; i < kThreads / 32; ++i) total = __fadd_rn(total, warp_sum[i]);
  const float inv = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(__fdiv_rn(total, float(n)), eps)));
  if (vec) {
    for (int64_t v = threadIdx.x; v < n / 8; v += kThreads) {
      uint4 wv = reinterpret_cast<const uint4*>(w)[v];
      const uint32_t wu[4] = {wv.x, wv.y, wv.z, wv.w};
      uint32_t out[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        float y0 = __fmul_rn(bf(uint16_t(wu[i] & 0xffffu)), __fmul_rn(s[v * 8 + 2 * i], inv));
        float y1 = __fmul_rn(bf(uint16_t(wu[i] >> 16)), __fmul_rn(s[v * 8 + 2 * i + 1], inv));
        out[i] = uint32_t(to_bf(y0)) | (uint32_t(to_bf(y1)) << 16);
      }
      reinterpret_cast<uint4*>(yr)[v] = make_uint4(out[0], out[1], out[2], out[3]);
    }
  } else {
    for (int64_t i = threadIdx.x; i < n; i += kThreads) yr[i] = to_bf(__fmul_rn(bf(w[i]), __fmul_rn(s[i], inv)));
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace

void add_rmsnorm_bf16(const uint16_t* f, uint16_t* r, const uint16_t* w, int64_t rows, int64_t n, float eps,
                      uint16_t* y, cudaStream_t stream) {
  if (rows < 0 || n < 1 || n > kMaxN)
    throw std::invalid_argument("add_rmsnorm_bf16: bad shape rows=" + std::to_string(rows) +
                                " n=" + std::to_string(n) + " (need rows >= 0, 1 <= n <= 50000)");
  if (!r || !w || !y) throw std::invalid_argument("add_rmsnorm_bf16: null r, w or y pointer");
  if (rows == 0) return;
  if (rows > 0x7fffffff) throw std::invalid_argument("add_rmsnorm_bf16: rows exceed the grid limit");
  const bool vec = n % 8 == 0 && aligned16(r) && aligned16(w) && aligned16(y) && (!f || aligned16(f));
  const size_t smem = size_t(n) * sizeof(float);
  static const bool attr_set = [] {  // opt in to > 48 KB dynamic shared memory, once per process
    DS_CUDA_CHECK(cudaFuncSetAttribute(add_rmsnorm_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       int(kMaxN * sizeof(float))));
    return true;
  }();
  (void)attr_set;
  add_rmsnorm_kernel<<<unsigned(rows), kThreads, smem, stream>>>(f, r, w, n, eps, y, vec);
  DS_CUDA_CHECK_LAUNCH("add_rmsnorm_kernel");
}

}  // namespace ds::cuda
