// Dense SwiGLU FFN and the sigmoid-routed MoE with shared expert (spec/model.md 6).
#include <cmath>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/router.h"
#include "model/model_core.h"

namespace ds {
namespace {

// y[n, hidden] = down(bf16?(silu(gate x) * up x)) (spec 6.7).
void swiglu(const ModelCore& m, const FfnWeights& f, const float* x, int64_t n, float* y) {
  const int64_t I = f.gate.rows;
  std::vector<float> g(size_t(n * I)), u(size_t(n * I));
  cpu::gemm(x, n, f.gate, g.data(), m.lin(f.gate));
  cpu::gemm(x, n, f.up, u.data(), m.lin(f.up));
  for (size_t i = 0; i < g.size(); ++i) {
    const float z = g[i];
    g[i] = m.rnd(z / (1.0f + std::exp(-z)) * u[i]);
  }
  cpu::gemm(g.data(), n, f.down, y, m.lin(f.down));
}

}  // namespace

void ffn_forward(const ModelCore& m, const LayerWeights& L, const float* b, int64_t R, float* out) {
  if (!L.moe) {
    swiglu(m, L.dense, b, R, out);
    return;
  }
  const ModelConfig& c = m.cfg;
  const int64_t D = c.hidden_size;
  const int E = c.n_routed_experts, K = c.num_experts_per_tok;
  // 6.1-6.6: FP32 router logits and selection.
  std::vector<float> logits(size_t(R * E));
  cpu::gemm(b, R, L.router, logits.data(), cpu::GemmOptions{false, false});
  cpu::RouterParams rp{E, c.n_group, c.topk_group, K, c.norm_topk_prob, float(c.routed_scaling_factor)};
  std::vector<int> ids(size_t(R * K));
  std::vector<float> wts(size_t(R * K));
  const float* bias = L.router_bias.empty() ? nullptr : L.router_bias.data();
  for (int64_t r = 0; r < R; ++r) cpu::route(logits.data() + r * E, bias, rp, &ids[size_t(r * K)], &wts[size_t(r * K)]);
  // 6.7: each expert runs on the rows routed to it (row results do not depend on the others).
  std::vector<float> ye(size_t(R * K * D));
  for (int e = 0; e < E; ++e) {
    std::vector<int64_t> slots;  // r * K + k
    for (int64_t i = 0; i < R * K; ++i)
      if (ids[size_t(i)] == e) slots.push_back(i);
    if (slots.empty()) continue;
    const int64_t n = int64_t(slots.size());
    std::vector<float> x(size_t(n * D)), y(size_t(n * D));
    for (int64_t i = 0; i < n; ++i) std::copy(b + (slots[i] / K) * D, b + (slots[i] / K + 1) * D, x.data() + i * D);
    swiglu(m, L.experts[size_t(e)], x.data(), n, y.data());
    for (int64_t i = 0; i < n; ++i) std::copy(y.data() + i * D, y.data() + (i + 1) * D, ye.data() + slots[i] * D);
  }
  // 6.8-6.9: shared expert; FP32 combine in ascending expert id, then the shared expert.
  std::vector<float> ysh;
  if (L.has_shared) {
    ysh.resize(size_t(R * D));
    swiglu(m, L.shared, b, R, ysh.data());
  }
  for (int64_t r = 0; r < R; ++r)
    for (int64_t d = 0; d < D; ++d) {
      float acc = 0.f;
      for (int k = 0; k < K; ++k) acc += ye[size_t((r * K + k) * D + d)] * wts[size_t(r * K + k)];
      if (L.has_shared) acc += ysh[size_t(r * D + d)];
      out[r * D + d] = m.rnd(acc);
    }
}

}  // namespace ds
