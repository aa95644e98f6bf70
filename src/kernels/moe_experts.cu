// Routed MoE experts (spec 6.7) on the GPU, official numerics: device-side grouping of the (token,
// slot) pairs by expert, then grouped FP8 GEMMs (gemm_fp8_grouped) for gate+up and down, with
// SwiGLU and the UE8M0 activation quantization between them, and the weighted combine
// (moe_experts.h, docs/cuda.md "MoE experts"). No host synchronization.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/act_quant.h"
#include "kernels/cuda_check.h"
#include "kernels/gemm_fp8.h"
#include "kernels/moe_experts.h"

namespace ds::cuda {
namespace {

constexpr int kMaxExperts = 1024;
constexpr int kThreads = 256;
static_assert(sizeof(ExpertDev) == 3 * sizeof(Fp8WeightDev), "ExpertDev must be three packed Fp8WeightDev");

size_t align256(size_t b) { return (b + 255) & ~size_t(255); }

// Workspace sections, in order.
// Grouped rows: the T * K routed (t, k) pairs, then (shared expert) one row per token.
struct Layout {
  size_t cnt, goff, tok, inv, xq, xs, g, u, hq, hs, yd, total;
  Layout(int64_t T, int K, int64_t D, int64_t I, bool shared) {
    const size_t TKr = size_t(T) * size_t(K), TK = TKr + (shared ? size_t(T) : 0);
    size_t o = 0;
    auto take = [&o](size_t bytes) {
      const size_t at = o;
      o += align256(bytes);
      return at;
    };
    cnt = take(sizeof(int32_t) * kMaxExperts);
    goff = take(sizeof(int32_t) * (kMaxExperts + 2));
    tok = take(sizeof(int32_t) * TK);
    inv = take(sizeof(int32_t) * TKr);
    xq = take(size_t(T) * size_t(D));
    xs = take(sizeof(float) * size_t(T) * size_t(D / 128));
    g = take(sizeof(float) * TK * size_t(I));
    u = take(sizeof(float) * TK * size_t(I));
    hq = take(TK * size_t(I));
    hs = take(sizeof(float) * TK * size_t(I / 128));
    yd = take(sizeof(float) * TK * size_t(D));
    total = o;
  }
};

// cnt[e] = number of entries i < TK with ids[i] == e (block e).
__global__ void moe_count_kernel(const int32_t* __restrict__ ids, int64_t TK, int32_t* __restrict__ cnt) {
  const int e = blockIdx.x;
  int total = 0;
  for (int64_t s = 0; s < TK; s += kThreads) {
    const int64_t i = s + threadIdx.x;
    total += __syncthreads_count(i < TK && ids[i] == e);
  }
  if (threadIdx.x == 0) cnt[e] = total;
}

// goff[0] = 0, goff[e + 1] = goff[e] + cnt[e] (one block; E <= 1024); with a shared expert, group
// E holds one row per token: goff[E + 1] = goff[E] + T.
__global__ void moe_scan_kernel(const int32_t* __restrict__ cnt, int E, int32_t shared_rows, int32_t* __restrict__ goff) {
  __shared__ int32_t s[kMaxExperts];
  for (int e = threadIdx.x; e < E; e += blockDim.x) s[e] = cnt[e];
  __syncthreads();
  if (threadIdx.x == 0) {
    int32_t acc = 0;
    goff[0] = 0;
    for (int e = 0; e < E; ++e) goff[e + 1] = (acc += s[e]);
    if (shared_rows > 0) goff[E + 1] = acc + shared_rows;
  }
}

// Shared expert rows: tok[goff[E] + t] = t.
__global__ void moe_place_shared_kernel(int64_t T, int E, const int32_t* __restrict__ goff, int32_t* __restrict__ tok) {
  const int32_t base = goff[E];
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < T; t += int64_t(gridDim.x) * blockDim.x)
    tok[base + t] = int32_t(t);
}

// Stable placement (block e): the entries i with ids[i] == e, in ascending i, get the grouped rows
// goff[e], goff[e] + 1, ...: tok[row] = i / K (the token), inv[i] = row.
__global__ void moe_place_kernel(const int32_t* __restrict__ ids, int64_t TK, int K, const int32_t* __restrict__ goff,
                                 int32_t* __restrict__ tok, int32_t* __restrict__ inv) {
  __shared__ int32_t warp_tot[kThreads / 32];
  const int e = blockIdx.x, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int32_t base = goff[e];
  for (int64_t s = 0; s < TK; s += kThreads) {
    const int64_t i = s + threadIdx.x;
    const bool f = i < TK && ids[i] == e;
    const unsigned bal = __ballot_sync(0xffffffffu, f);
    if (lane == 0) warp_tot[warp] = __popc(bal);
    __syncthreads();
    int before = 0, all = 0;
    for (int w = 0; w < kThreads / 32; ++w) {
      before += w < warp ? warp_tot[w] : 0;
      all += warp_tot[w];
    }
    if (f) {
      const int32_t row = base + before + __popc(bal & ((1u << lane) - 1u));
      tok[row] = int32_t(i / K);
      inv[i] = row;
    }
    base += all;
    __syncthreads();
  }
}

// h = bf16(g / (1 + exp(-g)) * u) in place of g for grouped rows < goff[E]; 0 beyond (those rows
// are quantized but never read).
__global__ void moe_swiglu_kernel(float* __restrict__ g, const float* __restrict__ u, int64_t TK, int64_t I,
                                  const int32_t* __restrict__ goff, int E) {
  const int64_t rows = goff[E];
  const int64_t n = TK * I;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float h = 0.f;
    if (i / I < rows) {
      const float z = g[i];
      const float s = __fdiv_rn(z, __fadd_rn(1.0f, expf(-z)));
      h = __bfloat162float(__float2bfloat16_rn(__fmul_rn(s, u[i])));
    }
    g[i] = h;
  }
}

