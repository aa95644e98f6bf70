// MoE router: sigmoid scores, bias-corrected group-limited top-k (noaux_tc) (spec/model.md 6).
#pragma once
#include <cstdint>

namespace ds::cpu {

/// Router shape and rules from config.json.
struct RouterParams {
  int n_experts = 0;
  int n_group = 1;
  int topk_group = 1;
  int topk = 1;
  bool norm_topk_prob = true;
  float routed_scaling_factor = 1.0f;
};

/// From FP32 router logits [n_experts]: s = sigmoid(z); s' = s + bias (selection only; bias may
/// be null); group score = sum of the 2 largest s' per group (max if no bias, the demo's rule);
/// keep topk_group groups; pick topk experts by s' (ties -> lower index). Outputs ids [topk] in
/// ascending expert id and weights [topk] = s[id] / sum(s[chosen]) (if norm_topk_prob) *
/// routed_scaling_factor, all FP32.
void route(const float* logits, const float* bias, const RouterParams& p, int* ids, float* weights);

}  // namespace ds::cpu
