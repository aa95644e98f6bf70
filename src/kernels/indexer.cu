// Lightning-indexer logits and causal top-k (see indexer.h; spec/model.md 5.2 step 10, 5.3).
//
// index_logits_kernel (FP32 CUDA cores; any Hi <= 128, Di % 16 == 0, or IndexerArgs::fp32_logits; the
// Hi 64 / Di 128 shape runs index_logits_tc_kernel, FP8 mma.sync, described at that kernel): one CTA
// of 256 threads per (row, 64 consecutive positions). The row's queries [Hi, Di] and the 64 keys
// (gathered through the page table, 16-byte loads) are decoded from E4M3 to F32 once into shared
// memory (rows padded by 4 floats). The scores are BIT-IDENTICAL to ds::cpu::index_scores: each
// (key, head) dot uses dot_fixed's 16-lane order and tree, ReLU(dot) * w is rounded on its own
// (__fmul_rn / __fadd_rn: no FMA contraction, as the x86-64 twin), the head terms are summed in
// ascending head order from +0 and the sum is multiplied by the key scale. Equal scores make
// equal selections, so near-tie boundary swaps against the CPU cannot happen on this path (they
// caused the tiny-a whole-model differences of issue 8, docs/cuda.md "Model runner").
//
// topk_kernel: one CTA of 1024 threads per row. Scores map to order-preserving 32-bit keys (-0 ->
// +0); four 8-bit radix passes (shared-memory histograms of the keys that still match the prefix)
// find the k-th largest key T and how many keys equal to T are taken (the lowest positions). A
// last ordered pass over positions keeps key > T, and key == T up to that count, and writes their
// slots in ascending position order through two block-wide prefix scans.
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <atomic>
#include <stdexcept>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/indexer.h"

namespace ds::cuda {
namespace {

constexpr int kKeys = 64;      // positions per logits CTA
constexpr int kMaxHpt = 32;    // heads per thread (Hi <= 128)
constexpr int kTopThreads = 1024;

__device__ __forceinline__ float4 fp8x4(uint32_t w) {
  __half2_raw a = __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(w & 0xffffu), __NV_E4M3);
  __half2_raw b = __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(w >> 16), __NV_E4M3);
  const float2 fa = __half22float2(*reinterpret_cast<__half2*>(&a));
  const float2 fb = __half22float2(*reinterpret_cast<__half2*>(&b));
  return make_float4(fa.x, fa.y, fb.x, fb.y);
}

__device__ __forceinline__ int64_t slot_of(const int32_t* page_row, int page_size, int64_t p) {
  return int64_t(page_row[p / page_size]) * page_size + p % page_size;
}

