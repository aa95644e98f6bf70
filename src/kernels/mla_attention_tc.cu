// Tensor-core sparse absorbed MLA (the fast path of mla_sparse_attention; see mla_attention.h and
// docs/cuda.md "MLA attention"). Shapes: C = 512 latent + dr = 64 rope (D = 576), heads in groups of 64.
//
// One CTA of two warpgroups per (row, 64 heads), keys in tiles of 64 gathered through the slot list.
// Every cached value is BF16-exact (BF16 records trivially; FP8 records because e4m3 x 2^k fits
// BF16), so the key tile is held as BF16 in shared memory and serves all 64 heads (the MQA reuse of
// the absorbed form). Hopper wgmma (warpgroup MMA, BF16 -> FP32, operands read by the tensor cores
// straight from 128-byte-swizzled shared memory, wgmma.cuh):
//  1. S = Q K^T: warpgroup w computes 64 heads x keys [32 w, 32 w + 32) of the tile, m64n32k16 over
//     the 576 dims (A = Q, K-major; B = the key rows, K-major).
//  2. Online softmax in FP32 in the accumulator registers: the two warpgroups exchange their row
//     maxima through shared memory, so both rescale with the same running max; P is written as hi +
//     lo BF16 (p - hi is exact in FP32 and lo keeps ~2^-17 relative, so P V matches an FP32 P V to
//     ~1e-6) in the K-major layout of the next MMA's A operand.
//  3. O += P V: warpgroup w owns channels [256 w, 256 w + 256) for all 64 heads (128 accumulator
//     registers per thread), m64n256k16 with A = P (hi, then lo) and B = the same key rows read
//     MN-major (V is the latent part of the key rows), 4 key steps of 16.
// Each warpgroup keeps the softmax denominator of its own keys; the two are added at the end.
// FP8 cache: raw records are gathered with 16-byte cp.async into a staging buffer one tile ahead (the
// global gather of tile t + 1 overlaps the MMAs of tile t) and converted to the BF16 tile. BF16 cache:
// records are copied with cp.async straight into the swizzled tile (no staging: the tile and the
// staging buffer would not both fit), so the gather does not overlap. The bits do not depend on the
// cache format (the driver checks FP8 == BF16 output bit for bit). Deterministic and independent
// of R.
// (Earlier kernels: v1 8 warps of mma.sync, v2 16 warps of mma.sync with ldmatrix fragments, 103 and
// 117 TFLOP/s on the H200, limited by ldmatrix traffic; git history has them.)
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <atomic>
#include <stdexcept>

#include "kernels/cuda_check.h"
#include "kernels/mla_attention_tc.h"
#include "kernels/wgmma.cuh"

namespace ds::cuda::detail {
namespace {

constexpr int kC = 512, kDr = 64, kD = 576;
constexpr int kHeads = 64;  // heads per CTA (the M of every wgmma)
constexpr int kTK = 64;     // keys per tile
constexpr int kThreads = 256;  // two warpgroups
constexpr int kIdxChunk = 2048;  // slot indices staged in shared memory per refill (8 KB)
constexpr uint32_t kTileBytes = uint32_t(kD / 64) * 64 * 128;  // 64 rows x 576 BF16, 9 column blocks: 73728
constexpr uint32_t kBlk = 64 * 128;                             // one 64-row column block: 8192 B
// Record bytes per key: FP8 [C e4m3 | C/128 F32 scales | dr BF16] or BF16 [C + dr] (mla_slot_bytes).
template <bool FP8>
constexpr int kRecBytes = FP8 ? kC + 4 * (kC / 128) + 2 * kDr : 2 * (kC + kDr);
// Shared memory (offsets from a 1024-aligned base): Q tile, key tile, P hi, P lo, slot indices, row
// maxima / sums of both warpgroups, then the FP8 staging buffer.
constexpr uint32_t kOffQ = 0, kOffK = kTileBytes, kOffPhi = 2 * kTileBytes, kOffPlo = kOffPhi + kBlk,
                   kOffIdx = kOffPlo + kBlk, kOffRed = kOffIdx + 4 * kIdxChunk, kOffStg = kOffRed + 2 * 2 * 64 * 4;
template <bool FP8>
constexpr size_t kSmem = 1024 + kOffStg + (FP8 ? size_t(kTK) * kRecBytes<true> : 0);
static_assert(kSmem<true> <= 227 * 1024, "shared memory per CTA");

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

__device__ __forceinline__ float2 fp8x2(uint32_t two) {
  __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(two & 0xffffu), __NV_E4M3);
  return __half22float2(*reinterpret_cast<__half2*>(&h));
}

__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(__cvta_generic_to_global(src)) : "memory");
}

