// Exact-mode kernels of the CUDA runner (see exact_ops.h). Plain CUDA-core FP32 code: one thread
// per output element or per key, block reductions in a fixed order (deterministic), no tensor
// cores, no reduced precision anywhere.
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/exact_ops.h"

namespace ds::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxSmemFloats = 12288;  // 48 KiB: the default dynamic shared memory limit

__device__ __forceinline__ float bf16_bits_to_f32(uint16_t b) { return __uint_as_float(uint32_t(b) << 16); }

// Sum of v over the block (blockDim.x == kThreads), fixed order: warp butterflies, then warp 0
// adds the 8 warp sums in warp order. Every thread gets the result.
__device__ float block_sum(float v, float* red) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();  // red reusable
  if (lane == 0) red[warp] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0.f;
    for (int i = 0; i < kThreads / 32; ++i) s += red[i];
    red[kThreads / 32] = s;
  }
  __syncthreads();
  return red[kThreads / 32];
}

__device__ float block_max(float v, float* red) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = red[0];
    for (int i = 1; i < kThreads / 32; ++i) s = fmaxf(s, red[i]);
    red[kThreads / 32] = s;
  }
  __syncthreads();
  return red[kThreads / 32];
}

__global__ void embed_f32_kernel(const void* table, bool bf16, const int32_t* ids, int64_t R, int64_t D, float* out) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= R * D) return;
  const int64_t r = t / D, d = t % D;
  const int64_t src = int64_t(ids[r]) * D + d;
  out[t] = bf16 ? bf16_bits_to_f32(static_cast<const uint16_t*>(table)[src]) : static_cast<const float*>(table)[src];
}

__global__ void add_rmsnorm_f32_kernel(const float* f, float* r, const uint16_t* w, int64_t n, float eps, float* y) {
  __shared__ float red[kThreads / 32 + 1];
  const int64_t row = blockIdx.x;
  float* rr = r + row * n;
  const float* fr = f ? f + row * n : nullptr;
  float ss = 0.f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float s = fr ? fr[i] + rr[i] : rr[i];
    rr[i] = s;  // each element is read and written by the same thread
    ss += s * s;
  }
  ss = block_sum(ss, red);
  const float inv = 1.0f / sqrtf(ss / float(n) + eps);
  float* yr = y + row * n;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = bf16_bits_to_f32(w[i]) * (rr[i] * inv);
}

__global__ void scatter_kernel(const float* src, int64_t lds, int64_t n, int64_t W, const int32_t* dst_rows, float* dst) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= n * W) return;
  const int64_t i = t / W, c = t % W;
  const int32_t d = dst_rows[i];
  if (d < 0) return;
  dst[int64_t(d) * W + c] = src[i * lds + c];
}

__global__ void gather_kernel(const float* src, int64_t lds, const int32_t* src_rows, int64_t n, int64_t W, float* dst) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= n * W) return;
  const int64_t i = t / W, c = t % W;
  dst[t] = src[int64_t(src_rows[i]) * lds + c];
}

// Grid (R, key chunks of kThreads): one thread per key position; the row's queries and head
// weights in shared memory.
__global__ void index_scores_f32_kernel(const float* q, const float* w, int Hi, int Di, const float* kcache,
                                        const int32_t* pages, int max_pages, int page_size, const int32_t* n_keys,
                                        int topk, int64_t max_keys, float* scores) {
  extern __shared__ float sm[];
  const int64_t r = blockIdx.x;
  const int n = n_keys[r];
  if (n <= topk) return;  // whole block: the row takes every causal key
  float* qs = sm;
  float* ws = sm + Hi * Di;
  for (int i = threadIdx.x; i < Hi * Di; i += blockDim.x) qs[i] = q[r * Hi * Di + i];
  for (int i = threadIdx.x; i < Hi; i += blockDim.x) ws[i] = w[r * Hi + i];
  __syncthreads();
  const int64_t p = int64_t(blockIdx.y) * blockDim.x + threadIdx.x;
  if (p >= n) return;
  const int32_t* prow = pages + r * int64_t(max_pages);
  const int64_t j = int64_t(prow[p / page_size]) * page_size + p % page_size;
  const float* k = kcache + j * Di;
  float acc = 0.f;
  for (int h = 0; h < Hi; ++h) {
    const float* qh = qs + h * Di;
    float dot = 0.f;
    for (int d = 0; d < Di; ++d) dot += qh[d] * k[d];
    acc += fmaxf(dot, 0.f) * ws[h];
  }
  scores[r * max_keys + p] = acc;
}