__global__ void __launch_bounds__(256)
index_logits_kernel(IndexerArgs a, int topk, int64_t max_keys, float* __restrict__ scores) {
  const int64_t r = blockIdx.y;
  const int n = a.n_keys[r];
  const int64_t p0 = int64_t(blockIdx.x) * kKeys;
  if (n <= topk || p0 >= n) return;
  extern __shared__ float4 sm4[];
  float* sm = reinterpret_cast<float*>(sm4);
  const int Di = a.Di, Hi = a.Hi, ld = Di + 4;
  float* qs = sm;               // [Hi][ld]
  float* ks = qs + Hi * ld;     // [kKeys][ld]
  float* ksc = ks + kKeys * ld; // [kKeys]
  float* ws = ksc + kKeys;      // [Hi]
  float* terms = ws + Hi;       // [kKeys][Hi + 1]: max(dot, 0) * w per (key, head)
  const int cpr = Di / 16;      // 16-byte chunks per vector
  const uint4* q = reinterpret_cast<const uint4*>(a.q + r * int64_t(Hi) * Di);
  for (int i = threadIdx.x; i < Hi * cpr; i += blockDim.x) {
    const int h = i / cpr, c = i % cpr;
    const uint4 v = q[i];
    float4* d = reinterpret_cast<float4*>(qs + h * ld + c * 16);
    d[0] = fp8x4(v.x), d[1] = fp8x4(v.y), d[2] = fp8x4(v.z), d[3] = fp8x4(v.w);
  }
  const int32_t* page_row = a.pages + r * int64_t(a.max_pages);
  for (int i = threadIdx.x; i < kKeys * cpr; i += blockDim.x) {
    const int k = i / cpr, c = i % cpr;
    float4* d = reinterpret_cast<float4*>(ks + k * ld + c * 16);
    if (p0 + k < n) {
      const int64_t slot = slot_of(page_row, a.page_size, p0 + k);
      const uint4 v = reinterpret_cast<const uint4*>(a.kcache + slot * Di)[c];
      d[0] = fp8x4(v.x), d[1] = fp8x4(v.y), d[2] = fp8x4(v.z), d[3] = fp8x4(v.w);
      if (c == 0) ksc[k] = a.kscale[slot];
    } else {
      d[0] = d[1] = d[2] = d[3] = make_float4(0.f, 0.f, 0.f, 0.f);
      if (c == 0) ksc[k] = 0.f;
    }
  }
  for (int i = threadIdx.x; i < Hi; i += blockDim.x) ws[i] = a.w[r * Hi + i];
  __syncthreads();
  // Phase 1: one (key, head) pair per thread and step: the 128-wide dot in dot_fixed's order (16
  // lanes, lane j sums d = j mod 16 ascending; E4M3 x E4M3 products are exact, so FMA == add of the
  // product), then its tree; t = max(dot, 0) * w rounded on its own (the twin does not contract).
  for (int i = threadIdx.x; i < kKeys * Hi; i += blockDim.x) {
    const int key = i / Hi, h = i % Hi;
    const float* qh = qs + h * ld;
    const float* kr = ks + key * ld;
    float l[16];
#pragma unroll
    for (int j = 0; j < 16; ++j) l[j] = 0.f;
    for (int d = 0; d < Di; d += 16) {
#pragma unroll
      for (int j = 0; j < 16; j += 4) {
        const float4 q4 = *reinterpret_cast<const float4*>(qh + d + j);
        const float4 k4 = *reinterpret_cast<const float4*>(kr + d + j);
        l[j] = __fmaf_rn(q4.x, k4.x, l[j]), l[j + 1] = __fmaf_rn(q4.y, k4.y, l[j + 1]);
        l[j + 2] = __fmaf_rn(q4.z, k4.z, l[j + 2]), l[j + 3] = __fmaf_rn(q4.w, k4.w, l[j + 3]);
      }
    }
#pragma unroll
    for (int j = 0; j < 8; ++j) l[j] = __fadd_rn(l[j], l[j + 8]);
#pragma unroll
    for (int j = 0; j < 4; ++j) l[j] = __fadd_rn(l[j], l[j + 4]);
    l[0] = __fadd_rn(l[0], l[2]);
    l[1] = __fadd_rn(l[1], l[3]);
    const float v = __fadd_rn(__fadd_rn(l[0], l[1]), 0.f);  // + the twin's (empty) tail
    terms[key * (Hi + 1) + h] = __fmul_rn(v < 0.f ? 0.f : v, ws[h]);  // std::max(v, 0.f) keeps -0
  }
  __syncthreads();
  // Phase 2: the head sum in ascending head order from +0, then the key scale (index_scores).
  if (threadIdx.x < kKeys && p0 + threadIdx.x < n) {
    const int key = threadIdx.x;
    float acc = 0.f;
    for (int h = 0; h < Hi; ++h) acc = __fadd_rn(acc, terms[key * (Hi + 1) + h]);
    scores[r * max_keys + p0 + key] = __fmul_rn(acc, ksc[key]);
  }
}

