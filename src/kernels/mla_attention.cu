// Sparse absorbed MLA attention and the absorption products (see mla_attention.h; spec 4.7, 5.4).
//
// mla_sparse_attention_fp32, FP32 on CUDA cores (any C % 128 == 0, dr, H; the exact reference path;
// mla_sparse_attention uses the tensor-core kernel of mla_attention_tc.cu for C 512, dr 64, H % 64 == 0): one CTA of 256 threads per (row, group of kHG = 16 heads). The
// CTA keeps its 16 query vectors [C + dr] in shared memory and walks the row's selected keys in
// tiles of kTK = 32: the tile is gathered through the slot list (16-byte loads when the record
// size allows, FP8 latents dequantized with their UE8M0 scale), converted once to F32 in shared
// memory and then used by all 16 heads -- MQA shares one key per token across heads, which is the
// reuse that makes the absorbed form cheap. Scores: warp w owns heads 2w, 2w+1, lane = key (row
// stride C + dr + 4 floats keeps the 16-byte reads conflict-free). Online softmax per head in FP32
// (running max m, sum l, rescale alpha = exp(m_old - m_new)). P.V: thread t owns channel pairs
// 2t + 512 i of all 16 heads. o = acc / l at the end. Deterministic: fixed loop orders, no atomics.
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/mla_attention.h"
#include "kernels/mla_attention_tc.h"