// One block per (row, head): scores by warps (one key per warp at a time, lanes over the C + dr
// dims, butterfly sum), two-pass softmax over the block, then P . latent with one thread per
// latent column, keys in ascending s.
__global__ void mla_attention_f32_kernel(const float* q_lat, const float* q_pe, int H, int C, int dr,
                                         const float* cache, const int32_t* idx, const int32_t* n_arr, int max_n,
                                         float scale, float* o_lat) {
  extern __shared__ float sm[];
  __shared__ float red[kThreads / 32 + 1];
  const int64_t rh = blockIdx.x;
  const int64_t r = rh / H;
  const int W = C + dr;
  float* qs = sm;       // [C + dr]
  float* p = sm + W;    // [max_n]
  float* o = o_lat + rh * C;
  const int n = n_arr[r];
  if (n <= 0) {
    for (int c = threadIdx.x; c < C; c += blockDim.x) o[c] = 0.f;
    return;
  }
  for (int i = threadIdx.x; i < C; i += blockDim.x) qs[i] = q_lat[rh * C + i];
  for (int i = threadIdx.x; i < dr; i += blockDim.x) qs[C + i] = q_pe[rh * dr + i];
  __syncthreads();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int32_t* ir = idx + r * int64_t(max_n);
  for (int s = warp; s < n; s += kThreads / 32) {
    const float* rec = cache + int64_t(ir[s]) * W;
    float a = 0.f, b = 0.f;
    for (int c = lane; c < C; c += 32) a += qs[c] * rec[c];
    for (int c = lane; c < dr; c += 32) b += qs[C + c] * rec[C + c];
#pragma unroll
    for (int o2 = 16; o2 > 0; o2 >>= 1) {
      a += __shfl_xor_sync(0xffffffffu, a, o2);
      b += __shfl_xor_sync(0xffffffffu, b, o2);
    }
    if (lane == 0) p[s] = (a + b) * scale;
  }
  __syncthreads();
  float mx = -INFINITY;
  for (int s = threadIdx.x; s < n; s += blockDim.x) mx = fmaxf(mx, p[s]);
  mx = block_max(mx, red);
  float sum = 0.f;
  for (int s = threadIdx.x; s < n; s += blockDim.x) {
    p[s] = expf(p[s] - mx);
    sum += p[s];
  }
  sum = block_sum(sum, red);  // its __syncthreads also publishes p[]
  const float inv = 1.0f / sum;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float acc = 0.f;
    for (int s = 0; s < n; ++s) acc += (p[s] * inv) * cache[int64_t(ir[s]) * W + c];
    o[c] = acc;
  }
}

__global__ void moe_combine_kernel(const float* ye, const float* wts, const float* ysh, int64_t R, int K, int64_t D,
                                   float* out) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= R * D) return;
  const int64_t r = t / D, d = t % D;
  float acc = 0.f;
  for (int k = 0; k < K; ++k) acc += ye[(r * K + k) * D + d] * wts[r * K + k];
  if (ysh) acc += ysh[t];
  out[t] = acc;
}

unsigned blocks_for(int64_t n, const char* what) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  if (b > 0x7fffffff) throw std::invalid_argument(std::string(what) + ": too many elements");
  return unsigned(b);
}

}  // namespace

void gemm_fp8_f32(const float* x, int64_t M, const Fp8WeightDev& w, float* y, cudaStream_t stream) {
  if (M < 1) throw std::invalid_argument("gemm_fp8_f32: M must be >= 1 (M=" + std::to_string(M) + ")");
  if (!x || !y) throw std::invalid_argument("gemm_fp8_f32: null x or y");
  for (int64_t m0 = 0; m0 < M; m0 += kGemmSmallMaxM)
    gemm_fp8_small_m(x + m0 * w.cols, ActType::F32, std::min(kGemmSmallMaxM, M - m0), w, y + m0 * w.rows, false,
                     stream);
}

void embed_gather_f32(const void* table, bool table_bf16, const int32_t* ids, int64_t R, int64_t D, float* out,
                      cudaStream_t stream) {
  if (R < 0 || D < 1) throw std::invalid_argument("embed_gather_f32: bad R or D");
  if (!table || !ids || !out) throw std::invalid_argument("embed_gather_f32: null table, ids or out");
  if (R == 0) return;
  embed_f32_kernel<<<blocks_for(R * D, "embed_gather_f32"), kThreads, 0, stream>>>(table, table_bf16, ids, R, D, out);
  DS_CUDA_CHECK_LAUNCH("embed_gather_f32");
}

void add_rmsnorm_f32(const float* f, float* r, const uint16_t* w, int64_t rows, int64_t n, float eps, float* y,
                     cudaStream_t stream) {
  if (rows < 0 || rows > 0x7fffffff || n < 1) throw std::invalid_argument("add_rmsnorm_f32: bad rows or n");
  if (!r || !w || !y) throw std::invalid_argument("add_rmsnorm_f32: null r, w or y");
  if (rows == 0) return;
  add_rmsnorm_f32_kernel<<<unsigned(rows), kThreads, 0, stream>>>(f, r, w, n, eps, y);
  DS_CUDA_CHECK_LAUNCH("add_rmsnorm_f32");
}