// Tensor-core logits for Hi = 64, Di = 128 (DeepSeek-V3.2): one CTA of 4 warps per (row, 256
// positions), warp w owns heads 16w..16w+15. The warp's query block stays in registers as
// m16n8k32 E4M3 A fragments (4 k-steps x 4 registers, loaded once); keys come in tiles of 64
// through the page table into shared memory (rows padded to 144 B: conflict-free ldmatrix) and
// mma.sync m16n8k32 e4m3 -> FP32 gives the 16 x 8 dots of each key block (products exact). Each
// thread then forms ReLU(dot) * w for its two heads, a fixed butterfly over the 8 head lanes sums
// the warp's 16 heads, and the 4 warps' partial sums are added in warp order in shared memory.
constexpr int kTcKeys = 64, kTcChunk = 256, kTcLd = 144;

__device__ __forceinline__ void ldsm_x4(uint32_t addr, uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(addr));
}

__device__ __forceinline__ void mma_e4m3(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__global__ void __launch_bounds__(128)
index_logits_tc_kernel(IndexerArgs a, int topk, int64_t max_keys, float* __restrict__ scores) {
  const int64_t r = blockIdx.y;
  const int n = a.n_keys[r];
  const int64_t c0 = int64_t(blockIdx.x) * kTcChunk;
  if (n <= topk || c0 >= n) return;
  __shared__ __align__(16) uint8_t ks[kTcKeys * kTcLd];
  __shared__ float part[4][kTcKeys];
  __shared__ float ksc[kTcKeys];
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
  // A fragments: rows = heads 16 warp + g (+8), k = dims.
  const uint8_t* q = a.q + (r * 64 + warp * 16) * 128;
  uint32_t af[4][4];
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    af[kk][0] = *reinterpret_cast<const uint32_t*>(q + g * 128 + kk * 32 + 4 * t);
    af[kk][1] = *reinterpret_cast<const uint32_t*>(q + (g + 8) * 128 + kk * 32 + 4 * t);
    af[kk][2] = *reinterpret_cast<const uint32_t*>(q + g * 128 + kk * 32 + 16 + 4 * t);
    af[kk][3] = *reinterpret_cast<const uint32_t*>(q + (g + 8) * 128 + kk * 32 + 16 + 4 * t);
  }
  const float w0 = a.w[r * 64 + warp * 16 + g], w1 = a.w[r * 64 + warp * 16 + g + 8];
  const int32_t* page_row = a.pages + r * int64_t(a.max_pages);
  const uint32_t ks_base = static_cast<uint32_t>(__cvta_generic_to_shared(ks));
  for (int64_t p0 = c0; p0 < c0 + kTcChunk && p0 < n; p0 += kTcKeys) {
    __syncthreads();  // previous tile's readers are done
    for (int i = tid; i < kTcKeys * 8; i += 128) {
      const int k = i >> 3, c = i & 7;
      uint4 v = make_uint4(0u, 0u, 0u, 0u);
      if (p0 + k < n) {
        const int64_t slot = slot_of(page_row, a.page_size, p0 + k);
        v = reinterpret_cast<const uint4*>(a.kcache + slot * 128)[c];
        if (c == 0) ksc[k] = a.kscale[slot];
      } else if (c == 0) {
        ksc[k] = 0.f;
      }
      *reinterpret_cast<uint4*>(ks + k * kTcLd + c * 16) = v;
    }
    __syncthreads();
#pragma unroll
    for (int jp = 0; jp < kTcKeys / 16; ++jp) {  // key blocks 2jp, 2jp + 1 (8 keys each)
      float d0[4] = {0.f, 0.f, 0.f, 0.f}, d1[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
        uint32_t b0, b1, b2, b3;
        const int key = jp * 16 + (lane & 7) + (lane >> 4) * 8, col = kk * 32 + ((lane >> 3) & 1) * 16;
        ldsm_x4(ks_base + uint32_t(key * kTcLd + col), b0, b1, b2, b3);
        mma_e4m3(d0, af[kk], b0, b1);
        mma_e4m3(d1, af[kk], b2, b3);
      }
      // keys jp*16 + 2t, +1 (d0) and jp*16 + 8 + 2t, +1 (d1); heads g (c0, c1) and g + 8 (c2, c3).
      float v[4] = {fmaf(fmaxf(d0[0], 0.f), w0, fmaxf(d0[2], 0.f) * w1), fmaf(fmaxf(d0[1], 0.f), w0, fmaxf(d0[3], 0.f) * w1),
                    fmaf(fmaxf(d1[0], 0.f), w0, fmaxf(d1[2], 0.f) * w1), fmaf(fmaxf(d1[1], 0.f), w0, fmaxf(d1[3], 0.f) * w1)};
#pragma unroll
      for (int e = 0; e < 4; ++e)
#pragma unroll
        for (int o = 4; o < 32; o <<= 1) v[e] += __shfl_xor_sync(0xffffffffu, v[e], o);
      if (g == 0) {
        part[warp][jp * 16 + 2 * t] = v[0];
        part[warp][jp * 16 + 2 * t + 1] = v[1];
        part[warp][jp * 16 + 8 + 2 * t] = v[2];
        part[warp][jp * 16 + 8 + 2 * t + 1] = v[3];
      }
    }
    __syncthreads();
    if (tid < kTcKeys && p0 + tid < n)
      scores[r * max_keys + p0 + tid] = (((part[0][tid] + part[1][tid]) + part[2][tid]) + part[3][tid]) * ksc[tid];
  }
}