// e4m3 pair (low 16 bits of `two`) times the power-of-two scale s, as a BF16 pair; exact. The
// e4m3 -> f16 convert is exact and gives normal f16 values (or zero); the f16 bits shifted right by 3
// are the BF16 bits of the same value times 2^-112 (zero stays zero), and one BF16 multiply by
// s * 2^112 (s2, passed as a BF16 pair) restores it: products of these values are BF16 values, so no
// rounding happens. Callers use the F32 path when s * 2^112 is not a BF16 normal.
__device__ __forceinline__ uint32_t e4m3x2_to_bf16x2_fast(uint32_t two, __nv_bfloat162 s2) {
  __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(two & 0xffffu), __NV_E4M3);
  const uint32_t hb = uint32_t(h.x) | (uint32_t(h.y) << 16);
  const uint32_t t = ((hb >> 3) & 0x0FFF0FFFu) | (hb & 0x80008000u);
  __nv_bfloat162 v = __hmul2(*reinterpret_cast<const __nv_bfloat162*>(&t), s2);
  return *reinterpret_cast<uint32_t*>(&v);
}
__device__ __forceinline__ uint32_t e4m3x2_to_bf16x2_f32(uint32_t two, float s) {
  const float2 a = fp8x2(two);
  return pack_bf16(a.x * s, a.y * s);  // exact: e4m3 * 2^k is a BF16 value
}

// Staged FP8 records of keys t0.. -> the swizzled BF16 key tile (zeros past n). Thread (key k =
// tid % 64, latent group g = tid / 64) converts the 128 values of its group (8 staged 16-byte chunks:
// bank-conflict free, record stride 41 chunks) and copies 2 of the key's 8 rope chunks.
__device__ __forceinline__ void convert_fp8_tile(const uint8_t* stg, int t0, int n, uint8_t* ks, int tid) {
  constexpr int sb = kRecBytes<true>;
  const int k = tid & 63, g = tid >> 6;
  const bool valid = t0 + k < n;
  const uint8_t* rec = stg + k * sb;
  uint8_t* row = ks + k * 128;
  const int sw = k & 7;
  const float s = valid ? reinterpret_cast<const float*>(rec + kC)[g] : 0.f;
  const bool fast = s >= 0x1p-126f && s < 0x1p15f;  // s * 2^112 is a BF16 normal
  const __nv_bfloat162 s2 = __float2bfloat162_rn(fast ? s * 0x1p112f : 0.f);
#pragma unroll
  for (int j = 0; j < 8; ++j) {  // input chunk j: latent values 128 g + 16 j .. + 15 -> output chunks 2j, 2j + 1
    const uint4 w = valid ? reinterpret_cast<const uint4*>(rec + 128 * g)[j] : make_uint4(0u, 0u, 0u, 0u);
    const uint32_t in[4] = {w.x, w.y, w.z, w.w};
    uint32_t out[8];
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      out[2 * q] = fast ? e4m3x2_to_bf16x2_fast(in[q], s2) : e4m3x2_to_bf16x2_f32(in[q], s);
      out[2 * q + 1] = fast ? e4m3x2_to_bf16x2_fast(in[q] >> 16, s2) : e4m3x2_to_bf16x2_f32(in[q] >> 16, s);
    }
    // Column 128 g + 16 j (+ 8): block 2 g + j / 4, chunk (2 j) % 8 (+ 1), swizzled by the row.
    uint8_t* blk = row + (2 * g + (j >> 2)) * kBlk;
    *reinterpret_cast<uint4*>(blk + ((((2 * j) & 7) ^ sw) << 4)) = make_uint4(out[0], out[1], out[2], out[3]);
    *reinterpret_cast<uint4*>(blk + ((((2 * j + 1) & 7) ^ sw) << 4)) = make_uint4(out[4], out[5], out[6], out[7]);
  }
#pragma unroll
  for (int c = 2 * g; c < 2 * g + 2; ++c) {  // rope chunks (BF16 copies): block 8, chunk c
    const uint4 v = valid ? reinterpret_cast<const uint4*>(rec + kC + 4 * (kC / 128))[c] : make_uint4(0u, 0u, 0u, 0u);
    *reinterpret_cast<uint4*>(row + 8 * kBlk + ((c ^ sw) << 4)) = v;
  }
}

