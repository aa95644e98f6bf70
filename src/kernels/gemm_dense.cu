// Dense GEMM y = x W^T with a BF16 or F32 weight, FP32 arithmetic on CUDA cores (gemm_dense.h,
// docs/cuda.md "Dense GEMM"). One warp computes 4 weight rows x 4 (M <= 4) or 8 activation rows; lane l takes the
// 8-wide K chunks l, l + 32, ... (FMA in K order), then a fixed xor butterfly adds the lanes.
// (4 or 8 activation rows per warp: the tile changes which lanes store, not the arithmetic.) Every
// output element goes through exactly this sequence whatever M, the tile, or the load width, so
// results are deterministic and batch invariant (D27). At M <= 4 the kernel is a weight stream
// (each weight byte read once, 16-byte non-allocating loads); at larger M each 4-row group of x
// re-reads the weight through L2 (simple, correct; not tensor cores).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/gemm_dense.h"

namespace ds::cuda {
namespace {

constexpr int kWarps = 8, kRowsW = 4;

__device__ __forceinline__ uint4 ld_stream(const void* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}
__device__ __forceinline__ float bf_lo(uint32_t u) { return __uint_as_float(u << 16); }
__device__ __forceinline__ float bf_hi(uint32_t u) { return __uint_as_float(u & 0xffff0000u); }

// Loads 8 weight values of row `row` at k (all of them in range when VEC).
template <bool BF16, bool VEC>
__device__ __forceinline__ void load_w(const void* w, int64_t row, int64_t K, int64_t k, float (&v)[8]) {
  if constexpr (VEC) {
    if constexpr (BF16) {
      const uint4 u = ld_stream(static_cast<const uint16_t*>(w) + row * K + k);
      v[0] = bf_lo(u.x), v[1] = bf_hi(u.x), v[2] = bf_lo(u.y), v[3] = bf_hi(u.y);
      v[4] = bf_lo(u.z), v[5] = bf_hi(u.z), v[6] = bf_lo(u.w), v[7] = bf_hi(u.w);
    } else {
      const float* p = static_cast<const float*>(w) + row * K + k;
      const uint4 u0 = ld_stream(p), u1 = ld_stream(p + 4);
      v[0] = __uint_as_float(u0.x), v[1] = __uint_as_float(u0.y), v[2] = __uint_as_float(u0.z);
      v[3] = __uint_as_float(u0.w), v[4] = __uint_as_float(u1.x), v[5] = __uint_as_float(u1.y);
      v[6] = __uint_as_float(u1.z), v[7] = __uint_as_float(u1.w);
    }
  } else {
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      if (k + e < K) {
        if constexpr (BF16)
          v[e] = __uint_as_float(uint32_t(static_cast<const uint16_t*>(w)[row * K + k + e]) << 16);
        else
          v[e] = static_cast<const float*>(w)[row * K + k + e];
      } else {
        v[e] = 0.f;
      }
    }
  }
}

template <bool VEC>
__device__ __forceinline__ void load_x(const float* x, int64_t row, int64_t K, int64_t k, float (&v)[8]) {
  if constexpr (VEC) {
    const float4 a = __ldg(reinterpret_cast<const float4*>(x + row * K + k));
    const float4 b = __ldg(reinterpret_cast<const float4*>(x + row * K + k + 4));
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  } else {
#pragma unroll
    for (int e = 0; e < 8; ++e) v[e] = k + e < K ? x[row * K + k + e] : 0.f;
  }
}

template <bool BF16, bool VEC, int kRowsX>
__global__ void __launch_bounds__(kWarps * 32) gemm_dense_kernel(const float* __restrict__ x, int64_t M,
                                                                 const void* __restrict__ w, int64_t N, int64_t K,
                                                                 float* __restrict__ y, bool bf16_out) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t n0 = (int64_t(blockIdx.x) * kWarps + warp) * kRowsW;
  const int64_t m0 = int64_t(blockIdx.y) * kRowsX;
  if (n0 >= N) return;
  const int nr = int(N - n0 < kRowsW ? N - n0 : kRowsW);
  const int mr = int(M - m0 < kRowsX ? M - m0 : kRowsX);
  float acc[kRowsX][kRowsW];
#pragma unroll
  for (int i = 0; i < kRowsX; ++i)
#pragma unroll
    for (int j = 0; j < kRowsW; ++j) acc[i][j] = 0.f;
  const int64_t chunks = (K + 7) / 8;
#pragma unroll 2
  for (int64_t c = lane; c < chunks; c += 32) {
    const int64_t k = c * 8;
    float wv[kRowsW][8];
#pragma unroll
    for (int j = 0; j < kRowsW; ++j) {
      if (j < nr) {
        load_w<BF16, VEC>(w, n0 + j, K, k, wv[j]);
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) wv[j][e] = 0.f;
      }
    }
#pragma unroll
    for (int i = 0; i < kRowsX; ++i) {
      if (i >= mr) break;
      float xv[8];
      load_x<VEC>(x, m0 + i, K, k, xv);
#pragma unroll
      for (int j = 0; j < kRowsW; ++j)
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[i][j] = __fmaf_rn(xv[e], wv[j][e], acc[i][j]);
    }
  }
#pragma unroll
  for (int i = 0; i < kRowsX; ++i)
#pragma unroll
    for (int j = 0; j < kRowsW; ++j) {
      float v = acc[i][j];
#pragma unroll
      for (int o = 16; o >= 1; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
      if (lane == (i * kRowsW + j) % 32 && i < mr && j < nr)
        y[(m0 + i) * N + n0 + j] = bf16_out ? __bfloat162float(__float2bfloat16_rn(v)) : v;
    }
}