// Order-preserving key of a score: -0 and +0 map to the same key (0x80000000) by their bits, so no
// compiler treatment of signed zeros can split the tie; NaN sorts above +inf.
__device__ __forceinline__ uint32_t order_key(float f) {
  uint32_t u = __float_as_uint(f);
  if ((u << 1) == 0u) u = 0u;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Exclusive prefix sum of v over the block (kTopThreads threads); *total gets the block sum.
__device__ int block_exclusive_scan(int v, int* warp_sums, int* total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int x = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const int y = __shfl_up_sync(0xffffffffu, x, o);
    if (lane >= o) x += y;
  }
  if (lane == 31) warp_sums[warp] = x;
  __syncthreads();
  if (warp == 0) {
    int s = warp_sums[lane];
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int y = __shfl_up_sync(0xffffffffu, s, o);
      if (lane >= o) s += y;
    }
    warp_sums[lane] = s;  // inclusive
  }
  __syncthreads();
  const int before = (warp > 0 ? warp_sums[warp - 1] : 0) + x - v;
  *total = warp_sums[31];
  __syncthreads();  // warp_sums reusable
  return before;
}

__global__ void __launch_bounds__(kTopThreads)
topk_kernel(IndexerArgs a, int topk, int64_t max_keys, const float* __restrict__ scores, int32_t* __restrict__ idx) {
  const int64_t r = blockIdx.x;
  const int n = a.n_keys[r];
  const int32_t* page_row = a.pages + r * int64_t(a.max_pages);
  int32_t* out = idx + r * int64_t(topk);
  if (n <= topk) {
    for (int i = threadIdx.x; i < topk; i += blockDim.x)
      out[i] = i < n ? int32_t(slot_of(page_row, a.page_size, i)) : -1;
    return;
  }
  const float* sc = scores + r * max_keys;
  __shared__ int hist[256];
  __shared__ int warp_sums[32];
  __shared__ uint32_t sh_prefix;
  __shared__ int sh_need;
  uint32_t prefix = 0, mask = 0;
  int need = topk;  // how many of the keys matching `prefix` are still to be taken
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < 256; i += blockDim.x) hist[i] = 0;
    __syncthreads();
    for (int p = threadIdx.x; p < n; p += blockDim.x) {
      const uint32_t u = order_key(sc[p]);
      if ((u & mask) == prefix) atomicAdd(&hist[(u >> shift) & 0xffu], 1);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      int above = 0, b = 255;
      for (; b > 0; --b) {
        if (above + hist[b] >= need) break;
        above += hist[b];
      }
      sh_prefix = prefix | (uint32_t(b) << shift);
      sh_need = need - above;
    }
    __syncthreads();
    prefix = sh_prefix;
    need = sh_need;
    mask |= 0xffu << shift;
  }
  // prefix = T (the k-th largest key); take every key > T and the first `need` keys == T.
  int eq_seen = 0, written = 0;
  for (int base = 0; base < n && written < topk; base += blockDim.x) {
    const int p = base + threadIdx.x;
    uint32_t u = 0;
    if (p < n) u = order_key(sc[p]);
    const bool gt = p < n && u > prefix, eq = p < n && u == prefix;
    int eq_total, sel_total;
    const int eq_rank = eq_seen + block_exclusive_scan(eq ? 1 : 0, warp_sums, &eq_total);
    const bool sel = gt || (eq && eq_rank < need);
    const int pos = written + block_exclusive_scan(sel ? 1 : 0, warp_sums, &sel_total);
    if (sel) out[pos] = int32_t(slot_of(page_row, a.page_size, p));
    eq_seen += eq_total;
    written += sel_total;
  }
}

