// MoE router on the GPU: sigmoid scores, bias-corrected group-limited top-k (noaux_tc, spec/model.md
// 6), launcher only: no CUDA headers. CPU twin: ds::cpu::route (src/kernels/cpu/router.h); same
// selection rules, ties and summation order. Design and measurements: docs/cuda.md.
#pragma once
#include <cstdint>

typedef struct CUstream_st* cudaStream_t;  // same declaration as CUDA's driver_types.h

namespace ds::cuda {

/// Router shape and rules (config.json; the same fields as ds::cpu::RouterParams).
struct RouterShape {
  int n_experts = 0;     ///< E, 1..512
  int n_group = 1;       ///< G, divides E, 1..32
  int topk_group = 1;    ///< groups kept, 1..G
  int topk = 1;          ///< experts chosen, 1..32, <= E
  bool norm_topk_prob = true;
  float routed_scaling_factor = 1.0f;
};

/// Largest expert count the router kernel takes.
constexpr int kRouterMaxExperts = 512;

/// For each token t: logits [tokens, E] F32 -> s = sigmoid(z) = 1 / (1 + exp(-z)) (exp in double
/// rounded to FP32: within one ulp of glibc's expf, rarely visible after 1 / (1 + e)); s' = s + bias (bias [E] F32, may be null) for
/// selection only; group score = sum of the 2 largest s' of the group (the largest if bias is
/// null); keep the topk_group best groups (ties -> lower group); pick the topk best experts by s'
/// (ties -> lower expert id). ids [tokens, topk] int32 in ascending expert id; weights [tokens,
/// topk] F32 = s[id] / (sum of s over the chosen, added in selection order) (if norm_topk_prob) *
/// routed_scaling_factor. One warp per token. Asynchronous on `stream`. Throws
/// std::invalid_argument for shapes outside the ranges above or null pointers; std::runtime_error
/// for a CUDA launch error.
void moe_route(const float* logits, const float* bias, int64_t tokens, const RouterShape& p, int32_t* ids,
               float* weights, cudaStream_t stream);

}  // namespace ds::cuda