namespace ds::cuda {
namespace {

constexpr int kHG = 16;        // heads per CTA
constexpr int kTK = 32;        // keys per tile
constexpr int kThreads = 256;  // 8 warps
constexpr int kMaxPairs = 2;   // channel pairs per thread: C <= 1024

__device__ __forceinline__ float bf_lo(uint32_t w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float bf_hi(uint32_t w) { return __uint_as_float(w & 0xffff0000u); }

__device__ __forceinline__ float2 fp8x2(uint32_t two) {
  __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(two & 0xffffu), __NV_E4M3);
  return __half22float2(*reinterpret_cast<__half2*>(&h));
}

// Gathers key tile [t0, t0 + kTK) of row r into ks (kTK x ldk floats: latent C then k_pe dr);
// keys past n are zero.
__device__ void load_tile(const uint8_t* __restrict__ cache, bool fp8, int64_t sb, bool vec16, int C, int dr,
                          const int32_t* __restrict__ idx_row, int t0, int n, float* ks, int ldk) {
  const int D = C + dr;
  if (!fp8) {
    // BF16 record: D values, D/2 words; 16-byte chunks hold 8 values.
    const int wpk = D / 2;
    if (vec16) {
      const int cpk = D / 8;
      for (int i = threadIdx.x; i < kTK * cpk; i += kThreads) {
        const int k = i / cpk, c = i % cpk;
        float* dst = ks + k * ldk + c * 8;
        if (t0 + k >= n) {
          for (int e = 0; e < 8; ++e) dst[e] = 0.f;
          continue;
        }
        const uint4 v = reinterpret_cast<const uint4*>(cache + int64_t(idx_row[t0 + k]) * sb)[c];
        reinterpret_cast<float4*>(dst)[0] = make_float4(bf_lo(v.x), bf_hi(v.x), bf_lo(v.y), bf_hi(v.y));
        reinterpret_cast<float4*>(dst)[1] = make_float4(bf_lo(v.z), bf_hi(v.z), bf_lo(v.w), bf_hi(v.w));
      }
    } else {
      for (int i = threadIdx.x; i < kTK * wpk; i += kThreads) {
        const int k = i / wpk, c = i % wpk;
        float* dst = ks + k * ldk + c * 2;
        if (t0 + k >= n) {
          dst[0] = dst[1] = 0.f;
          continue;
        }
        const uint32_t w = reinterpret_cast<const uint32_t*>(cache + int64_t(idx_row[t0 + k]) * sb)[c];
        dst[0] = bf_lo(w), dst[1] = bf_hi(w);
      }
    }
    return;
  }
  // FP8 record: C bytes E4M3, C/128 F32 scales, dr BF16.
  const int G = C / 128;
  if (vec16) {
    const int cpk = C / 16;  // 16 latent values per chunk, one scale group per 8 chunks
    for (int i = threadIdx.x; i < kTK * cpk; i += kThreads) {
      const int k = i / cpk, c = i % cpk;
      float* dst = ks + k * ldk + c * 16;
      if (t0 + k >= n) {
        for (int e = 0; e < 16; ++e) dst[e] = 0.f;
        continue;
      }
      const uint8_t* rec = cache + int64_t(idx_row[t0 + k]) * sb;
      const uint4 v = reinterpret_cast<const uint4*>(rec)[c];
      const float s = reinterpret_cast<const float*>(rec + C)[c / 8];
      const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const float2 a = fp8x2(w[q]), b = fp8x2(w[q] >> 16);
        reinterpret_cast<float4*>(dst)[q] = make_float4(a.x * s, a.y * s, b.x * s, b.y * s);
      }
    }
  } else {
    const int wpk = C / 4;
    for (int i = threadIdx.x; i < kTK * wpk; i += kThreads) {
      const int k = i / wpk, c = i % wpk;
      float* dst = ks + k * ldk + c * 4;
      if (t0 + k >= n) {
        dst[0] = dst[1] = dst[2] = dst[3] = 0.f;
        continue;
      }
      const uint8_t* rec = cache + int64_t(idx_row[t0 + k]) * sb;
      const uint32_t w = reinterpret_cast<const uint32_t*>(rec)[c];
      const float s = reinterpret_cast<const float*>(rec + C)[c / 32];
      const float2 a = fp8x2(w), b = fp8x2(w >> 16);
      dst[0] = a.x * s, dst[1] = a.y * s, dst[2] = b.x * s, dst[3] = b.y * s;
    }
  }
  const int wpe = dr / 2;
  for (int i = threadIdx.x; i < kTK * wpe; i += kThreads) {
    const int k = i / wpe, c = i % wpe;
    float* dst = ks + k * ldk + C + c * 2;
    if (t0 + k >= n) {
      dst[0] = dst[1] = 0.f;
      continue;
    }
    const uint8_t* rec = cache + int64_t(idx_row[t0 + k]) * sb;
    const uint32_t w = reinterpret_cast<const uint32_t*>(rec + C + 4 * G)[c];
    dst[0] = bf_lo(w), dst[1] = bf_hi(w);
  }
}

__global__ void __launch_bounds__(kThreads)
mla_sparse_kernel(const float* __restrict__ q_lat, const float* __restrict__ q_pe, int H, int C, int dr,
                  const uint8_t* __restrict__ cache, bool fp8, int64_t sb, bool vec16,
                  const int32_t* __restrict__ idx, const int32_t* __restrict__ nrow, int max_n, float scale,
                  float* __restrict__ o_lat) {
  extern __shared__ float4 smem4[];
  float* smem = reinterpret_cast<float*>(smem4);
  const int D = C + dr, ld = D + 4;
  float* qs = smem;                 // [kHG][ld]
  float* ks = qs + kHG * ld;        // [kTK][ld]
  float* ps = ks + kTK * ld;        // [kHG][kTK]
  float* alpha_s = ps + kHG * kTK;  // [kHG]
  float* l_s = alpha_s + kHG;       // [kHG]

  const int64_t r = blockIdx.y;
  const int h0 = blockIdx.x * kHG;
  const int nh = min(kHG, H - h0);
  const int n = nrow[r];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int npairs = C / 2;

  if (n <= 0) {
    for (int i = threadIdx.x; i < nh * C; i += kThreads) o_lat[(r * H + h0) * C + i] = 0.f;
    return;
  }
  for (int i = threadIdx.x; i < kHG * D; i += kThreads) {
    const int h = i / D, d = i % D;
    float v = 0.f;
    if (h < nh) v = d < C ? q_lat[(r * H + h0 + h) * C + d] : q_pe[(r * H + h0 + h) * dr + (d - C)];
    qs[h * ld + d] = v;
  }
  float acc[kMaxPairs][kHG][2];
#pragma unroll
  for (int i = 0; i < kMaxPairs; ++i)
#pragma unroll
    for (int h = 0; h < kHG; ++h) acc[i][h][0] = acc[i][h][1] = 0.f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};  // heads 2*warp + j, kept by every lane
  const int32_t* idx_row = idx + r * int64_t(max_n);