// out[t, d] = sum over k ascending of yd[inv[t, k], d] * wts[t, k] (pairs with inv < 0 skipped),
// then (shared expert, goff_shared != nullptr) + yd[goff_shared[0] + t, d]: moe.cpp's `y += shared`.
__global__ void moe_combine_kernel(const float* __restrict__ yd, const int32_t* __restrict__ inv,
                                   const float* __restrict__ wts, int K, int64_t D,
                                   const int32_t* __restrict__ goff_shared, float* __restrict__ out) {
  const int64_t t = blockIdx.x;
  const int64_t rs = goff_shared ? int64_t(goff_shared[0]) + t : -1;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    float acc = 0.f;
    for (int k = 0; k < K; ++k) {
      const int32_t r = inv[t * K + k];
      if (r >= 0) acc = __fadd_rn(acc, __fmul_rn(yd[int64_t(r) * D + d], wts[t * K + k]));
    }
    if (rs >= 0) acc = __fadd_rn(acc, yd[rs * D + d]);
    out[t * D + d] = acc;
  }
}

}  // namespace

size_t moe_workspace_bytes(int64_t T, int K, int64_t D, int64_t I, bool shared_expert) {
  if (T < 0 || K < 1 || D < 1 || I < 1) throw std::invalid_argument("moe_workspace_bytes: T, K, D, I must be positive");
  return Layout(T, K, D, I, shared_expert).total;
}

