#include "kernels/cpu/router.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

namespace ds::cpu {

void route(const float* logits, const float* bias, const RouterParams& p, int* ids, float* weights) {
  const int E = p.n_experts, G = p.n_group, per = E / G;
  std::vector<float> s(E), sb(E);
  for (int e = 0; e < E; ++e) {
    s[e] = 1.0f / (1.0f + std::exp(-logits[e]));
    sb[e] = bias ? s[e] + bias[e] : s[e];
  }
  auto better = [&](int a, int b) { return sb[a] > sb[b] || (sb[a] == sb[b] && a < b); };
  if (G > 1) {
    std::vector<float> gs(G);
    for (int g = 0; g < G; ++g) {
      std::vector<int> idx(per);
      std::iota(idx.begin(), idx.end(), g * per);
      std::sort(idx.begin(), idx.end(), better);
      gs[g] = bias ? sb[idx[0]] + (per > 1 ? sb[idx[1]] : 0.f) : sb[idx[0]];
    }
    std::vector<int> gi(G);
    std::iota(gi.begin(), gi.end(), 0);
    std::stable_sort(gi.begin(), gi.end(), [&](int a, int b) { return gs[a] > gs[b]; });
    std::vector<bool> keep(G, false);
    for (int k = 0; k < p.topk_group && k < G; ++k) keep[gi[k]] = true;
    for (int e = 0; e < E; ++e)
      if (!keep[e / per]) sb[e] = -std::numeric_limits<float>::infinity();
  }
  std::vector<int> order(E);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + p.topk, order.end(), better);
  float sum = 0.f;
  for (int k = 0; k < p.topk; ++k) sum += s[order[k]];  // selection order, as the demo sums
  std::vector<int> chosen(order.begin(), order.begin() + p.topk);
  std::sort(chosen.begin(), chosen.end());
  for (int k = 0; k < p.topk; ++k) {
    float w = s[chosen[k]];
    if (p.norm_topk_prob) w /= sum;
    ids[k] = chosen[k];
    weights[k] = w * p.routed_scaling_factor;
  }
}

}  // namespace ds::cpu
