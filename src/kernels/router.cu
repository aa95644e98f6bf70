// MoE router (see router.h; spec/model.md 6).
//
// One warp per token, 4 tokens per 128-thread block; the token's s and s' live in shared memory.
// Group scores: lane g scans group g in expert order keeping the best two (value desc, id asc).
// Groups kept: lane g counts the groups ranked before it (score desc, group asc), i.e. the CPU
// twin's stable sort. Experts: topk rounds of a warp argmax over s' (value desc, id asc; dropped
// groups hold -inf, chosen experts are skipped), so experts come out in the twin's selection
// order and the weight sum adds them in that order. exp is computed in double and rounded to FP32;
// glibc's expf (the CPU twin) differs from that by one FP32 ulp on ~0.07% of inputs (184 of 256000
// random logits on the H200 run), which 1 / (1 + e) almost always absorbs: in that run ids and
// weights were bit-identical; the driver allows weights within 1e-6.
#include <cuda_runtime.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/router.h"

namespace ds::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kMaxE = kRouterMaxExperts;

// a better than b: larger value, ties -> lower index.
__device__ __forceinline__ bool better(float va, int ia, float vb, int ib) {
  return va > vb || (va == vb && ia < ib);
}

__global__ void __launch_bounds__(kWarps * 32)
route_kernel(const float* __restrict__ logits, const float* __restrict__ bias, int64_t tokens, RouterShape p,
             int32_t* __restrict__ ids, float* __restrict__ weights) {
  __shared__ float s_sh[kWarps][kMaxE];
  __shared__ float sb_sh[kWarps][kMaxE];
  __shared__ int order_sh[kWarps][32];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t t = int64_t(blockIdx.x) * kWarps + warp;
  if (t >= tokens) return;
  float* s = s_sh[warp];
  float* sb = sb_sh[warp];
  const int E = p.n_experts, G = p.n_group, per = E / G;
  const float* z = logits + t * E;
  for (int e = lane; e < E; e += 32) {
    const float ex = float(exp(-double(z[e])));
    const float se = __fdiv_rn(1.0f, __fadd_rn(1.0f, ex));
    s[e] = se;
    sb[e] = bias ? __fadd_rn(se, bias[e]) : se;
  }
  __syncwarp();
  if (G > 1) {
    float gs = -INFINITY;
    if (lane < G) {
      float v1 = -INFINITY, v2 = -INFINITY;
      int i1 = 1 << 30, i2 = 1 << 30;
      for (int e = lane * per; e < (lane + 1) * per; ++e) {
        const float v = sb[e];
        if (better(v, e, v1, i1)) {
          v2 = v1, i2 = i1, v1 = v, i1 = e;
        } else if (better(v, e, v2, i2)) {
          v2 = v, i2 = e;
        }
      }
      gs = bias ? __fadd_rn(v1, per > 1 ? v2 : 0.f) : v1;
    }
    int rank = 0;
    for (int h = 0; h < G; ++h) {
      const float o = __shfl_sync(0xffffffffu, gs, h);
      if (lane < G && (o > gs || (o == gs && h < lane))) ++rank;
    }
    const unsigned keep = __ballot_sync(0xffffffffu, lane < G && rank < p.topk_group);
    for (int e = lane; e < E; e += 32)
      if (!((keep >> (e / per)) & 1u)) sb[e] = -INFINITY;
    __syncwarp();
  }
  unsigned chosen = 0;  // per lane: bit j set when its expert e = lane + 32 j is taken (E <= 512)
  for (int k = 0; k < p.topk; ++k) {
    float bv = 0.f;
    int bi = -1;
    for (int j = 0, e = lane; e < E; ++j, e += 32) {
      if ((chosen >> j) & 1u) continue;
      const float v = sb[e];
      if (bi < 0 || better(v, e, bv, bi)) bv = v, bi = e;
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
      const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
      if (oi >= 0 && (bi < 0 || better(ov, oi, bv, bi))) bv = ov, bi = oi;
    }
    if ((bi & 31) == lane) chosen |= 1u << (bi >> 5);
    if (lane == 0) order_sh[warp][k] = bi;
  }
  __syncwarp();
  if (lane == 0) {
    int* order = order_sh[warp];
    float sum = 0.f;
    for (int k = 0; k < p.topk; ++k) sum = __fadd_rn(sum, s[order[k]]);
    for (int a = 1; a < p.topk; ++a)  // ascending expert id
      for (int b = a; b > 0 && order[b - 1] > order[b]; --b) {
        const int tmp = order[b];
        order[b] = order[b - 1];
        order[b - 1] = tmp;
      }
    for (int k = 0; k < p.topk; ++k) {
      float w = s[order[k]];
      if (p.norm_topk_prob) w = __fdiv_rn(w, sum);
      ids[t * p.topk + k] = order[k];
      weights[t * p.topk + k] = __fmul_rn(w, p.routed_scaling_factor);
    }
  }
}

}  // namespace

void moe_route(const float* logits, const float* bias, int64_t tokens, const RouterShape& p, int32_t* ids,
               float* weights, cudaStream_t stream) {
  const bool ok = p.n_experts >= 1 && p.n_experts <= kMaxE && p.n_group >= 1 && p.n_group <= 32 &&
                  p.n_experts % p.n_group == 0 && p.topk_group >= 1 && p.topk_group <= p.n_group &&
                  p.topk >= 1 && p.topk <= 32 && p.topk <= p.n_experts && tokens >= 0;
  if (!ok)
    throw std::invalid_argument("moe_route: unsupported router shape n_experts=" + std::to_string(p.n_experts) +
                                " n_group=" + std::to_string(p.n_group) + " topk_group=" +
                                std::to_string(p.topk_group) + " topk=" + std::to_string(p.topk) +
                                " tokens=" + std::to_string(tokens));
  if (!logits || !ids || !weights) throw std::invalid_argument("moe_route: null logits, ids or weights pointer");
  if (tokens == 0) return;
  const int64_t blocks = (tokens + kWarps - 1) / kWarps;
  if (blocks > 0x7fffffff) throw std::invalid_argument("moe_route: too many tokens");
  route_kernel<<<unsigned(blocks), kWarps * 32, 0, stream>>>(logits, bias, tokens, p, ids, weights);
  DS_CUDA_CHECK_LAUNCH("route_kernel");
}

}  // namespace ds::cuda