template <bool FP8>
__global__ void __launch_bounds__(kThreads, 1)
mla_sparse_wgmma_kernel(const float* __restrict__ q_lat, const float* __restrict__ q_pe, int H,
                        const uint8_t* __restrict__ cache, const int32_t* __restrict__ idx,
                        const int32_t* __restrict__ nrow, int max_n, float scale, float* __restrict__ o_lat) {
  constexpr int sb = kRecBytes<FP8>;
  extern __shared__ float4 smem_raw[];
  uint8_t* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  uint8_t* qs = base + kOffQ;
  uint8_t* ks = base + kOffK;
  uint8_t* phi = base + kOffPhi;
  uint8_t* plo = base + kOffPlo;
  int32_t* sidx = reinterpret_cast<int32_t*>(base + kOffIdx);
  float* red = reinterpret_cast<float*>(base + kOffRed);  // [2][64] row maxima, then [2][64] row sums
  uint8_t* stg = base + kOffStg;

  const int64_t r = blockIdx.y;
  const int h0 = blockIdx.x * kHeads;
  const int n = nrow[r];
  const int tid = threadIdx.x, wg = tid >> 7, lane = tid & 31;
  const int row0 = ((tid >> 5) & 3) * 16 + (lane >> 2);  // this thread's accumulator rows: row0, row0 + 8
  const int cq = 2 * (lane & 3);                        // and columns cq, cq + 1 of every 8-column group
  if (n <= 0) {
    for (int i = tid; i < kHeads * kC; i += kThreads) o_lat[(r * H + h0) * kC + i] = 0.f;
    return;
  }
  // Q (F32) -> BF16 swizzled tile: 18 chunks of 8 values per thread, loads issued 6 chunks at a time
  // (a loop of dependent load -> store round trips measured ~15 us per CTA).
  constexpr int kQChunks = kHeads * (kD / 8) / kThreads;  // 18
#pragma unroll
  for (int i0 = 0; i0 < kQChunks; i0 += 6) {
    float4 v[6][2];
#pragma unroll
    for (int u = 0; u < 6; ++u) {
      const int i = (i0 + u) * kThreads + tid, h = i / (kD / 8), d = (i % (kD / 8)) * 8;
      const float* src = d < kC ? q_lat + (r * H + h0 + h) * kC + d : q_pe + (r * H + h0 + h) * kDr + (d - kC);
      v[u][0] = reinterpret_cast<const float4*>(src)[0];
      v[u][1] = reinterpret_cast<const float4*>(src)[1];
    }
#pragma unroll
    for (int u = 0; u < 6; ++u) {
      const int i = (i0 + u) * kThreads + tid, h = i / (kD / 8), d = (i % (kD / 8)) * 8;
      *reinterpret_cast<uint4*>(qs + swz128_offset(kHeads, h, d)) =
          make_uint4(pack_bf16(v[u][0].x, v[u][0].y), pack_bf16(v[u][0].z, v[u][0].w), pack_bf16(v[u][1].x, v[u][1].y),
                     pack_bf16(v[u][1].z, v[u][1].w));
    }
  }
  static_assert(kQChunks * kThreads == kHeads * (kD / 8) && kQChunks % 6 == 0, "Q chunks per thread");
  const int32_t* idx_row = idx + r * int64_t(max_n);
  auto stage_idx = [&](int t1) {  // all 8 loads of a thread in flight at once
#pragma unroll
    for (int u = 0; u < kIdxChunk / kThreads; ++u) {
      const int i = u * kThreads + tid;
      if (t1 + i < n) sidx[i] = idx_row[t1 + i];
    }
  };
  stage_idx(0);
  __syncthreads();
  // Gather of keys [t1, t1 + kTK). FP8: the tile's 64 x 41 16-byte pieces in order, thread tid taking
  // pieces tid, tid + 256, ... into the staging buffer (consecutive lanes copy consecutive bytes of a
  // record: this measured 22 us faster at 128 rows than 4 lanes per record). BF16: thread (key
  // k = tid / 4, part p = tid % 4) copies pieces p, p + 4, ... of the 72 straight into the swizzled
  // tile, zero-filling keys past n (FP8 leaves the staging alone; the conversion writes the zeros).
  constexpr int cpk = sb / 16;
  auto issue = [&](int t1) {
    const int t1c = t1 % kIdxChunk;
    if constexpr (FP8) {
#pragma unroll 1
      for (int i = tid; i < kTK * cpk; i += kThreads) {
        const int k = i / cpk, c = i - k * cpk;
        if (t1 + k < n) cp_async16(smem_u32(stg + i * 16), cache + int64_t(sidx[t1c + k]) * sb + c * 16);
      }
    } else {
      const int k = tid >> 2, part = tid & 3;
      if (t1 + k < n) {
        const uint8_t* src = cache + int64_t(sidx[t1c + k]) * sb;
        const uint32_t dst = smem_u32(ks + k * 128);
#pragma unroll
        for (int c = part; c < cpk; c += 4) cp_async16(dst + (c >> 3) * kBlk + (((c & 7) ^ (k & 7)) << 4), src + 16 * c);
      } else {
#pragma unroll
        for (int c = part; c < cpk; c += 4)
          *reinterpret_cast<uint4*>(ks + k * 128 + (c >> 3) * kBlk + (((c & 7) ^ (k & 7)) << 4)) = make_uint4(0u, 0u, 0u, 0u);
      }
    }
    asm volatile("cp.async.commit_group;\n" ::: "memory");
  };
  if (FP8) issue(0);

  float o[128];
#pragma unroll
  for (int j = 0; j < 128; ++j) o[j] = 0.f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};  // rows row0, row0 + 8
  const uint32_t qs_a = smem_u32(qs), ks_a = smem_u32(ks), phi_a = smem_u32(phi), plo_a = smem_u32(plo);

  for (int t0 = 0; t0 < n; t0 += kTK) {
    if constexpr (FP8) {
      asm volatile("cp.async.wait_group 0;\n" ::: "memory");
      __syncthreads();  // staging complete; every MMA of the previous tile has completed (waited below)
      convert_fp8_tile(stg, t0, n, ks, tid);
      if (t0 + kTK < n && (t0 + kTK) % kIdxChunk == 0) stage_idx(t0 + kTK);  // the chunk's gathers are issued
      fence_proxy_async_smem();
      __syncthreads();  // key tile ready; staging free
      if (t0 + kTK < n) issue(t0 + kTK);
    } else {
      if (t0 > 0 && t0 % kIdxChunk == 0) {
        __syncthreads();
        stage_idx(t0);
      }
      __syncthreads();  // every MMA of the previous tile has completed; slot indices staged
      issue(t0);
      asm volatile("cp.async.wait_group 0;\n" ::: "memory");
      fence_proxy_async_smem();
      __syncthreads();
    }
    // 1. S for keys [32 wg, 32 wg + 32) of the tile.
    float s[16];
#pragma unroll
    for (int j = 0; j < 16; ++j) s[j] = 0.f;
    wgmma_pin(s);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      const uint32_t off = uint32_t(kk >> 2) * kBlk + uint32_t(kk & 3) * 32;
      wgmma_m64n32k16_bf16(s, wgmma_desc(qs_a + off, 16, 1024), wgmma_desc(ks_a + off + uint32_t(wg) * 32 * 128, 16, 1024));
    }
    wgmma_commit();
    wgmma_wait_all();
    wgmma_pin(s);
    // 2. Online softmax. s[4j + e]: row row0 (e < 2) or row0 + 8, key 32 wg + 8 j + cq + (e & 1).
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const bool valid = t0 + 32 * wg + 8 * j + cq + (e & 1) < n;
        s[4 * j + e] = valid ? s[4 * j + e] * scale : -INFINITY;
        mx[e >> 1] = fmaxf(mx[e >> 1], s[4 * j + e]);
      }
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
    }
    if ((lane & 3) == 0) red[wg * 64 + row0] = mx[0], red[wg * 64 + row0 + 8] = mx[1];
    __syncthreads();
    float alpha[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const float m_new = fmaxf(m_run[h], fmaxf(red[row0 + 8 * h], red[64 + row0 + 8 * h]));  // finite: key t0 is valid
      alpha[h] = expf(m_run[h] - m_new);
      m_run[h] = m_new;
    }
    float sum[2] = {0.f, 0.f};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      float p[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        p[e] = expf(s[4 * j + e] - m_run[e >> 1]);  // 0 past n
        sum[e >> 1] += p[e];
      }
      const int key = 32 * wg + 8 * j + cq;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const __nv_bfloat162 hi = __floats2bfloat162_rn(p[2 * h], p[2 * h + 1]);
        const float2 hf = __bfloat1622float2(hi);
        const __nv_bfloat162 lo = __floats2bfloat162_rn(p[2 * h] - hf.x, p[2 * h + 1] - hf.y);
        const uint32_t off = swz128_offset(kHeads, row0 + 8 * h, key);
        *reinterpret_cast<__nv_bfloat162*>(phi + off) = hi;
        *reinterpret_cast<__nv_bfloat162*>(plo + off) = lo;
      }
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      sum[h] += __shfl_xor_sync(0xffffffffu, sum[h], 1);
      sum[h] += __shfl_xor_sync(0xffffffffu, sum[h], 2);
      l_run[h] = l_run[h] * alpha[h] + sum[h];
    }
    if (!__all_sync(0xffffffffu, alpha[0] == 1.f && alpha[1] == 1.f)) {  // x * 1 == x: skipping changes no bit
#pragma unroll
      for (int j = 0; j < 32; ++j) {
        o[4 * j] *= alpha[0], o[4 * j + 1] *= alpha[0];
        o[4 * j + 2] *= alpha[1], o[4 * j + 3] *= alpha[1];
      }
    }
    fence_proxy_async_smem();
    __syncthreads();  // P of both warpgroups written; row maxima read
    // 3. O += P V over the tile's 64 keys, channels [256 wg, 256 wg + 256).
    wgmma_pin(o);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kTK / 16; ++kk) {
      const uint64_t dv = wgmma_desc(ks_a + uint32_t(4 * wg) * kBlk + uint32_t(kk) * 16 * 128, kBlk, 1024);
      wgmma_m64n256k16_bf16_bt(o, wgmma_desc(phi_a + uint32_t(kk) * 32, 16, 1024), dv);
      wgmma_m64n256k16_bf16_bt(o, wgmma_desc(plo_a + uint32_t(kk) * 32, 16, 1024), dv);
    }
    wgmma_commit();
    wgmma_wait_all();
    wgmma_pin(o);
  }
  // Denominator: this warpgroup's keys plus the other's (fixed order: warpgroup 0 first).
  if ((lane & 3) == 0) red[128 + wg * 64 + row0] = l_run[0], red[128 + wg * 64 + row0 + 8] = l_run[1];
  __syncthreads();
  float inv[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) inv[h] = 1.0f / (red[128 + row0 + 8 * h] + red[192 + row0 + 8 * h]);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float* out = o_lat + (r * H + h0 + row0 + 8 * h) * int64_t(kC) + 256 * wg + cq;