  for (int t0 = 0; t0 < n; t0 += kTK) {
    __syncthreads();  // previous tile fully consumed (and qs written, on the first pass)
    load_tile(cache, fp8, sb, vec16, C, dr, idx_row, t0, n, ks, ld);
    __syncthreads();
    // Scores for heads 2w, 2w+1 against key `lane`, then the online-softmax update of those heads.
    const float* kr = ks + lane * ld;
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int h = 2 * warp + j;
      const float* qh = qs + h * ld;
      float4 a = make_float4(0.f, 0.f, 0.f, 0.f);
      for (int d = 0; d < D; d += 4) {
        const float4 q4 = *reinterpret_cast<const float4*>(qh + d);
        const float4 k4 = *reinterpret_cast<const float4*>(kr + d);
        a.x = fmaf(q4.x, k4.x, a.x);
        a.y = fmaf(q4.y, k4.y, a.y);
        a.z = fmaf(q4.z, k4.z, a.z);
        a.w = fmaf(q4.w, k4.w, a.w);
      }
      const float logit = t0 + lane < n ? ((a.x + a.y) + (a.z + a.w)) * scale : -INFINITY;
      float mx = logit;
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      const float m_new = fmaxf(m_run[j], mx);  // finite: key t0 < n is valid
      const float alpha = expf(m_run[j] - m_new);
      const float p = expf(logit - m_new);
      float sum = p;
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      l_run[j] = l_run[j] * alpha + sum;
      m_run[j] = m_new;
      ps[h * kTK + lane] = p;
      if (lane == 0) alpha_s[h] = alpha;
    }
    __syncthreads();
    // P.V over the latent part of the tile.
#pragma unroll
    for (int i = 0; i < kMaxPairs; ++i) {
      const int cp = threadIdx.x + i * kThreads;
      if (cp >= npairs) break;
#pragma unroll
      for (int h = 0; h < kHG; ++h) {
        const float al = alpha_s[h];
        acc[i][h][0] *= al;
        acc[i][h][1] *= al;
      }
      for (int k = 0; k < kTK; k += 4) {
        float2 v[4];
#pragma unroll
        for (int e = 0; e < 4; ++e) v[e] = *reinterpret_cast<const float2*>(ks + (k + e) * ld + 2 * cp);
#pragma unroll
        for (int h = 0; h < kHG; ++h) {
          const float4 p4 = *reinterpret_cast<const float4*>(ps + h * kTK + k);
          const float pe[4] = {p4.x, p4.y, p4.z, p4.w};
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            acc[i][h][0] = fmaf(pe[e], v[e].x, acc[i][h][0]);
            acc[i][h][1] = fmaf(pe[e], v[e].y, acc[i][h][1]);
          }
        }
      }
    }
  }
  if (lane == 0) l_s[2 * warp] = l_run[0], l_s[2 * warp + 1] = l_run[1];
  __syncthreads();
#pragma unroll
  for (int i = 0; i < kMaxPairs; ++i) {
    const int cp = threadIdx.x + i * kThreads;
    if (cp >= npairs) break;
#pragma unroll
    for (int h = 0; h < kHG; ++h) {
      if (h >= nh) break;
      const float inv = 1.0f / l_s[h];
      *reinterpret_cast<float2*>(o_lat + (r * H + h0 + h) * C + 2 * cp) =
          make_float2(acc[i][h][0] * inv, acc[i][h][1] * inv);
    }
  }
}

bool aligned(const void* p, unsigned a) { return (reinterpret_cast<uintptr_t>(p) & (a - 1)) == 0; }

// ---- absorption products ----
constexpr int kAbsRows = 8;  // query rows per CTA

