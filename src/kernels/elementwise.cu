// Small ops of the CUDA model runner (see elementwise.h). Every kernel uses the twin's operation
// order and explicitly rounded FP32 ops (__fadd_rn / __fmul_rn: no FMA contraction), so the
// results equal the CPU twins' bit for bit except where the header says otherwise.
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/elementwise.h"

namespace ds::cuda {
namespace {

__device__ __forceinline__ float bf16_bits_to_f32(uint16_t b) { return __uint_as_float(uint32_t(b) << 16); }
// Round to nearest even to BF16 (NaN kept quiet), as ds::f32_to_bf16.
__device__ __forceinline__ uint16_t f32_to_bf16_bits(float f) {
  uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
__device__ __forceinline__ float rbf(float f) { return bf16_bits_to_f32(f32_to_bf16_bits(f)); }

void need(bool ok, const char* fn, const char* what) {
  if (!ok) throw std::invalid_argument(std::string(fn) + ": " + what);
}
unsigned blocks_for(int64_t n, int per) { return unsigned((n + per - 1) / per); }

__global__ void embed_kernel(const void* table, bool bf16, const int32_t* ids, int64_t R, int64_t D, uint16_t* out) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= R * D) return;
  const int64_t r = i / D, d = i % D;
  const int64_t src = int64_t(ids[r]) * D + d;
  out[i] = bf16 ? static_cast<const uint16_t*>(table)[src] : f32_to_bf16_bits(static_cast<const float*>(table)[src]);
}

// One warp per row. Lanes 0..15 hold dot_fixed's 16 strided accumulators; the tree is
// j += j+8, j += j+4, 0 += 2, 1 += 3, then (0 + 1) + tail (tail summed sequentially by lane 0).
__global__ void rmsnorm_kernel(const float* x, int64_t ldx, const float* w, int64_t R, int64_t n, float eps, float* y,
                               int64_t ldy, bool bf16_out) {
  const int64_t r = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (r >= R) return;
  const int lane = threadIdx.x & 31;
  const float* xr = x + r * ldx;
  const int64_t main = n / 16 * 16;
  float c = 0.f;
  if (lane < 16)
    for (int64_t k = lane; k < main; k += 16) c = __fadd_rn(c, __fmul_rn(xr[k], xr[k]));
  float o = __shfl_down_sync(0xffffffffu, c, 8);
  if (lane < 8) c = __fadd_rn(c, o);
  o = __shfl_down_sync(0xffffffffu, c, 4);
  if (lane < 4) c = __fadd_rn(c, o);
  o = __shfl_down_sync(0xffffffffu, c, 2);
  if (lane < 2) c = __fadd_rn(c, o);
  o = __shfl_down_sync(0xffffffffu, c, 1);
  float ss = 0.f;
  if (lane == 0) {
    float tail = 0.f;
    for (int64_t k = main; k < n; ++k) tail = __fadd_rn(tail, __fmul_rn(xr[k], xr[k]));
    ss = __fadd_rn(__fadd_rn(c, o), tail);
  }
  ss = __shfl_sync(0xffffffffu, ss, 0);
  const float inv = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(__fdiv_rn(ss, float(n)), eps)));
  float* yr = y + r * ldy;
  for (int64_t i = lane; i < n; i += 32) {
    const float v = __fmul_rn(w[i], __fmul_rn(xr[i], inv));
    yr[i] = bf16_out ? rbf(v) : v;
  }
}

__global__ void layernorm_kernel(const float* x, const float* w, const float* b, int64_t R, int64_t n, float eps,
                                 float* y, bool bf16_out) {
  const int64_t r = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (r >= R) return;
  const int lane = threadIdx.x & 31;
  const float* xr = x + r * n;
  float mean = 0.f, inv = 0.f;
  if (lane == 0) {
    float sum = 0.f;
    for (int64_t i = 0; i < n; ++i) sum = __fadd_rn(sum, xr[i]);
    mean = __fdiv_rn(sum, float(n));
    float var = 0.f;
    for (int64_t i = 0; i < n; ++i) {
      const float d = __fsub_rn(xr[i], mean);
      var = __fadd_rn(var, __fmul_rn(d, d));
    }
    var = __fdiv_rn(var, float(n));
    inv = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(var, eps)));
  }
  mean = __shfl_sync(0xffffffffu, mean, 0);
  inv = __shfl_sync(0xffffffffu, inv, 0);
  __syncwarp();
  float* yr = y + r * n;
  for (int64_t i = lane; i < n; i += 32) {
    const float v = __fadd_rn(__fmul_rn(__fmul_rn(__fsub_rn(xr[i], mean), inv), w[i]), b[i]);
    yr[i] = bf16_out ? rbf(v) : v;
  }
}