#pragma unroll
    for (int j = 0; j < 32; ++j)
      *reinterpret_cast<float2*>(out + 8 * j) = make_float2(o[4 * j + 2 * h] * inv[h], o[4 * j + 2 * h + 1] * inv[h]);
  }
}

}  // namespace

bool mla_sparse_tc_supported(int H, int C, int dr) { return C == kC && dr == kDr && H >= kHeads && H % kHeads == 0; }

void mla_sparse_attention_tc(const float* q_lat, const float* q_pe, int64_t R, int H, const uint8_t* cache,
                             KvCacheDtype dt, const int32_t* idx, const int32_t* n, int max_n, float scale, float* o_lat,
                             cudaStream_t stream) {
  static_assert(kRecBytes<true> == 656 && kRecBytes<false> == 1152, "record sizes of spec/model.md 8.1");
  if (mla_slot_bytes(dt, kC, kDr) != (dt == KvCacheDtype::FP8 ? kRecBytes<true> : kRecBytes<false>))
    throw std::invalid_argument("mla_sparse_attention: record size differs from the kernel's");
  static std::atomic<bool> attr_set{false};
  if (!attr_set.load()) {  // both forms at once, so a graph capture after one eager call sets nothing
    DS_CUDA_CHECK(cudaFuncSetAttribute(mla_sparse_wgmma_kernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       int(kSmem<true>)));
    DS_CUDA_CHECK(cudaFuncSetAttribute(mla_sparse_wgmma_kernel<false>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       int(kSmem<false>)));
    attr_set.store(true);
  }
  const dim3 grid(unsigned(H / kHeads), unsigned(R));
  if (dt == KvCacheDtype::FP8)
    mla_sparse_wgmma_kernel<true>
        <<<grid, kThreads, kSmem<true>, stream>>>(q_lat, q_pe, H, cache, idx, n, max_n, scale, o_lat);
  else
    mla_sparse_wgmma_kernel<false>
        <<<grid, kThreads, kSmem<false>, stream>>>(q_lat, q_pe, H, cache, idx, n, max_n, scale, o_lat);
  DS_CUDA_CHECK_LAUNCH("mla_sparse_wgmma_kernel");
}

}  // namespace ds::cuda::detail