template <bool kBf16>
__global__ void __launch_bounds__(128)
absorb_q_kernel(const float* __restrict__ q, int64_t R, int H, int dq, int dn, int C, const void* __restrict__ w,
                int64_t hs, float* __restrict__ q_lat, float* __restrict__ q_pe_out, bool bf16_output) {
  extern __shared__ float qsh[];  // [kAbsRows][dn]
  const int h = blockIdx.x;
  const int64_t r0 = int64_t(blockIdx.z) * kAbsRows;
  const int nr = R - r0 < kAbsRows ? int(R - r0) : kAbsRows;
  for (int i = threadIdx.x; i < kAbsRows * dn; i += blockDim.x) {
    const int rr = i / dn, d = i % dn;
    qsh[i] = rr < nr ? q[((r0 + rr) * H + h) * dq + d] : 0.f;
  }
  if (q_pe_out && blockIdx.y == 0)
    for (int i = threadIdx.x; i < nr * (dq - dn); i += blockDim.x) {
      const int rr = i / (dq - dn), d = i % (dq - dn);
      q_pe_out[((r0 + rr) * H + h) * (dq - dn) + d] = q[((r0 + rr) * H + h) * dq + dn + d];
    }
  __syncthreads();
  const int c = (blockIdx.y * blockDim.x + threadIdx.x) * 2;
  if (c >= C) return;
  float acc[kAbsRows][2];
#pragma unroll
  for (int rr = 0; rr < kAbsRows; ++rr) acc[rr][0] = acc[rr][1] = 0.f;
  for (int d = 0; d < dn; ++d) {
    float w0, w1;
    if constexpr (kBf16) {
      const uint32_t b = *reinterpret_cast<const uint32_t*>(static_cast<const uint16_t*>(w) +
                                                            int64_t(h) * hs + int64_t(d) * C + c);
      w0 = bf_lo(b), w1 = bf_hi(b);
    } else {
      const float2 f = *reinterpret_cast<const float2*>(static_cast<const float*>(w) + int64_t(h) * hs + int64_t(d) * C + c);
      w0 = f.x, w1 = f.y;
    }
#pragma unroll
    for (int rr = 0; rr < kAbsRows; ++rr) {
      const float s = qsh[rr * dn + d];
      acc[rr][0] = fmaf(s, w0, acc[rr][0]);
      acc[rr][1] = fmaf(s, w1, acc[rr][1]);
    }
  }
  for (int rr = 0; rr < nr; ++rr) {
    float a = acc[rr][0], b = acc[rr][1];
    if (bf16_output) a = __bfloat162float(__float2bfloat16_rn(a)), b = __bfloat162float(__float2bfloat16_rn(b));
    *reinterpret_cast<float2*>(q_lat + ((r0 + rr) * H + h) * C + c) = make_float2(a, b);
  }
}

template <bool kBf16>
__global__ void __launch_bounds__(256)
absorb_out_kernel(const float* __restrict__ o_lat, int64_t R, int H, int dv, int C, const void* __restrict__ w,
                  int64_t hs, float* __restrict__ out, bool bf16_output) {
  extern __shared__ float4 osh4[];  // [kAbsRows][C]
  float* osh = reinterpret_cast<float*>(osh4);
  const int h = blockIdx.x;
  const int64_t r0 = int64_t(blockIdx.z) * kAbsRows;
  const int nr = R - r0 < kAbsRows ? int(R - r0) : kAbsRows;
  for (int i = threadIdx.x; i < kAbsRows * C; i += blockDim.x) {
    const int rr = i / C, c = i % C;
    osh[i] = rr < nr ? o_lat[((r0 + rr) * H + h) * C + c] : 0.f;
  }
  __syncthreads();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int j = blockIdx.y * 8 + warp;
  if (j >= dv) return;
  float acc[kAbsRows];
#pragma unroll
  for (int rr = 0; rr < kAbsRows; ++rr) acc[rr] = 0.f;
  for (int c0 = lane * 8; c0 < C; c0 += 256) {
    float wv[8];
    if constexpr (kBf16) {
      const uint4 b = *reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(w) + int64_t(h) * hs + int64_t(j) * C + c0);
      wv[0] = bf_lo(b.x), wv[1] = bf_hi(b.x), wv[2] = bf_lo(b.y), wv[3] = bf_hi(b.y);
      wv[4] = bf_lo(b.z), wv[5] = bf_hi(b.z), wv[6] = bf_lo(b.w), wv[7] = bf_hi(b.w);
    } else {
      const float4* f = reinterpret_cast<const float4*>(static_cast<const float*>(w) + int64_t(h) * hs + int64_t(j) * C + c0);
      const float4 a = f[0], b = f[1];
      wv[0] = a.x, wv[1] = a.y, wv[2] = a.z, wv[3] = a.w, wv[4] = b.x, wv[5] = b.y, wv[6] = b.z, wv[7] = b.w;
    }
#pragma unroll
    for (int rr = 0; rr < kAbsRows; ++rr) {
      const float4 o0 = *reinterpret_cast<const float4*>(osh + rr * C + c0);
      const float4 o1 = *reinterpret_cast<const float4*>(osh + rr * C + c0 + 4);
      float a = acc[rr];
      a = fmaf(o0.x, wv[0], a), a = fmaf(o0.y, wv[1], a), a = fmaf(o0.z, wv[2], a), a = fmaf(o0.w, wv[3], a);
      a = fmaf(o1.x, wv[4], a), a = fmaf(o1.y, wv[5], a), a = fmaf(o1.z, wv[6], a), a = fmaf(o1.w, wv[7], a);
      acc[rr] = a;
    }
  }
