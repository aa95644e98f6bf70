// Small-M FP8 block-scaled GEMM (see gemm_fp8_small_m.h; design notes in docs/cuda.md).
//
// At M <= 16 the GEMM is a weight stream: N*K FP8 bytes must be read once, everything else is
// small. Fast kernel: a block of 8 warps is `8 / kw` row groups of `kw` warps; a row group owns
// kRows = 4 consecutive output rows (a block's 4 * 8 / kw rows divide 128, so they share one row of
// scale blocks) and its kw warps split K in 512-byte slices (32 lanes x 16 bytes, coalesced,
// L1-bypassing 16-byte loads, 4 loads in flight per lane). kw = 8 when K has >= 8 slices, else 1
// (v1 used kw = 8 always and left warps idle at K = 1536); kw depends on K only.
// Each lane decodes its 16 FP8 codes (hardware e4m3x2 -> f16x2 converts, exact), forms a 16-term
// FP32 dot with each of the M activation rows (read through L1, reused by the ROWS rows), and adds
// dot * scale_inv of its 128-block. A fixed butterfly over lanes, then a fixed-order sum over warps
// gives the output: deterministic, and row m's bits do not depend on M.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/gemm_fp8_small_m.h"

namespace ds::cuda {
namespace {

constexpr int kWarps = 8;                 // warps per block (256 threads)
constexpr int kRows = 4;                  // output rows per block; divides 128
constexpr int kSlice = 16;                // bytes of one weight row per lane per step
constexpr int kGenericThreads = 128;

// 16-byte weight load that skips L1 (each byte is used once) and asks L2 to fetch 256 B.
__device__ __forceinline__ uint4 load_stream(const uint8_t* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

// Two E4M3 codes (low byte first) -> two floats, exact (E4M3 values are all representable in f16).
__device__ __forceinline__ float2 fp8x2_to_float2(uint32_t two) {
  __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(two), __NV_E4M3);
  return __half22float2(*reinterpret_cast<__half2*>(&h));
}

__device__ __forceinline__ void decode16(uint4 v, float (&w)[16]) {
  const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float2 a = fp8x2_to_float2(u[i] & 0xffffu);
    float2 b = fp8x2_to_float2(u[i] >> 16);
    w[4 * i] = a.x;
    w[4 * i + 1] = a.y;
    w[4 * i + 2] = b.x;
    w[4 * i + 3] = b.y;
  }
}

// 16 activations starting at element k of row `row` (16-byte aligned).
__device__ __forceinline__ void load_x16(const float* x, float (&v)[16]) {
  const float4* p = reinterpret_cast<const float4*>(x);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float4 f = __ldg(p + i);
    v[4 * i] = f.x;
    v[4 * i + 1] = f.y;
    v[4 * i + 2] = f.z;
    v[4 * i + 3] = f.w;
  }
}
__device__ __forceinline__ void load_x16(const __nv_bfloat16* x, float (&v)[16]) {
  const uint4* p = reinterpret_cast<const uint4*>(x);
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    uint4 q = __ldg(p + i);
    const uint32_t u[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      v[8 * i + 2 * j] = __uint_as_float(u[j] << 16);
      v[8 * i + 2 * j + 1] = __uint_as_float(u[j] & 0xffff0000u);
    }
  }
}

__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }

__device__ __forceinline__ float finish(float v, bool bf16_output) {
  return bf16_output ? __bfloat162float(__float2bfloat16_rn(v)) : v;
}

// Fast path. Requires K % 16 == 0, 16-byte aligned W and x rows. MT >= M (rows m >= M read row
// M-1 and are not stored). kw in {1, 2, 4, 8}: warps per row group along K.
template <int MT, class XT>
__global__ void __launch_bounds__(kWarps * 32)
    gemm_fp8_small_m_kernel(const XT* __restrict__ x, int M, const uint8_t* __restrict__ W,
                            const float* __restrict__ S, int N, int K, int kw, float* __restrict__ y,
                            bool bf16_output) {
  __shared__ float partial[kWarps][MT][kRows];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int groups = kWarps / kw, group = warp / kw, kwarp = warp % kw;
  const int block_rows = kRows * groups;
  const int n0 = blockIdx.x * block_rows + group * kRows;
  const int kb = (K + 127) >> 7;
  const float* srow = S + size_t(n0 >> 7) * kb;
  const uint8_t* wrow[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) wrow[r] = W + size_t(min(n0 + r, N - 1)) * K;
  const XT* xrow[MT];
#pragma unroll
  for (int m = 0; m < MT; ++m) xrow[m] = x + size_t(min(m, M - 1)) * K;

  float acc[MT][kRows];
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int r = 0; r < kRows; ++r) acc[m][r] = 0.f;

#pragma unroll 2
  for (int k = (kwarp * 32 + lane) * kSlice; k < K; k += kw * 32 * kSlice) {
    uint4 raw[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) raw[r] = load_stream(wrow[r] + k);
    const float s = __ldg(srow + (k >> 7));
    float w[kRows][16];
#pragma unroll
    for (int r = 0; r < kRows; ++r) decode16(raw[r], w[r]);
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      float xv[16];
      load_x16(xrow[m] + k, xv);
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        float d = xv[0] * w[r][0];
#pragma unroll
        for (int j = 1; j < 16; ++j) d = __fmaf_rn(xv[j], w[r][j], d);
        acc[m][r] = __fmaf_rn(d, s, acc[m][r]);
      }
    }
  }

