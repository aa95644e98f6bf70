// Tensor-core sparse absorbed MLA (the fast path of mla_sparse_attention; see mla_attention.h and
// docs/cuda.md). Shapes: C = 512 latent + dr = 64 rope (D = 576), heads in groups of 64.
//
// One CTA of 16 warps per (row, 64 heads); keys in tiles of 32 gathered through the slot list into
// shared memory as BF16 (every cached value is BF16-exact: BF16 records trivially, FP8 records
// because e4m3 x 2^k fits BF16), so one key tile serves all 64 heads (the MQA reuse). S = Q K^T and
// O += P V with mma.sync m16n8k16 BF16 -> FP32 (products of BF16 values are exact in FP32); online
// softmax in FP32; P split as hi + lo BF16 (p - hi is exact in FP32 and lo keeps ~2^-17 relative), so
// P V matches an FP32 P V to ~1e-6. Key records are gathered with 16-byte cp.async into a raw
// staging buffer one tile ahead, so the global gather of tile t + 1 overlaps the MMAs of tile t.
// Fragments come from ldmatrix (non-transposed for Q and K, transposed for V); shared rows are
// padded to 584 BF16 (1168 B) so that 8 row addresses hit distinct banks.
// (A first kernel, v1, with 8 warps of 254 registers, measured the same speed on the H200 and was
// removed; git history has it.)
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <atomic>
#include <stdexcept>

#include "kernels/cuda_check.h"
#include "kernels/mla_attention_tc.h"

namespace ds::cuda::detail {
namespace {

constexpr int kC = 512, kDr = 64, kD = 576;
constexpr int kHeads = 64;     // heads per CTA
constexpr int kTK = 32;        // keys per tile
constexpr int kLd = 584;       // BF16 elements per shared row
constexpr int kStageSlot = 1152;  // staging bytes per key: the larger record (BF16)

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void ldsm_x4(uint32_t addr, uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(addr));
}

__device__ __forceinline__ void ldsm_x4_t(uint32_t addr, uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(addr));
}

__device__ __forceinline__ void mma_bf16(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                         uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

__device__ __forceinline__ float2 fp8x2(uint32_t two) {
  __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(two & 0xffffu), __NV_E4M3);
  return __half22float2(*reinterpret_cast<__half2*>(&h));
}

// ---- the kernel: 16 warps, one softmax per head, 128 registers ----------------------------------
// One CTA of 16 warps per (row, 64 heads). Warp w: head block hb = w % 4 (16 heads), quarter
// qd = w / 4. Per 32-key tile:
//  1. gather (cp.async, one tile ahead) -> BF16 key rows (shared, same as v1);
//  2. S partials: warp (hb, qd) computes its 16 heads x 32 keys over dims [144 qd, 144 qd + 144)
//     and stores them; 3. softmax: warp w owns heads 4w..4w+3 (lane = key); it adds the four
//     partials in a fixed order ((0 + 1) + (2 + 3)), keeps the running max / sum of its heads in
//     FP32, writes P as hi + lo BF16 rows and the rescale factor alpha per head;
//  4. O += P V: warp (hb, qd) owns 16 heads x channels [128 qd, 128 qd + 128) (64 accumulator
//     registers), P fragments by ldmatrix from the hi / lo rows.
// Against v1 (8 warps, 254 registers; removed): 4 warps per scheduler instead of 2, one softmax per
// head instead of two. The slot indices are staged in shared memory (kIdxChunk per refill): an ncu
// profile of the first version showed 11% of the warp samples waiting on the dependent per-key
// index load in the gather; the record size is a template constant (no runtime division).
constexpr int kThreads2 = 512;
constexpr int kPartLd = 40;  // floats per partial-score row (float2 stores conflict-free per half warp)
constexpr int kPLd = 40;     // BF16 per P row: 80 B, so the 8 rows of an ldmatrix hit distinct banks
constexpr int kIdxChunk = 2048;  // slot indices staged in shared memory per refill (8 KB)
constexpr size_t kSmem2 = size_t(kHeads + kTK) * kLd * 2 + size_t(4) * kHeads * kPartLd * 4 +
                          size_t(2) * kHeads * kPLd * 2 + size_t(2) * kHeads * 4 + size_t(kTK) * kStageSlot +
                          size_t(kIdxChunk) * 4;
// Record bytes per key: FP8 [C e4m3 | C/128 F32 scales | dr BF16] or BF16 [C + dr] (mla_slot_bytes).
template <bool FP8>
constexpr int kRecBytes = FP8 ? kC + 4 * (kC / 128) + 2 * kDr : 2 * (kC + kDr);