#pragma unroll
  for (int rr = 0; rr < kAbsRows; ++rr)
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) acc[rr] += __shfl_xor_sync(0xffffffffu, acc[rr], o);
  if (lane == 0)
    for (int rr = 0; rr < nr; ++rr) {
      float a = acc[rr];
      if (bf16_output) a = __bfloat162float(__float2bfloat16_rn(a));
      out[(r0 + rr) * int64_t(H) * dv + int64_t(h) * dv + j] = a;
    }
}

}  // namespace

namespace {

// Argument checks shared by both paths; returns the slot bytes.
int64_t validate_attention(const float* q_lat, const float* q_pe, int64_t R, int H, int C, int dr, const uint8_t* cache,
                           KvCacheDtype dt, const int32_t* idx, const int32_t* n, int max_n, float* o_lat) {
  const int64_t sb = mla_slot_bytes(dt, C, dr);  // validates C, dr
  if (C % 128 != 0 || C + dr > 1024 || dr < 8)
    throw std::invalid_argument("mla_sparse_attention: need C % 128 == 0, dr >= 8 and C + dr <= 1024 (C=" +
                                std::to_string(C) + ", dr=" + std::to_string(dr) + ")");
  if (R < 0 || R > 65535 || H < 1 || max_n < 1)
    throw std::invalid_argument("mla_sparse_attention: bad R=" + std::to_string(R) + ", H=" + std::to_string(H) +
                                " or max_n=" + std::to_string(max_n) + " (R <= 65535 per call)");
  if (!q_lat || !q_pe || !cache || !idx || !n || !o_lat)
    throw std::invalid_argument("mla_sparse_attention: null q_lat, q_pe, cache, idx, n or o_lat pointer");
  if (!aligned(q_lat, 16) || !aligned(q_pe, 16) || !aligned(cache, 16) || !aligned(o_lat, 16))
    throw std::invalid_argument("mla_sparse_attention: q_lat, q_pe, cache and o_lat must be 16-byte aligned");
  return sb;
}

}  // namespace

