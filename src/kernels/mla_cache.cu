// MLA latent cache and indexer-key cache stores (see mla_cache.h; spec/model.md 4.3, 5.5, 8.1).
//
// mla_cache_store: one block per row. FP8: warp g quantizes latent group g exactly as act_quant
// (warp max of |x|, UE8M0 scale from the exponent bits, x * (1/s) exact, hardware RNE e4m3 cvt)
// and writes its 128 bytes as 4-byte words; the k_pe tail is written as BF16 pairs. BF16: every
// thread converts pairs (RNE) and writes 4-byte words. Records are only 4-byte aligned in general
// (a 656-byte record is 16-byte aligned, but C = 128 records are not).
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/mla_cache.h"

namespace ds::cuda {
namespace {

__device__ __forceinline__ uint32_t bf16x2_bits(float a, float b) {
  __nv_bfloat162 v = __floats2bfloat162_rn(a, b);  // .x = a (low half)
  return *reinterpret_cast<uint32_t*>(&v);
}

__device__ __forceinline__ float clamp448(float v) { return v < -448.f ? -448.f : (448.f < v ? 448.f : v); }

__global__ void mla_store_bf16_kernel(const float* __restrict__ rows, int D, const int32_t* __restrict__ slots,
                                      int64_t slot_bytes, uint8_t* __restrict__ cache) {
  const int64_t r = blockIdx.x;
  const int32_t slot = slots[r];
  if (slot < 0) return;
  const float* x = rows + r * D;
  uint32_t* dst = reinterpret_cast<uint32_t*>(cache + int64_t(slot) * slot_bytes);
  for (int i = threadIdx.x; i < D / 2; i += blockDim.x) dst[i] = bf16x2_bits(x[2 * i], x[2 * i + 1]);
}

__global__ void mla_store_fp8_kernel(const float* __restrict__ rows, int C, int dr, const int32_t* __restrict__ slots,
                                     int64_t slot_bytes, uint8_t* __restrict__ cache) {
  const int64_t r = blockIdx.x;
  const int32_t slot = slots[r];
  if (slot < 0) return;
  const int G = C / 128;
  const float* x = rows + r * int64_t(C + dr);
  uint8_t* rec = cache + int64_t(slot) * slot_bytes;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int g = warp; g < G; g += blockDim.x >> 5) {
    const float4 v = *reinterpret_cast<const float4*>(x + g * 128 + lane * 4);
    float amax = fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w)));
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    const float a = __fmul_rn(fmaxf(amax, 1e-4f), 1.0f / 448.0f);
    const uint32_t u = __float_as_uint(a);
    const int e = int((u >> 23) & 0xffu) - 127 + ((u & 0x7fffffu) != 0 ? 1 : 0);
    const float s = __uint_as_float(uint32_t(e + 127) << 23);
    const float inv = __fdiv_rn(1.0f, s);
    const __nv_fp8x2_storage_t lo = __nv_cvt_float2_to_fp8x2(
        make_float2(clamp448(__fmul_rn(v.x, inv)), clamp448(__fmul_rn(v.y, inv))), __NV_SATFINITE, __NV_E4M3);
    const __nv_fp8x2_storage_t hi = __nv_cvt_float2_to_fp8x2(
        make_float2(clamp448(__fmul_rn(v.z, inv)), clamp448(__fmul_rn(v.w, inv))), __NV_SATFINITE, __NV_E4M3);
    reinterpret_cast<uint32_t*>(rec)[g * 32 + lane] = uint32_t(lo) | (uint32_t(hi) << 16);
    if (lane == 0) reinterpret_cast<float*>(rec + C)[g] = s;
  }
  uint32_t* pe = reinterpret_cast<uint32_t*>(rec + C + 4 * G);
  for (int i = threadIdx.x; i < dr / 2; i += blockDim.x) pe[i] = bf16x2_bits(x[C + 2 * i], x[C + 2 * i + 1]);
}