// Staged raw records of keys t0.. -> BF16 rows [latent 512 | rope 64] of ks (zeros past n).
template <bool FP8>
__device__ __forceinline__ void stage_to_bf16(const uint8_t* stg, int t0, int n, __nv_bfloat16* ks, int tid,
                                              int nthreads) {
  constexpr int sb = kRecBytes<FP8>;
  if constexpr (!FP8) {
    for (int i = tid; i < kTK * (kD / 8); i += nthreads) {
      const int k = i / (kD / 8), c = i % (kD / 8);
      uint4 v = make_uint4(0u, 0u, 0u, 0u);
      if (t0 + k < n) v = reinterpret_cast<const uint4*>(stg + k * sb)[c];
      *reinterpret_cast<uint4*>(ks + k * kLd + c * 8) = v;
    }
    return;
  }
  constexpr int kChunks = kC / 16 + kDr / 8;  // 32 latent chunks of 16 FP8, 8 rope chunks of 8 BF16
  for (int i = tid; i < kTK * kChunks; i += nthreads) {
    const int k = i / kChunks, c = i % kChunks;
    const bool valid = t0 + k < n;
    const uint8_t* rec = stg + k * sb;
    if (c < kC / 16) {
      uint4 lo = make_uint4(0u, 0u, 0u, 0u), hi = lo;
      if (valid) {
        const uint4 v = reinterpret_cast<const uint4*>(rec)[c];
        const float s = reinterpret_cast<const float*>(rec + kC)[c / 8];
        const uint32_t w[4] = {v.x, v.y, v.z, v.w};
        uint32_t out[8];
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const float2 a = fp8x2(w[q]), b = fp8x2(w[q] >> 16);
          out[2 * q] = pack_bf16(a.x * s, a.y * s);  // exact: e4m3 * 2^k is a BF16 value
          out[2 * q + 1] = pack_bf16(b.x * s, b.y * s);
        }
        lo = make_uint4(out[0], out[1], out[2], out[3]);
        hi = make_uint4(out[4], out[5], out[6], out[7]);
      }
      *reinterpret_cast<uint4*>(ks + k * kLd + c * 16) = lo;
      *reinterpret_cast<uint4*>(ks + k * kLd + c * 16 + 8) = hi;
    } else {
      const int cp = c - kC / 16;
      uint4 v = make_uint4(0u, 0u, 0u, 0u);
      if (valid) v = reinterpret_cast<const uint4*>(rec + kC + 4 * (kC / 128))[cp];
      *reinterpret_cast<uint4*>(ks + k * kLd + kC + cp * 8) = v;
    }
  }
}