void scatter_rows_f32(const float* src, int64_t lds, int64_t n, int64_t W, const int32_t* dst_rows, float* dst,
                      cudaStream_t stream) {
  if (n < 0 || W < 1 || lds < W) throw std::invalid_argument("scatter_rows_f32: bad n, W or lds");
  if (!src || !dst_rows || !dst) throw std::invalid_argument("scatter_rows_f32: null src, dst_rows or dst");
  if (n == 0) return;
  scatter_kernel<<<blocks_for(n * W, "scatter_rows_f32"), kThreads, 0, stream>>>(src, lds, n, W, dst_rows, dst);
  DS_CUDA_CHECK_LAUNCH("scatter_rows_f32");
}

void gather_rows_f32(const float* src, int64_t lds, const int32_t* src_rows, int64_t n, int64_t W, float* dst,
                     cudaStream_t stream) {
  if (n < 0 || W < 1 || lds < W) throw std::invalid_argument("gather_rows_f32: bad n, W or lds");
  if (!src || !src_rows || !dst) throw std::invalid_argument("gather_rows_f32: null src, src_rows or dst");
  if (n == 0) return;
  gather_kernel<<<blocks_for(n * W, "gather_rows_f32"), kThreads, 0, stream>>>(src, lds, src_rows, n, W, dst);
  DS_CUDA_CHECK_LAUNCH("gather_rows_f32");
}

void index_scores_f32(const float* q, const float* w, int64_t R, int Hi, int Di, const float* kcache,
                      const int32_t* pages, int max_pages, int page_size, const int32_t* n_keys, int topk,
                      int64_t max_keys, float* scores, cudaStream_t stream) {
  if (R < 0 || R > 0x7fffffff || Hi < 1 || Di < 1 || int64_t(Hi) * (Di + 1) > kMaxSmemFloats)
    throw std::invalid_argument("index_scores_f32: bad R, Hi or Di (Hi * (Di + 1) <= " +
                                std::to_string(kMaxSmemFloats) + ")");
  if (max_pages < 1 || page_size < 1 || topk < 1 || max_keys < 1)
    throw std::invalid_argument("index_scores_f32: bad max_pages, page_size, topk or max_keys");
  if (!q || !w || !kcache || !pages || !n_keys || !scores)
    throw std::invalid_argument("index_scores_f32: null q, w, kcache, pages, n_keys or scores");
  if (R == 0) return;
  const int64_t chunks = (max_keys + kThreads - 1) / kThreads;
  if (chunks > 65535) throw std::invalid_argument("index_scores_f32: max_keys above 65535 * 256");
  const size_t smem = sizeof(float) * size_t(Hi) * size_t(Di + 1);
  index_scores_f32_kernel<<<dim3(unsigned(R), unsigned(chunks)), kThreads, smem, stream>>>(
      q, w, Hi, Di, kcache, pages, max_pages, page_size, n_keys, topk, max_keys, scores);
  DS_CUDA_CHECK_LAUNCH("index_scores_f32");
}

void mla_attention_f32(const float* q_lat, const float* q_pe, int64_t R, int H, int C, int dr, const float* cache,
                       const int32_t* idx, const int32_t* n, int max_n, float scale, float* o_lat,
                       cudaStream_t stream) {
  if (R < 0 || H < 1 || C < 1 || dr < 0 || max_n < 1 || int64_t(C) + dr + max_n > kMaxSmemFloats ||
      R * H > 0x7fffffff)
    throw std::invalid_argument("mla_attention_f32: bad R, H, C, dr or max_n (C + dr + max_n <= " +
                                std::to_string(kMaxSmemFloats) + ")");
  if (!q_lat || (dr > 0 && !q_pe) || !cache || !idx || !n || !o_lat)
    throw std::invalid_argument("mla_attention_f32: null q_lat, q_pe, cache, idx, n or o_lat");
  if (R == 0) return;
  const size_t smem = sizeof(float) * size_t(C + dr + max_n);
  mla_attention_f32_kernel<<<unsigned(R * H), kThreads, smem, stream>>>(q_lat, q_pe, H, C, dr, cache, idx, n, max_n,
                                                                        scale, o_lat);
  DS_CUDA_CHECK_LAUNCH("mla_attention_f32");
}

void moe_combine_f32(const float* ye, const float* wts, const float* ysh, int64_t R, int K, int64_t D, float* out,
                     cudaStream_t stream) {
  if (R < 0 || K < 1 || D < 1) throw std::invalid_argument("moe_combine_f32: bad R, K or D");
  if (!ye || !wts || !out) throw std::invalid_argument("moe_combine_f32: null ye, wts or out");
  if (R == 0) return;
  moe_combine_kernel<<<blocks_for(R * D, "moe_combine_f32"), kThreads, 0, stream>>>(ye, wts, ysh, R, K, D, out);
  DS_CUDA_CHECK_LAUNCH("moe_combine_f32");
}

}  // namespace ds::cuda