__global__ void index_store_kernel(const uint4* __restrict__ kq, const float* __restrict__ ks, int64_t R, int chunks,
                                   const int32_t* __restrict__ slots, uint4* __restrict__ kcache,
                                   float* __restrict__ kscale) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= R * chunks) return;
  const int64_t r = t / chunks;
  const int c = int(t % chunks);
  const int32_t slot = slots[r];
  if (slot < 0) return;
  kcache[int64_t(slot) * chunks + c] = kq[t];
  if (c == 0) kscale[slot] = ks[r];
}

bool aligned(const void* p, unsigned a) { return (reinterpret_cast<uintptr_t>(p) & (a - 1)) == 0; }

}  // namespace

int64_t mla_slot_bytes(KvCacheDtype dt, int kv_lora, int rope) {
  if (rope < 0 || rope % 8 != 0)
    throw std::invalid_argument("mla_slot_bytes: rope dim " + std::to_string(rope) + " must be a multiple of 8");
  if (dt == KvCacheDtype::FP8) {
    if (kv_lora < 128 || kv_lora % 128 != 0)
      throw std::invalid_argument("mla_slot_bytes: kv_lora " + std::to_string(kv_lora) +
                                  " must be a positive multiple of 128 for the FP8 cache");
    return int64_t(kv_lora) + 4 * (kv_lora / 128) + 2 * int64_t(rope);
  }
  if (kv_lora < 8 || kv_lora % 8 != 0)
    throw std::invalid_argument("mla_slot_bytes: kv_lora " + std::to_string(kv_lora) + " must be a multiple of 8");
  return 2 * (int64_t(kv_lora) + rope);
}

void mla_cache_store(const float* rows, int64_t R, int C, int dr, const int32_t* slots, KvCacheDtype dt,
                     uint8_t* cache, cudaStream_t stream) {
  const int64_t sb = mla_slot_bytes(dt, C, dr);
  if (R < 0 || R > 0x7fffffff) throw std::invalid_argument("mla_cache_store: bad row count R=" + std::to_string(R));
  if (!rows || !slots || !cache) throw std::invalid_argument("mla_cache_store: null rows, slots or cache pointer");
  if (!aligned(rows, 16) || !aligned(cache, 16)) throw std::invalid_argument("mla_cache_store: misaligned rows or cache");
  if (R == 0) return;
  if (dt == KvCacheDtype::BF16) {
    mla_store_bf16_kernel<<<unsigned(R), 256, 0, stream>>>(rows, C + dr, slots, sb, cache);
  } else {
    const int warps = std::min(C / 128, 32);
    mla_store_fp8_kernel<<<unsigned(R), std::max(warps, 2) * 32, 0, stream>>>(rows, C, dr, slots, sb, cache);
  }
  DS_CUDA_CHECK_LAUNCH("mla_cache_store");
}

void index_cache_store(const uint8_t* kq, const float* ks, int64_t R, int Di, const int32_t* slots, uint8_t* kcache,
                       float* kscale, cudaStream_t stream) {
  if (R < 0 || Di < 16 || Di % 16 != 0)
    throw std::invalid_argument("index_cache_store: bad shape R=" + std::to_string(R) + " Di=" + std::to_string(Di) +
                                " (Di must be a positive multiple of 16)");
  if (!kq || !ks || !slots || !kcache || !kscale)
    throw std::invalid_argument("index_cache_store: null kq, ks, slots, kcache or kscale pointer");
  if (!aligned(kq, 16) || !aligned(kcache, 16)) throw std::invalid_argument("index_cache_store: misaligned kq or kcache");
  if (R == 0) return;
  const int chunks = Di / 16;
  const int64_t total = R * chunks;
  const int64_t blocks = (total + 255) / 256;
  index_store_kernel<<<unsigned(blocks), 256, 0, stream>>>(reinterpret_cast<const uint4*>(kq), ks, R, chunks, slots,
                                                           reinterpret_cast<uint4*>(kcache), kscale);
  DS_CUDA_CHECK_LAUNCH("index_cache_store");
}

}  // namespace ds::cuda