void mla_sparse_attention_fp32(const float* q_lat, const float* q_pe, int64_t R, int H, int C, int dr,
                               const uint8_t* cache, KvCacheDtype dt, const int32_t* idx, const int32_t* n, int max_n,
                               float scale, float* o_lat, cudaStream_t stream) {
  const int64_t sb = validate_attention(q_lat, q_pe, R, H, C, dr, cache, dt, idx, n, max_n, o_lat);
  if (R == 0) return;
  const int ld = C + dr + 4;
  const size_t smem = sizeof(float) * (size_t(kHG + kTK) * ld + kHG * kTK + 2 * kHG);
  // Raised only when a larger size is first needed, so a CUDA-graph capture after one eager call
  // (what the runner and the drivers do) makes no attribute call.
  static std::atomic<int> smem_set{0};
  if (int(smem) > smem_set.load()) {
    DS_CUDA_CHECK(cudaFuncSetAttribute(mla_sparse_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    smem_set.store(int(smem));
  }
  const dim3 grid(unsigned((H + kHG - 1) / kHG), unsigned(R));
  mla_sparse_kernel<<<grid, kThreads, smem, stream>>>(q_lat, q_pe, H, C, dr, cache, dt == KvCacheDtype::FP8, sb,
                                                      sb % 16 == 0, idx, n, max_n, scale, o_lat);
  DS_CUDA_CHECK_LAUNCH("mla_sparse_kernel");
}

namespace {
std::atomic<bool> g_fp32_only{false};
}  // namespace

void set_mla_attention_fp32_only(bool on) { g_fp32_only.store(on); }

void mla_sparse_attention(const float* q_lat, const float* q_pe, int64_t R, int H, int C, int dr,
                          const uint8_t* cache, KvCacheDtype dt, const int32_t* idx, const int32_t* n, int max_n,
                          float scale, float* o_lat, cudaStream_t stream) {
  if (g_fp32_only.load() || !detail::mla_sparse_tc_supported(H, C, dr)) {
    mla_sparse_attention_fp32(q_lat, q_pe, R, H, C, dr, cache, dt, idx, n, max_n, scale, o_lat, stream);
    return;
  }
  validate_attention(q_lat, q_pe, R, H, C, dr, cache, dt, idx, n, max_n, o_lat);
  if (R == 0) return;
  detail::mla_sparse_attention_tc(q_lat, q_pe, R, H, cache, dt, idx, n, max_n, scale, o_lat, stream);
}

void mla_absorb_q(const float* q, int64_t R, int dq, const AbsorbWeightDev& w_uk, float* q_lat, float* q_pe_out,
                  bool bf16_output, cudaStream_t stream) {
  const int H = w_uk.H, dn = w_uk.rows, C = w_uk.C;
  if (H < 1 || dn < 1 || C < 2 || C % 2 != 0 || dq <= dn || R < 0 || R > 65535 * int64_t(kAbsRows))
    throw std::invalid_argument("mla_absorb_q: bad shape (H=" + std::to_string(H) + " dn=" + std::to_string(dn) +
                                " C=" + std::to_string(C) + " dq=" + std::to_string(dq) + " R=" + std::to_string(R) +
                                "; need dq > dn, C even)");
  if (!q || !w_uk.data || !q_lat) throw std::invalid_argument("mla_absorb_q: null q, w_uk or q_lat pointer");
  if (!aligned(q_lat, 8) || !aligned(w_uk.data, 8)) throw std::invalid_argument("mla_absorb_q: misaligned q_lat or w_uk");
  const int64_t hs = w_uk.head_stride ? w_uk.head_stride : int64_t(dn) * C;
  if (hs < int64_t(dn) * C || hs % 2 != 0)
    throw std::invalid_argument("mla_absorb_q: w_uk.head_stride must be >= rows * C and even");
  if (R == 0) return;
  const dim3 grid(unsigned(H), unsigned((C / 2 + 127) / 128), unsigned((R + kAbsRows - 1) / kAbsRows));
  const size_t smem = sizeof(float) * kAbsRows * dn;
  if (smem > 48 * 1024) throw std::invalid_argument("mla_absorb_q: dn too large");
  if (w_uk.bf16)
    absorb_q_kernel<true><<<grid, 128, smem, stream>>>(q, R, H, dq, dn, C, w_uk.data, hs, q_lat, q_pe_out, bf16_output);
  else
    absorb_q_kernel<false><<<grid, 128, smem, stream>>>(q, R, H, dq, dn, C, w_uk.data, hs, q_lat, q_pe_out, bf16_output);
  DS_CUDA_CHECK_LAUNCH("absorb_q_kernel");
}

void mla_absorb_out(const float* o_lat, int64_t R, const AbsorbWeightDev& w_uv, float* out, bool bf16_output,
                    cudaStream_t stream) {
  const int H = w_uv.H, dv = w_uv.rows, C = w_uv.C;
  if (H < 1 || dv < 1 || C < 8 || C % 8 != 0 || C > 1024 || R < 0 || R > 65535 * int64_t(kAbsRows))
    throw std::invalid_argument("mla_absorb_out: bad shape (H=" + std::to_string(H) + " dv=" + std::to_string(dv) +
                                " C=" + std::to_string(C) + " R=" + std::to_string(R) + "; need C % 8 == 0, C <= 1024)");
  if (!o_lat || !w_uv.data || !out) throw std::invalid_argument("mla_absorb_out: null o_lat, w_uv or out pointer");
  if (!aligned(o_lat, 16) || !aligned(w_uv.data, 16))
    throw std::invalid_argument("mla_absorb_out: o_lat and w_uv must be 16-byte aligned");
  const int64_t hs = w_uv.head_stride ? w_uv.head_stride : int64_t(dv) * C;
  if (hs < int64_t(dv) * C || hs % 8 != 0)
    throw std::invalid_argument("mla_absorb_out: w_uv.head_stride must be >= rows * C and a multiple of 8");
  if (R == 0) return;
  const dim3 grid(unsigned(H), unsigned((dv + 7) / 8), unsigned((R + kAbsRows - 1) / kAbsRows));
  const size_t smem = sizeof(float) * kAbsRows * C;
  if (w_uv.bf16)
    absorb_out_kernel<true><<<grid, 256, smem, stream>>>(o_lat, R, H, dv, C, w_uv.data, hs, out, bf16_output);
  else
    absorb_out_kernel<false><<<grid, 256, smem, stream>>>(o_lat, R, H, dv, C, w_uv.data, hs, out, bf16_output);
  DS_CUDA_CHECK_LAUNCH("absorb_out_kernel");
}

}  // namespace ds::cuda