#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      float v = acc[m][r];
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
      if (lane == 0) partial[warp][m][r] = v;
    }
  __syncthreads();
  for (int t = threadIdx.x; t < groups * MT * kRows; t += blockDim.x) {
    const int g = t / (MT * kRows), m = (t / kRows) % MT, r = t % kRows;
    const int n = blockIdx.x * block_rows + g * kRows + r;
    if (m >= M || n >= N) continue;
    float v = partial[g * kw][m][r];
    for (int i = 1; i < kw; ++i) v += partial[g * kw + i][m][r];
    y[size_t(m) * N + n] = finish(v, bf16_output);
  }
}

// Generic path: any K, any alignment. One block per (n, m), scalar loads, fixed-tree block sum.
template <class XT>
__global__ void __launch_bounds__(kGenericThreads)
    gemm_fp8_generic_kernel(const XT* __restrict__ x, const uint8_t* __restrict__ W,
                            const float* __restrict__ S, int N, int K, float* __restrict__ y,
                            bool bf16_output) {
  __shared__ float red[kGenericThreads];
  const int n = blockIdx.x, m = blockIdx.y;
  const int kb = (K + 127) >> 7;
  const uint8_t* wr = W + size_t(n) * K;
  const XT* xr = x + size_t(m) * K;
  const float* sr = S + size_t(n >> 7) * kb;
  float acc = 0.f;
  for (int k = threadIdx.x; k < K; k += kGenericThreads) {
    float2 f = fp8x2_to_float2(wr[k]);
    acc = __fmaf_rn(to_f32(xr[k]), f.x * sr[k >> 7], acc);
  }
  red[threadIdx.x] = acc;
  __syncthreads();
  for (int h = kGenericThreads / 2; h > 0; h >>= 1) {
    if (threadIdx.x < h) red[threadIdx.x] += red[threadIdx.x + h];
    __syncthreads();
  }
  if (threadIdx.x == 0) y[size_t(m) * N + n] = finish(red[0], bf16_output);
}

template <int MT, class XT>
void launch_fast(const XT* x, int M, const Fp8WeightDev& w, float* y, bool bf16, cudaStream_t s) {
  const int64_t slices = (w.cols + 32 * kSlice - 1) / (32 * kSlice);
  const int kw = slices >= kWarps ? kWarps : 1;  // warps along K; rows per block = kRows * 8 / kw
  const int block_rows = kRows * (kWarps / kw);
  const int blocks = int((w.rows + block_rows - 1) / block_rows);
  gemm_fp8_small_m_kernel<MT, XT><<<blocks, kWarps * 32, 0, s>>>(x, M, w.data, w.scale_inv, int(w.rows),
                                                                 int(w.cols), kw, y, bf16);
  DS_CUDA_CHECK_LAUNCH("gemm_fp8_small_m_kernel");
}

template <class XT>
void dispatch(const XT* x, int M, const Fp8WeightDev& w, float* y, bool bf16, cudaStream_t s) {
  const bool aligned = w.cols % kSlice == 0 && reinterpret_cast<uintptr_t>(w.data) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(x) % 16 == 0;
  if (!aligned) {
    dim3 grid(unsigned(w.rows), unsigned(M));
    gemm_fp8_generic_kernel<XT><<<grid, kGenericThreads, 0, s>>>(x, w.data, w.scale_inv, int(w.rows),
                                                                 int(w.cols), y, bf16);
    DS_CUDA_CHECK_LAUNCH("gemm_fp8_generic_kernel");
  } else if (M == 1) {
    launch_fast<1>(x, M, w, y, bf16, s);
  } else if (M == 2) {
    launch_fast<2>(x, M, w, y, bf16, s);
  } else if (M <= 4) {
    launch_fast<4>(x, M, w, y, bf16, s);
  } else if (M <= 8) {
    launch_fast<8>(x, M, w, y, bf16, s);
  } else {
    launch_fast<16>(x, M, w, y, bf16, s);
  }
}

}  // namespace

void gemm_fp8_small_m(const void* x, ActType xt, int64_t M, const Fp8WeightDev& w, float* y,
                      bool bf16_output, cudaStream_t stream) {
  if (M < 1 || M > kGemmSmallMaxM)
    throw std::invalid_argument("gemm_fp8_small_m: M = " + std::to_string(M) + " outside [1, " +
                                std::to_string(kGemmSmallMaxM) + "]");
  if (w.rows < 1 || w.cols < 1 || w.rows > (1 << 30) || w.cols > (1 << 30) || w.rows * w.cols > (int64_t(1) << 40))
    throw std::invalid_argument("gemm_fp8_small_m: bad weight shape [" + std::to_string(w.rows) + ", " +
                                std::to_string(w.cols) + "]");
  if (!x || !y || !w.data || !w.scale_inv)
    throw std::invalid_argument("gemm_fp8_small_m: null pointer (x, y, weight data or scale_inv)");
  if (xt == ActType::F32)
    dispatch(static_cast<const float*>(x), int(M), w, y, bf16_output, stream);
  else
    dispatch(static_cast<const __nv_bfloat16*>(x), int(M), w, y, bf16_output, stream);
}

}  // namespace ds::cuda