// One block of n/2 threads per row, the row in shared memory; each stage's butterflies are
// independent, so the result equals the twin's sequential loops.
__global__ void hadamard_kernel(float* x, int n, float scale, bool bf16_out) {
  extern __shared__ float s[];
  float* xr = x + int64_t(blockIdx.x) * n;
  for (int i = threadIdx.x; i < n; i += blockDim.x) s[i] = xr[i];
  __syncthreads();
  for (int h = 1; h < n; h *= 2) {
    for (int t = threadIdx.x; t < n / 2; t += blockDim.x) {
      const int j = (t / h) * 2 * h + t % h;
      const float a = s[j], b = s[j + h];
      s[j] = __fadd_rn(a, b);
      s[j + h] = __fsub_rn(a, b);
    }
    __syncthreads();
  }
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const float v = __fmul_rn(s[i], scale);
    xr[i] = bf16_out ? rbf(v) : v;
  }
}

// One warp per (row, 128-group), 4 values per lane: act_quant's scale rule, then q * s.
__global__ void fp8_round_trip_kernel(float* x, int64_t ldx, int64_t R, int64_t groups) {
  const int64_t g = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (g >= R * groups) return;
  const int lane = threadIdx.x & 31;
  float* p = x + (g / groups) * ldx + (g % groups) * 128 + lane * 4;
  float v[4];
  float amax = 0.f;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    v[i] = p[i];
    amax = fmaxf(amax, fabsf(v[i]));
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  const float a = __fmul_rn(fmaxf(amax, 1e-4f), 1.0f / 448.0f);
  const uint32_t u = __float_as_uint(a);
  const int e = int((u >> 23) & 0xffu) - 127 + ((u & 0x7fffffu) != 0 ? 1 : 0);
  const float sc = __uint_as_float(uint32_t(e + 127) << 23);
  const float inv = __fdiv_rn(1.0f, sc);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float q = __fmul_rn(v[i], inv);
    q = q < -448.f ? -448.f : (448.f < q ? 448.f : q);
    const __nv_fp8_storage_t b = __nv_cvt_float_to_fp8(q, __NV_SATFINITE, __NV_E4M3);
    const float qf = __half2float(__half(__nv_cvt_fp8_to_halfraw(b, __NV_E4M3)));
    p[i] = __fmul_rn(qf, sc);
  }
}

__global__ void swiglu_kernel(const float* g, const float* u, int64_t n, float* h, bool bf16_out) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float z = g[i];
  const float v = __fmul_rn(__fdiv_rn(z, __fadd_rn(1.0f, expf(-z))), u[i]);
  h[i] = bf16_out ? rbf(v) : v;
}

__global__ void add_to_bf16_kernel(const float* a, const float* b, int64_t n, uint16_t* out) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  out[i] = f32_to_bf16_bits(b ? __fadd_rn(a[i], b[i]) : a[i]);
}

__global__ void round_kernel(float* x, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] = rbf(x[i]);
}

__global__ void bf16_to_f32_kernel(const uint16_t* x, int64_t n, float* y) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) y[i] = bf16_bits_to_f32(x[i]);
}

__global__ void gather_rows_kernel(const uint16_t* x, const int32_t* rows, int64_t n_rows, int64_t D, float* y) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n_rows * D) return;
  y[i] = bf16_bits_to_f32(x[int64_t(rows[i / D]) * D + i % D]);
}

__global__ void head_weights_kernel(const float* w, const float* qs, int64_t n, float hs, float ds_, float* out) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = __fmul_rn(__fmul_rn(__fmul_rn(w[i], hs), qs[i]), ds_);
}

