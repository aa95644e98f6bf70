// DeepSeek Sparse Attention lightning indexer (spec/model.md 5).
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/act_quant.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/hadamard.h"
#include "kernels/cpu/index_score.h"
#include "kernels/cpu/layernorm.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/rope.h"
#include "model/model_core.h"

namespace ds {
namespace {

// Official mode: Hadamard (BF16 out) then FP8 quantization of one 128-vector; returns the scale.
// `had` (optional, ForwardTrace::record_ops) receives the Hadamard output.
float rotate_and_quantize(const ModelCore& m, float* v, int D, float* had = nullptr) {
  if (!m.official) return 1.0f;
  cpu::hadamard_transform(v, D, 1.0f / std::sqrt(float(D)));
  for (int i = 0; i < D; ++i) v[i] = round_bf16(v[i]);
  if (had) std::copy(v, v + D, had);
  float s;
  cpu::act_quant(v, 1, D, v, &s);
  return s;
}

}  // namespace

void indexer_forward(const ModelCore& m, int layer, const StepRows& rows, const float* a, const float* qr,
                     std::vector<std::vector<int32_t>>& selection) {
  const ModelConfig& c = m.cfg;
  const LayerWeights& L = m.layer_weights(layer);
  const int64_t R = rows.R;
  const int Hi = c.index_n_heads, D = c.index_head_dim, dr = c.qk_rope_head_dim, nf = dr / 2;
  const float eps = float(c.rms_norm_eps);
  selection.assign(size_t(R), {});

  // 5.2 steps 3-8: keys k_I = Hadamard(RoPE(LayerNorm(wk x))) -> FP8, appended to the cache.
  std::vector<float> k(size_t(R * D)), ks(static_cast<size_t>(R));
  cpu::gemm(a, R, L.idx_wk, k.data(), m.lin(L.idx_wk));
  float* t_khad = trace_op(rows, layer, "idx_k_had", size_t(R * D));
  for (int64_t r = 0; r < R; ++r) {
    float* kr = k.data() + r * D;
    cpu::layernorm(kr, L.idx_k_norm_w.data(), L.idx_k_norm_b.data(), D, eps, kr, m.official);
    cpu::rope_half_split(kr, rows.cos.data() + r * nf, rows.sin.data() + r * nf, nf, m.official);
    ks[size_t(r)] = rotate_and_quantize(m, kr, D, t_khad ? t_khad + r * D : nullptr);
  }
  if (float* t = trace_op(rows, layer, "idx_k_fp8", k.size())) std::copy(k.begin(), k.end(), t);
  if (float* t = trace_op(rows, layer, "idx_k_scale", ks.size())) std::copy(ks.begin(), ks.end(), t);
  for (int64_t r = 0; r < R; ++r) {
    const KvView& kv = rows.kv[size_t(rows.seg[r])];
    KvLayer& cl = (*kv.layers)[size_t(layer)];
    const int64_t slot = kv.slot(rows.pos[r]);
    std::copy(k.data() + r * D, k.data() + (r + 1) * D, cl.index_k.data() + slot * D);
    cl.index_k_scale[size_t(slot)] = ks[size_t(r)];
  }
  // Rows with at most index_topk causal keys attend to all of them (spec 5.3): no scoring needed.
  bool any = false;
  for (int64_t r = 0; r < R; ++r) any = any || rows.pos[r] + 1 > c.index_topk;
  if (!any) return;

  // 5.2 steps 1-2, 9-10: queries, head weights, scores, top-k.
  std::vector<float> q(size_t(R * Hi * D)), w(size_t(R * Hi));
  cpu::gemm(qr, R, L.idx_wq_b, q.data(), m.lin(L.idx_wq_b));
  cpu::gemm(a, R, L.idx_weights_proj, w.data(), cpu::GemmOptions{false, false});  // FP32 (Nov demo)
  const float head_scale = 1.0f / std::sqrt(float(Hi));
  const float dim_scale = 1.0f / std::sqrt(float(D));
  float* t_qhad = trace_op(rows, layer, "idx_q_had", q.size());
  float* t_qfp8 = trace_op(rows, layer, "idx_q_fp8", q.size());
  float* t_qs = trace_op(rows, layer, "idx_q_scale", w.size());
  float* t_w = trace_op(rows, layer, "idx_w", w.size());
  cpu::parallel_for(R, [&](int64_t r) {
    const int32_t pos = rows.pos[r];
    if (pos + 1 <= c.index_topk) return;
    thread_local std::vector<float> wj, scores;
    wj.resize(size_t(Hi));
    float* qrow = q.data() + r * Hi * D;
    for (int j = 0; j < Hi; ++j) {
      float* qj = qrow + int64_t(j) * D;
      cpu::rope_half_split(qj, rows.cos.data() + r * nf, rows.sin.data() + r * nf, nf, m.official);
      const int64_t hj = r * Hi + j;
      const float q_scale = rotate_and_quantize(m, qj, D, t_qhad ? t_qhad + hj * D : nullptr);
      wj[size_t(j)] = w[size_t(hj)] * head_scale * q_scale * dim_scale;
      if (t_qfp8) {
        std::copy(qj, qj + D, t_qfp8 + hj * D);
        t_qs[hj] = q_scale;
        t_w[hj] = wj[size_t(j)];
      }
    }
    const KvView& kv = rows.kv[size_t(rows.seg[r])];
    const KvLayer& cl = (*kv.layers)[size_t(layer)];
    const int64_t n_keys = int64_t(pos) + 1;
    scores.resize(size_t(n_keys));
    // Keys are scored independently, so scoring page by page gives the same values as one run.
    const int64_t run = kv.pages ? kv.page_size : n_keys;
    for (int64_t p0 = 0; p0 < n_keys; p0 += run) {
      const int64_t slot = kv.slot(p0), n = std::min(run, n_keys - p0);
      cpu::index_scores(qrow, wj.data(), Hi, D, cl.index_k.data() + slot * D, cl.index_k_scale.data() + slot, n,
                        scores.data() + p0);
    }
    std::vector<int32_t> sel = cpu::topk_indices(scores.data(), n_keys, c.index_topk);
    if (rows.trace) {
      rows.trace->index_sets[size_t(layer)][size_t(r)] = sel;
      rows.trace->index_scores[size_t(layer)][size_t(r)] = scores;
    }
    for (int32_t& p : sel) p = int32_t(kv.slot(p));
    selection[size_t(r)] = std::move(sel);
  });
}

}  // namespace ds