void moe_experts(const float* x, int64_t T, const int32_t* ids, const float* wts, int K, const ExpertDev* experts,
                 int E, int64_t D, int64_t I, float* out, void* workspace, size_t workspace_bytes,
                 cudaStream_t stream, bool shared_expert) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("moe_experts: " + what); };
  if (T < 0) fail("T must be >= 0");
  if (T == 0) return;
  if (K < 1) fail("K (experts per token) must be >= 1");
  if (E < 1 || E > kMaxExperts) fail("E must be in [1, " + std::to_string(kMaxExperts) + "]");
  if (D < 128 || D % 128 != 0) fail("D must be a positive multiple of 128 (got " + std::to_string(D) + ")");
  if (I < 128 || I % 128 != 0) fail("I must be a positive multiple of 128 (got " + std::to_string(I) + ")");
  if (!x || !ids || !wts || !experts || !out || !workspace) fail("null pointer (x, ids, wts, experts, out, workspace)");
  if ((reinterpret_cast<uintptr_t>(workspace) & 255) != 0) fail("workspace must be 256-byte aligned");
  const Layout L(T, K, D, I, shared_expert);
  if (workspace_bytes < L.total)
    fail("workspace_bytes " + std::to_string(workspace_bytes) + " < moe_workspace_bytes = " + std::to_string(L.total));
  if (T * (K + 1) > int64_t(0x7fffffff)) fail("T * K too large");
  const int EG = E + (shared_expert ? 1 : 0);  // groups: the routed experts, then the shared one
  uint8_t* ws = static_cast<uint8_t*>(workspace);
  auto* cnt = reinterpret_cast<int32_t*>(ws + L.cnt);
  auto* goff = reinterpret_cast<int32_t*>(ws + L.goff);
  auto* tok = reinterpret_cast<int32_t*>(ws + L.tok);
  auto* inv = reinterpret_cast<int32_t*>(ws + L.inv);
  uint8_t* xq = ws + L.xq;
  auto* xs = reinterpret_cast<float*>(ws + L.xs);
  auto* g = reinterpret_cast<float*>(ws + L.g);
  auto* u = reinterpret_cast<float*>(ws + L.u);
  uint8_t* hq = ws + L.hq;
  auto* hs = reinterpret_cast<float*>(ws + L.hs);
  auto* yd = reinterpret_cast<float*>(ws + L.yd);
  const int64_t TKr = T * K, TK = TKr + (shared_expert ? T : 0);  // routed pairs; grouped rows

  // 1. Group the (t, k) pairs by expert: counts, offsets, stable permutation (ascending t, k); the
  //    shared expert's rows (one per token, in token order) form the last group.
  moe_count_kernel<<<E, kThreads, 0, stream>>>(ids, TKr, cnt);
  DS_CUDA_CHECK_LAUNCH("moe_count_kernel");
  moe_scan_kernel<<<1, kThreads, 0, stream>>>(cnt, E, shared_expert ? int32_t(T) : 0, goff);
  DS_CUDA_CHECK_LAUNCH("moe_scan_kernel");
  DS_CUDA_CHECK(cudaMemsetAsync(inv, 0xff, sizeof(int32_t) * size_t(TKr), stream));
  moe_place_kernel<<<E, kThreads, 0, stream>>>(ids, TKr, K, goff, tok, inv);
  DS_CUDA_CHECK_LAUNCH("moe_place_kernel");
  if (shared_expert) {
    moe_place_shared_kernel<<<unsigned(std::min<int64_t>((T + kThreads - 1) / kThreads, 1024)), kThreads, 0, stream>>>(
        T, E, goff, tok);
    DS_CUDA_CHECK_LAUNCH("moe_place_shared_kernel");
  }

  // 2. Quantize each token once (row-local, so the same bits as quantizing each grouped row).
  act_quant_ue8m0(x, QuantInType::F32, T, D, xq, xs, stream);

  // 3. gate and up in one grouped launch; the kernel choice depends on a row bound only (same bits).
  const int64_t group_rows_hint = T <= 16 ? T : (TKr <= 8 * int64_t(E) ? 16 : T);
  const auto* wb = reinterpret_cast<const Fp8WeightDev*>(experts);
  float* gu[2] = {g, u};
  gemm_fp8_grouped(xq, xs, tok, TK, goff, EG, wb, 3, 2, I, D, gu, group_rows_hint, true, stream);

  // 4. SwiGLU (BF16 h), then its UE8M0 quantization.
  moe_swiglu_kernel<<<int(std::min<int64_t>((TK * I + kThreads - 1) / kThreads, 8192)), kThreads, 0, stream>>>(
      g, u, TK, I, goff, EG);
  DS_CUDA_CHECK_LAUNCH("moe_swiglu_kernel");
  act_quant_ue8m0(g, QuantInType::F32, TK, I, hq, hs, stream);

  // 5. down, grouped; rows are already in grouped order.
  float* yo[1] = {yd};
  gemm_fp8_grouped(hq, hs, nullptr, TK, goff, EG, wb + 2, 3, 1, D, I, yo, group_rows_hint, true, stream);

  // 6. Weighted combine in ascending k.
  if (T > 0x7fffffff) fail("T too large");
  moe_combine_kernel<<<unsigned(T), kThreads, 0, stream>>>(yd, inv, wts, K, D, shared_expert ? goff + E : nullptr, out);
  DS_CUDA_CHECK_LAUNCH("moe_combine_kernel");
}

}  // namespace ds::cuda