__device__ __forceinline__ float uniform_pm1(uint64_t seed, int64_t i) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ull * uint64_t(i + 1);  // splitmix64
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return float(int64_t(z >> 40) - (int64_t(1) << 23)) * (1.0f / float(1 << 23));
}

__global__ void fill_fp8_kernel(uint8_t* p, int64_t n, uint64_t seed) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    p[i] = __nv_cvt_float_to_fp8(uniform_pm1(seed, i) * 448.0f, __NV_SATFINITE, __NV_E4M3);
}
__global__ void fill_bf16_kernel(uint16_t* p, int64_t n, uint64_t seed, float amp) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    p[i] = f32_to_bf16_bits(uniform_pm1(seed, i) * amp);
}
__global__ void fill_f32_kernel(float* p, int64_t n, uint64_t seed, float amp, float off) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    p[i] = uniform_pm1(seed, i) * amp + off;
}

unsigned grid_stride_blocks(int64_t n) { return unsigned(std::min<int64_t>((n + 255) / 256, 8192)); }

}  // namespace

void embed_gather(const void* table, bool table_bf16, const int32_t* ids, int64_t R, int64_t D, uint16_t* out,
                  cudaStream_t stream) {
  need(table && ids && out, "embed_gather", "null table/ids/out");
  need(R >= 0 && D >= 1, "embed_gather", "R must be >= 0 and D >= 1");
  if (R == 0) return;
  embed_kernel<<<blocks_for(R * D, 256), 256, 0, stream>>>(table, table_bf16, ids, R, D, out);
  DS_CUDA_CHECK_LAUNCH("embed_gather");
}

void rmsnorm_f32(const float* x, int64_t ldx, const float* w, int64_t R, int64_t n, float eps, float* y, int64_t ldy,
                 bool bf16_out, cudaStream_t stream) {
  need(x && w && y, "rmsnorm_f32", "null x/w/y");
  need(R >= 0 && n >= 1 && ldx >= n && ldy >= n, "rmsnorm_f32", "need R >= 0, n >= 1, ldx >= n, ldy >= n");
  if (R == 0) return;
  rmsnorm_kernel<<<blocks_for(R, 8), 256, 0, stream>>>(x, ldx, w, R, n, eps, y, ldy, bf16_out);
  DS_CUDA_CHECK_LAUNCH("rmsnorm_f32");
}

void layernorm_f32(const float* x, const float* w, const float* b, int64_t R, int64_t n, float eps, float* y,
                   bool bf16_out, cudaStream_t stream) {
  need(x && w && b && y, "layernorm_f32", "null x/w/b/y");
  need(R >= 0 && n >= 1, "layernorm_f32", "need R >= 0 and n >= 1");
  if (R == 0) return;
  layernorm_kernel<<<blocks_for(R, 8), 256, 0, stream>>>(x, w, b, R, n, eps, y, bf16_out);
  DS_CUDA_CHECK_LAUNCH("layernorm_f32");
}

void hadamard_rows(float* x, int64_t R, int n, float scale, bool bf16_out, cudaStream_t stream) {
  need(x != nullptr, "hadamard_rows", "null x");
  need(R >= 0 && n >= 2 && n <= 1024 && (n & (n - 1)) == 0, "hadamard_rows", "n must be a power of two in [2, 1024]");
  if (R == 0) return;
  need(R <= 0x7fffffff, "hadamard_rows", "R above 2^31 - 1");
  hadamard_kernel<<<unsigned(R), unsigned(n / 2), size_t(n) * 4, stream>>>(x, n, scale, bf16_out);
  DS_CUDA_CHECK_LAUNCH("hadamard_rows");
}

void fp8_round_trip(float* x, int64_t ldx, int64_t R, int64_t cols, cudaStream_t stream) {
  need(x != nullptr, "fp8_round_trip", "null x");
  need(R >= 0 && cols >= 128 && cols % 128 == 0 && ldx >= cols, "fp8_round_trip",
       "cols must be a positive multiple of 128 and ldx >= cols");
  if (R == 0) return;
  const int64_t groups = cols / 128;
  fp8_round_trip_kernel<<<blocks_for(R * groups, 8), 256, 0, stream>>>(x, ldx, R, groups);
  DS_CUDA_CHECK_LAUNCH("fp8_round_trip");
}