// Narrow form for small N (the router: N = 256, the indexer weights_proj: N = 64), where 4 rows a
// warp and 8 warps a block leave most SMs idle: one weight row per warp, 2 warps per block, and a
// lane first issues the loads of its next kNarrowU chunks (256 bytes in flight), then does their
// FMAs. Same per-element sequence as gemm_dense_kernel (lane l: chunks l, l + 32, ... ascending,
// FMA in K order, the same butterfly), so the same bits. Requires the VEC conditions.
constexpr int kNarrowWarps = 2, kNarrowU = 8;

template <bool BF16, int kRowsX>
__global__ void __launch_bounds__(kNarrowWarps * 32) gemm_dense_narrow_kernel(const float* __restrict__ x, int64_t M,
                                                                              const void* __restrict__ w, int64_t N,
                                                                              int64_t K, float* __restrict__ y,
                                                                              bool bf16_out) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t n = int64_t(blockIdx.x) * kNarrowWarps + warp;
  const int64_t m0 = int64_t(blockIdx.y) * kRowsX;
  if (n >= N) return;
  const int mr = int(M - m0 < kRowsX ? M - m0 : kRowsX);
  float acc[kRowsX];
#pragma unroll
  for (int i = 0; i < kRowsX; ++i) acc[i] = 0.f;
  const int64_t chunks = K / 8;
#pragma unroll 1
  for (int64_t c0 = lane; c0 < chunks; c0 += 32 * kNarrowU) {
    float wv[kNarrowU][8];
#pragma unroll
    for (int u = 0; u < kNarrowU; ++u) {
      if (c0 + u * 32 < chunks) {
        load_w<BF16, true>(w, n, K, (c0 + u * 32) * 8, wv[u]);
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) wv[u][e] = 0.f;
      }
    }
#pragma unroll
    for (int u = 0; u < kNarrowU; ++u) {
      if (c0 + u * 32 >= chunks) break;
#pragma unroll
      for (int i = 0; i < kRowsX; ++i) {
        if (i >= mr) break;
        float xv[8];
        load_x<true>(x, m0 + i, K, (c0 + u * 32) * 8, xv);
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[i] = __fmaf_rn(xv[e], wv[u][e], acc[i]);
      }
    }
  }
#pragma unroll
  for (int i = 0; i < kRowsX; ++i) {
    float v = acc[i];
#pragma unroll
    for (int o = 16; o >= 1; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == i && i < mr) y[(m0 + i) * N + n] = bf16_out ? __bfloat162float(__float2bfloat16_rn(v)) : v;
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace

void gemm_dense(const float* x, int64_t M, const DenseWeightDev& w, float* y, bool bf16_output, cudaStream_t stream) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("gemm_dense: " + what); };
  if (M < 1) fail("M must be >= 1 (got " + std::to_string(M) + ")");
  if (w.rows < 1 || w.cols < 1) fail("empty weight (w.rows/w.cols)");
  if (!x || !y || !w.data) fail("null pointer (x, y or w.data)");
  const int64_t N = w.rows, K = w.cols;
  // 4 activation rows per warp at M <= 4 (weight stream), 8 above (half the weight re-reads); the
  // per-element arithmetic is the same in both.
  const int rx = M <= 4 ? 4 : 8;
  const int64_t gx = (N + kWarps * kRowsW - 1) / (kWarps * kRowsW), gy = (M + rx - 1) / rx;
  if (gx > 0x7fffffff || gy > 65535) fail("shape too large for one launch (N or M)");
  const bool vec = K % 8 == 0 && aligned16(x) && aligned16(w.data);
  int sms = 132;
  {
    int dev = 0;
    if (cudaGetDevice(&dev) == cudaSuccess) cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  }
  if (vec && gx * gy < 2 * sms) {  // small N: the narrow form (same bits)
    const dim3 ngrid{unsigned((N + kNarrowWarps - 1) / kNarrowWarps), unsigned(gy), 1u};
    auto gon = [&](auto kernel) { kernel<<<ngrid, kNarrowWarps * 32, 0, stream>>>(x, M, w.data, N, K, y, bf16_output); };
    if (w.bf16)
      rx == 4 ? gon(gemm_dense_narrow_kernel<true, 4>) : gon(gemm_dense_narrow_kernel<true, 8>);
    else
      rx == 4 ? gon(gemm_dense_narrow_kernel<false, 4>) : gon(gemm_dense_narrow_kernel<false, 8>);
    DS_CUDA_CHECK_LAUNCH("gemm_dense_narrow_kernel");
    return;
  }
  const dim3 grid{unsigned(gx), unsigned(gy), 1u};
  const dim3 block{kWarps * 32, 1u, 1u};
  auto go = [&](auto kernel) { kernel<<<grid, block, 0, stream>>>(x, M, w.data, N, K, y, bf16_output); };
  if (w.bf16) {
    if (vec)
      rx == 4 ? go(gemm_dense_kernel<true, true, 4>) : go(gemm_dense_kernel<true, true, 8>);
    else
      rx == 4 ? go(gemm_dense_kernel<true, false, 4>) : go(gemm_dense_kernel<true, false, 8>);
  } else {
    if (vec)
      rx == 4 ? go(gemm_dense_kernel<false, true, 4>) : go(gemm_dense_kernel<false, true, 8>);
    else
      rx == 4 ? go(gemm_dense_kernel<false, false, 4>) : go(gemm_dense_kernel<false, false, 8>);
  }
  DS_CUDA_CHECK_LAUNCH("gemm_dense_kernel");
}

}  // namespace ds::cuda