std::atomic<std::vector<IndexerCapture>*> g_capture{nullptr};

// The test hook of indexer.h: synchronous downloads of this call's outputs.
void capture_call(const IndexerArgs& a, int topk, int64_t max_keys, const float* scores, const int32_t* idx,
                  cudaStream_t stream) {
  std::vector<IndexerCapture>* sink = g_capture.load();
  if (!sink) return;
  DS_CUDA_CHECK(cudaStreamSynchronize(stream));
  IndexerCapture c;
  c.R = a.R, c.max_keys = max_keys, c.topk = topk;
  c.n_keys.resize(size_t(a.R));
  c.idx.resize(size_t(a.R) * size_t(topk));
  c.scores.resize(size_t(a.R) * size_t(max_keys));
  DS_CUDA_CHECK(cudaMemcpy(c.n_keys.data(), a.n_keys, c.n_keys.size() * 4, cudaMemcpyDeviceToHost));
  DS_CUDA_CHECK(cudaMemcpy(c.idx.data(), idx, c.idx.size() * 4, cudaMemcpyDeviceToHost));
  DS_CUDA_CHECK(cudaMemcpy(c.scores.data(), scores, c.scores.size() * 4, cudaMemcpyDeviceToHost));
  sink->push_back(std::move(c));
}

}  // namespace

void set_indexer_capture(std::vector<IndexerCapture>* sink) { g_capture.store(sink); }

size_t indexer_workspace_bytes(int64_t R, int64_t max_keys) {
  if (R < 0 || max_keys < 1) throw std::invalid_argument("indexer_workspace_bytes: bad R or max_keys");
  return (size_t(R) * size_t(max_keys) * sizeof(float) + 255) / 256 * 256;
}