template <bool FP8>
__global__ void __launch_bounds__(kThreads2, 1)
mla_sparse_tc2_kernel(const float* __restrict__ q_lat, const float* __restrict__ q_pe, int H,
                      const uint8_t* __restrict__ cache, const int32_t* __restrict__ idx,
                      const int32_t* __restrict__ nrow, int max_n, float scale, float* __restrict__ o_lat) {
  constexpr int sb = kRecBytes<FP8>;
  extern __shared__ float4 smem4[];
  __nv_bfloat16* qs = reinterpret_cast<__nv_bfloat16*>(smem4);        // [64][kLd]
  __nv_bfloat16* ks = qs + kHeads * kLd;                                // [kTK][kLd]
  float* part = reinterpret_cast<float*>(ks + kTK * kLd);               // [4][64][kPartLd]
  __nv_bfloat16* phi = reinterpret_cast<__nv_bfloat16*>(part + 4 * kHeads * kPartLd);  // [64][kPLd]
  __nv_bfloat16* plo = phi + kHeads * kPLd;                             // [64][kPLd]
  float* alpha_s = reinterpret_cast<float*>(plo + kHeads * kPLd);       // [64]
  float* linv_s = alpha_s + kHeads;                                     // [64]
  uint8_t* stg = reinterpret_cast<uint8_t*>(linv_s + kHeads);           // [kTK][sb] bytes
  int32_t* sidx = reinterpret_cast<int32_t*>(stg + kTK * kStageSlot);    // [kIdxChunk] slot indices

  const int64_t r = blockIdx.y;
  const int h0 = blockIdx.x * kHeads;
  const int n = nrow[r];
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int hb = warp & 3, qd = warp >> 2;
  const int g = lane >> 2, t = lane & 3;
  if (n <= 0) {
    for (int i = tid; i < kHeads * kC; i += kThreads2) o_lat[(r * H + h0) * kC + i] = 0.f;
    return;
  }
  for (int i = tid; i < kHeads * (kD / 4); i += kThreads2) {
    const int h = i / (kD / 4), d = (i % (kD / 4)) * 4;
    const float4 v = d < kC ? *reinterpret_cast<const float4*>(q_lat + (r * H + h0 + h) * kC + d)
                            : *reinterpret_cast<const float4*>(q_pe + (r * H + h0 + h) * kDr + (d - kC));
    uint2 w;
    w.x = pack_bf16(v.x, v.y);
    w.y = pack_bf16(v.z, v.w);
    *reinterpret_cast<uint2*>(qs + h * kLd + d) = w;
  }
  float o[16][4];
#pragma unroll
  for (int j = 0; j < 16; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
  float m_run[4], l_run[4];  // softmax state of heads 4 warp + i (identical on all lanes)
#pragma unroll
  for (int i = 0; i < 4; ++i) m_run[i] = -INFINITY, l_run[i] = 0.f;
  const int32_t* idx_row = idx + r * int64_t(max_n);
  const uint32_t qs_base = smem_u32(qs), ks_base = smem_u32(ks), phi_base = smem_u32(phi), plo_base = smem_u32(plo);

  // The slot indices of keys [t1, t1 + kIdxChunk) are staged in shared memory (one global round
  // trip per 2048 keys instead of one dependent load per key per tile in the gather below).
  auto stage_idx = [&](int t1) {
    for (int i = tid; i < kIdxChunk && t1 + i < n; i += kThreads2) sidx[i] = idx_row[t1 + i];
  };
  stage_idx(0);
  __syncthreads();
  constexpr int cpk = sb / 16;  // 16-byte pieces per record: 41 (FP8) or 72 (BF16)
  auto issue = [&](int t1) {
    const int t1c = t1 % kIdxChunk;
#pragma unroll 1
    for (int i = tid; i < kTK * cpk; i += kThreads2) {
      const int k = i / cpk, c = i - k * cpk;
      if (t1 + k < n) {
        const uint8_t* src = cache + int64_t(sidx[t1c + k]) * sb + c * 16;
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_u32(stg + k * sb + c * 16)),
                     "l"(__cvta_generic_to_global(src))
                     : "memory");
      }
    }
    asm volatile("cp.async.commit_group;\n" ::: "memory");
  };
  issue(0);

  for (int t0 = 0; t0 < n; t0 += kTK) {
    asm volatile("cp.async.wait_group 0;\n" ::: "memory");
    __syncthreads();  // staging complete; the previous tile's readers of ks / part / P / alpha are done
    stage_to_bf16<FP8>(stg, t0, n, ks, tid, kThreads2);
    if (t0 + kTK < n && (t0 + kTK) % kIdxChunk == 0) stage_idx(t0 + kTK);  // every gather of the chunk has been issued
    __syncthreads();  // ks ready; staging free
    if (t0 + kTK < n) issue(t0 + kTK);
    {  // 1. partial S of head block hb over dims [144 qd, 144 qd + 144): 16 heads x 32 keys.
      float s[4][4];
#pragma unroll
      for (int j = 0; j < 4; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll 3
      for (int kk = qd * (kD / 4); kk < (qd + 1) * (kD / 4); kk += 16) {
        uint32_t a0, a1, a2, a3;
        {
          const int row = hb * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, col = kk + (lane >> 4) * 8;
          ldsm_x4(qs_base + uint32_t(row * kLd + col) * 2u, a0, a1, a2, a3);
        }
#pragma unroll
        for (int jp = 0; jp < 2; ++jp) {  // key n-tiles 2jp, 2jp + 1
          uint32_t b0, b1, b2, b3;
          const int key = jp * 16 + (lane & 7) + (lane >> 4) * 8, col = kk + ((lane >> 3) & 1) * 8;
          ldsm_x4(ks_base + uint32_t(key * kLd + col) * 2u, b0, b1, b2, b3);
          mma_bf16(s[2 * jp], a0, a1, a2, a3, b0, b1);
          mma_bf16(s[2 * jp + 1], a0, a1, a2, a3, b2, b3);
        }
      }
      float* my = part + (qd * kHeads + hb * 16) * kPartLd;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        *reinterpret_cast<float2*>(my + g * kPartLd + 8 * j + 2 * t) = make_float2(s[j][0], s[j][1]);
        *reinterpret_cast<float2*>(my + (g + 8) * kPartLd + 8 * j + 2 * t) = make_float2(s[j][2], s[j][3]);
      }
    }
    __syncthreads();
    {  // 2. online softmax of heads 4 warp + i, lane = key t0 + lane.
      const bool valid = t0 + lane < n;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int h = 4 * warp + i;
        const float* ph = part + h * kPartLd + lane;
        constexpr int kQ = kHeads * kPartLd;  // floats between quarters
        const float x = valid ? ((ph[0] + ph[kQ]) + (ph[2 * kQ] + ph[3 * kQ])) * scale : -INFINITY;
        float mx = x;
#pragma unroll
        for (int off = 16; off >= 1; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
        const float m_new = fmaxf(m_run[i], mx);  // finite: key t0 is valid
        const float alpha = expf(m_run[i] - m_new);
        m_run[i] = m_new;
        const float p = expf(x - m_new);  // 0 past n
        float sum = p;
#pragma unroll
        for (int off = 16; off >= 1; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
        l_run[i] = l_run[i] * alpha + sum;
        const __nv_bfloat16 hi = __float2bfloat16_rn(p);
        phi[h * kPLd + lane] = hi;
        plo[h * kPLd + lane] = __float2bfloat16_rn(p - __bfloat162float(hi));
        if (lane == 0) alpha_s[h] = alpha;
      }
    }
    __syncthreads();
    {  // 3. O += P V for heads hb*16.. and channels [128 qd, 128 qd + 128).
      const float al0 = alpha_s[hb * 16 + g], al1 = alpha_s[hb * 16 + g + 8];
#pragma unroll
      for (int j = 0; j < 16; ++j) {
        o[j][0] *= al0, o[j][1] *= al0;
        o[j][2] *= al1, o[j][3] *= al1;
      }
#pragma unroll
      for (int kk2 = 0; kk2 < 2; ++kk2) {
        uint32_t h0r, h1r, h2r, h3r, l0r, l1r, l2r, l3r;
        {
          const int row = hb * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, col = kk2 * 16 + (lane >> 4) * 8;
          ldsm_x4(phi_base + uint32_t(row * kPLd + col) * 2u, h0r, h1r, h2r, h3r);
          ldsm_x4(plo_base + uint32_t(row * kPLd + col) * 2u, l0r, l1r, l2r, l3r);
        }
        const int key = kk2 * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
#pragma unroll
        for (int jp = 0; jp < 8; ++jp) {
          const int chan = qd * 128 + jp * 16 + (lane >> 4) * 8;
          uint32_t b0, b1, b2, b3;
          ldsm_x4_t(ks_base + uint32_t(key * kLd + chan) * 2u, b0, b1, b2, b3);
          mma_bf16(o[2 * jp], h0r, h1r, h2r, h3r, b0, b1);
          mma_bf16(o[2 * jp + 1], h0r, h1r, h2r, h3r, b2, b3);
          mma_bf16(o[2 * jp], l0r, l1r, l2r, l3r, b0, b1);
          mma_bf16(o[2 * jp + 1], l0r, l1r, l2r, l3r, b2, b3);
        }
      }
    }
  }
  if (lane == 0) {
#pragma unroll
    for (int i = 0; i < 4; ++i) linv_s[4 * warp + i] = 1.0f / l_run[i];
  }
  __syncthreads();
  const float inv0 = linv_s[hb * 16 + g], inv1 = linv_s[hb * 16 + g + 8];
  float* out0 = o_lat + (r * H + h0 + hb * 16 + g) * int64_t(kC) + qd * 128;
  float* out1 = out0 + 8 * int64_t(kC);
#pragma unroll
  for (int j = 0; j < 16; ++j) {
    *reinterpret_cast<float2*>(out0 + 8 * j + 2 * t) = make_float2(o[j][0] * inv0, o[j][1] * inv0);
    *reinterpret_cast<float2*>(out1 + 8 * j + 2 * t) = make_float2(o[j][2] * inv1, o[j][3] * inv1);
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
    DS_CUDA_CHECK(
        cudaFuncSetAttribute(mla_sparse_tc2_kernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(kSmem2)));
    DS_CUDA_CHECK(
        cudaFuncSetAttribute(mla_sparse_tc2_kernel<false>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(kSmem2)));
    attr_set.store(true);
  }
  const dim3 grid(unsigned(H / kHeads), unsigned(R));
  if (dt == KvCacheDtype::FP8)
    mla_sparse_tc2_kernel<true><<<grid, kThreads2, kSmem2, stream>>>(q_lat, q_pe, H, cache, idx, n, max_n, scale, o_lat);
  else
    mla_sparse_tc2_kernel<false><<<grid, kThreads2, kSmem2, stream>>>(q_lat, q_pe, H, cache, idx, n, max_n, scale, o_lat);
  DS_CUDA_CHECK_LAUNCH("mla_sparse_tc2_kernel");
}

}  // namespace ds::cuda::detail
