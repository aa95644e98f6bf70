// Activation quantization, UE8M0 scales (see act_quant.h; spec/model.md 9.2).
//
// One warp per (row, 128-channel group), 8 groups per 256-thread block: each lane loads 4
// contiguous values (8 bytes BF16 / 16 bytes F32), the warp max of |x| is exact in any order, the
// scale is formed from the exponent bits as the CPU twin does, x * (1 / s) is exact (s is a power
// of two), and the hardware cvt.rn.satfinite.e4m3x2.f32 rounds to nearest even. Every op is exact
// or correctly rounded, so bytes and scales equal the CPU twin's.
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "kernels/act_quant.h"
#include "kernels/cuda_check.h"

namespace ds::cuda {
namespace {

constexpr int kWarps = 8;

__device__ __forceinline__ float bf(uint32_t b) { return __uint_as_float(b << 16); }

template <class T>
__device__ __forceinline__ void load4(const T* x, int64_t i, float (&v)[4]);
template <>
__device__ __forceinline__ void load4<float>(const float* x, int64_t i, float (&v)[4]) {
  float4 a = *reinterpret_cast<const float4*>(x + i);
  v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w;
}
template <>
__device__ __forceinline__ void load4<uint16_t>(const uint16_t* x, int64_t i, float (&v)[4]) {
  uint2 a = *reinterpret_cast<const uint2*>(x + i);
  v[0] = bf(a.x & 0xffffu), v[1] = bf(a.x >> 16), v[2] = bf(a.y & 0xffffu), v[3] = bf(a.y >> 16);
}

__device__ __forceinline__ float clamp448(float v) { return v < -448.f ? -448.f : (448.f < v ? 448.f : v); }

template <class T>
__global__ void __launch_bounds__(kWarps * 32)
act_quant_kernel(const T* __restrict__ x, int64_t groups_total, uint8_t* __restrict__ q, float* __restrict__ scales) {
  // The FP8 GEMM that usually follows is launched with programmatic dependent launch: let it start
  // streaming its weights now (it waits for this grid's results before reading q and scales).
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
  const int64_t g = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (g >= groups_total) return;
  const int lane = threadIdx.x & 31;
  const int64_t base = g * 128 + lane * 4;  // rows are contiguous: group g covers x[g*128, +128)
  float v[4];
  load4<T>(x, base, v);
  float amax = fmaxf(fmaxf(fabsf(v[0]), fabsf(v[1])), fmaxf(fabsf(v[2]), fabsf(v[3])));
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  const float a = __fmul_rn(fmaxf(amax, 1e-4f), 1.0f / 448.0f);
  const uint32_t u = __float_as_uint(a);
  const int e = int((u >> 23) & 0xffu) - 127 + ((u & 0x7fffffu) != 0 ? 1 : 0);
  const float s = __uint_as_float(uint32_t(e + 127) << 23);  // e in [-22, 128]: a normal power of two or inf
  const float inv = __fdiv_rn(1.0f, s);
  const __nv_fp8x2_storage_t lo = __nv_cvt_float2_to_fp8x2(
      make_float2(clamp448(__fmul_rn(v[0], inv)), clamp448(__fmul_rn(v[1], inv))), __NV_SATFINITE, __NV_E4M3);
  const __nv_fp8x2_storage_t hi = __nv_cvt_float2_to_fp8x2(
      make_float2(clamp448(__fmul_rn(v[2], inv)), clamp448(__fmul_rn(v[3], inv))), __NV_SATFINITE, __NV_E4M3);
  reinterpret_cast<uint32_t*>(q)[base / 4] = uint32_t(lo) | (uint32_t(hi) << 16);
  if (lane == 0) scales[g] = s;
}

bool aligned(const void* p, unsigned a) { return (reinterpret_cast<uintptr_t>(p) & (a - 1)) == 0; }

}  // namespace

void act_quant_ue8m0(const void* x, QuantInType xt, int64_t rows, int64_t cols, uint8_t* q, float* scales,
                     cudaStream_t stream) {
  if (rows < 0 || cols < 128 || cols % 128 != 0)
    throw std::invalid_argument("act_quant_ue8m0: bad shape rows=" + std::to_string(rows) + " cols=" +
                                std::to_string(cols) + " (cols must be a positive multiple of 128)");
  if (!x || !q || !scales) throw std::invalid_argument("act_quant_ue8m0: null x, q or scales pointer");
  if (!aligned(x, xt == QuantInType::F32 ? 16 : 8) || !aligned(q, 4) || !aligned(scales, 4))
    throw std::invalid_argument("act_quant_ue8m0: misaligned x, q or scales");
  if (rows == 0) return;
  const int64_t groups = rows * (cols / 128);
  const int64_t blocks = (groups + kWarps - 1) / kWarps;
  if (blocks > 0x7fffffff) throw std::invalid_argument("act_quant_ue8m0: too many rows");
  if (xt == QuantInType::F32)
    act_quant_kernel<float><<<unsigned(blocks), kWarps * 32, 0, stream>>>(static_cast<const float*>(x), groups, q, scales);
  else
    act_quant_kernel<uint16_t><<<unsigned(blocks), kWarps * 32, 0, stream>>>(static_cast<const uint16_t*>(x), groups,
                                                                             q, scales);
  DS_CUDA_CHECK_LAUNCH("act_quant_kernel");
}

}  // namespace ds::cuda