void indexer_topk(const IndexerArgs& a, int topk, int64_t max_keys, void* workspace, size_t workspace_bytes,
                  int32_t* idx, cudaStream_t stream) {
  if (a.Hi < 1 || a.Hi > 4 * kMaxHpt || a.Di < 16 || a.Di % 16 != 0)
    throw std::invalid_argument("indexer_topk: need 1 <= Hi <= 128 and Di a positive multiple of 16 (Hi=" +
                                std::to_string(a.Hi) + ", Di=" + std::to_string(a.Di) + ")");
  if (a.page_size < 1 || a.max_pages < 1 || topk < 1 || max_keys < 1 || a.R < 0 || a.R > 65535)
    throw std::invalid_argument("indexer_topk: bad page_size, max_pages, topk, max_keys or R (R <= 65535 per call)");
  if (!a.q || !a.w || !a.kcache || !a.kscale || !a.pages || !a.n_keys || !idx || !workspace)
    throw std::invalid_argument("indexer_topk: null q, w, kcache, kscale, pages, n_keys, idx or workspace pointer");
  if ((reinterpret_cast<uintptr_t>(a.q) | reinterpret_cast<uintptr_t>(a.kcache)) & 15u)
    throw std::invalid_argument("indexer_topk: q and kcache must be 16-byte aligned");
  if (a.R == 0) return;
  if (workspace_bytes < indexer_workspace_bytes(a.R, max_keys))
    throw std::invalid_argument("indexer_topk: workspace of " + std::to_string(workspace_bytes) + " bytes < " +
                                std::to_string(indexer_workspace_bytes(a.R, max_keys)));
  float* scores = static_cast<float*>(workspace);
  if (a.Hi == 64 && a.Di == 128 && !a.fp32_logits) {
    const int64_t chunks = (max_keys + kTcChunk - 1) / kTcChunk;
    if (chunks > 0x7fffffff) throw std::invalid_argument("indexer_topk: max_keys too large");
    index_logits_tc_kernel<<<dim3(unsigned(chunks), unsigned(a.R)), 128, 0, stream>>>(a, topk, max_keys, scores);
    DS_CUDA_CHECK_LAUNCH("index_logits_tc_kernel");
    topk_kernel<<<unsigned(a.R), kTopThreads, 0, stream>>>(a, topk, max_keys, scores, idx);
    DS_CUDA_CHECK_LAUNCH("topk_kernel");
    capture_call(a, topk, max_keys, scores, idx, stream);
    return;
  }
  const int ld = a.Di + 4;
  const size_t smem = sizeof(float) * (size_t(a.Hi + kKeys) * ld + kKeys + a.Hi + size_t(kKeys) * (a.Hi + 1));
  // Raised only when a larger size is first needed, so a CUDA-graph capture after one eager call
  // (what the runner and the drivers do) makes no attribute call.
  static std::atomic<int> smem_set{0};
  if (int(smem) > smem_set.load()) {
    DS_CUDA_CHECK(cudaFuncSetAttribute(index_logits_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    smem_set.store(int(smem));
  }
  const int64_t chunks = (max_keys + kKeys - 1) / kKeys;
  if (chunks > 0x7fffffff) throw std::invalid_argument("indexer_topk: max_keys too large");
  index_logits_kernel<<<dim3(unsigned(chunks), unsigned(a.R)), 256, smem, stream>>>(a, topk, max_keys, scores);
  DS_CUDA_CHECK_LAUNCH("index_logits_kernel");
  topk_kernel<<<unsigned(a.R), kTopThreads, 0, stream>>>(a, topk, max_keys, scores, idx);
  DS_CUDA_CHECK_LAUNCH("topk_kernel");
  capture_call(a, topk, max_keys, scores, idx, stream);
}

void indexer_topk_scored(const IndexerArgs& a, int topk, int64_t max_keys, const float* scores, int32_t* idx,
                         cudaStream_t stream) {
  if (a.page_size < 1 || a.max_pages < 1 || topk < 1 || max_keys < 1 || a.R < 0 || a.R > 0x7fffffff)
    throw std::invalid_argument("indexer_topk_scored: bad page_size, max_pages, topk, max_keys or R");
  if (!a.pages || !a.n_keys || !scores || !idx)
    throw std::invalid_argument("indexer_topk_scored: null pages, n_keys, scores or idx pointer");
  if (a.R == 0) return;
  topk_kernel<<<unsigned(a.R), kTopThreads, 0, stream>>>(a, topk, max_keys, scores, idx);
  DS_CUDA_CHECK_LAUNCH("topk_kernel");
  capture_call(a, topk, max_keys, scores, idx, stream);
}

}  // namespace ds::cuda