void swiglu(const float* g, const float* u, int64_t n, float* h, bool bf16_out, cudaStream_t stream) {
  need(g && u && h, "swiglu", "null g/u/h");
  need(n >= 0, "swiglu", "n must be >= 0");
  if (n == 0) return;
  swiglu_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(g, u, n, h, bf16_out);
  DS_CUDA_CHECK_LAUNCH("swiglu");
}

void add_to_bf16(const float* a, const float* b, int64_t n, uint16_t* out, cudaStream_t stream) {
  need(a && out, "add_to_bf16", "null a/out");
  need(n >= 0, "add_to_bf16", "n must be >= 0");
  if (n == 0) return;
  add_to_bf16_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(a, b, n, out);
  DS_CUDA_CHECK_LAUNCH("add_to_bf16");
}

void round_to_bf16(float* x, int64_t n, cudaStream_t stream) {
  need(x != nullptr, "round_to_bf16", "null x");
  need(n >= 0, "round_to_bf16", "n must be >= 0");
  if (n == 0) return;
  round_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(x, n);
  DS_CUDA_CHECK_LAUNCH("round_to_bf16");
}

void bf16_to_f32(const uint16_t* x, int64_t n, float* y, cudaStream_t stream) {
  need(x && y, "bf16_to_f32", "null x/y");
  need(n >= 0, "bf16_to_f32", "n must be >= 0");
  if (n == 0) return;
  bf16_to_f32_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(x, n, y);
  DS_CUDA_CHECK_LAUNCH("bf16_to_f32");
}

void gather_bf16_rows_f32(const uint16_t* x, const int32_t* rows, int64_t n_rows, int64_t D, float* y,
                          cudaStream_t stream) {
  need(x && rows && y, "gather_bf16_rows_f32", "null x/rows/y");
  need(n_rows >= 0 && D >= 1, "gather_bf16_rows_f32", "need n_rows >= 0 and D >= 1");
  if (n_rows == 0) return;
  gather_rows_kernel<<<blocks_for(n_rows * D, 256), 256, 0, stream>>>(x, rows, n_rows, D, y);
  DS_CUDA_CHECK_LAUNCH("gather_bf16_rows_f32");
}

void index_head_weights(const float* w, const float* q_scale, int64_t n, float head_scale, float dim_scale,
                        float* out, cudaStream_t stream) {
  need(w && q_scale && out, "index_head_weights", "null w/q_scale/out");
  need(n >= 0, "index_head_weights", "n must be >= 0");
  if (n == 0) return;
  head_weights_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(w, q_scale, n, head_scale, dim_scale, out);
  DS_CUDA_CHECK_LAUNCH("index_head_weights");
}

void fill_random_fp8(uint8_t* p, int64_t n, uint64_t seed, cudaStream_t stream) {
  need(p != nullptr && n >= 0, "fill_random_fp8", "null p or n < 0");
  if (n == 0) return;
  fill_fp8_kernel<<<grid_stride_blocks(n), 256, 0, stream>>>(p, n, seed);
  DS_CUDA_CHECK_LAUNCH("fill_random_fp8");
}

void fill_random_bf16(uint16_t* p, int64_t n, uint64_t seed, float amp, cudaStream_t stream) {
  need(p != nullptr && n >= 0, "fill_random_bf16", "null p or n < 0");
  if (n == 0) return;
  fill_bf16_kernel<<<grid_stride_blocks(n), 256, 0, stream>>>(p, n, seed, amp);
  DS_CUDA_CHECK_LAUNCH("fill_random_bf16");
}

void fill_random_f32(float* p, int64_t n, uint64_t seed, float amp, float offset, cudaStream_t stream) {
  need(p != nullptr && n >= 0, "fill_random_f32", "null p or n < 0");
  if (n == 0) return;
  fill_f32_kernel<<<grid_stride_blocks(n), 256, 0, stream>>>(p, n, seed, amp, offset);
  DS_CUDA_CHECK_LAUNCH("fill_random_f32");
}

}  // namespace ds::cuda
