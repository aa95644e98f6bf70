// Multi-head latent attention in the absorbed (MQA) form for every position (spec/model.md 4.3-4.8).
#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/act_quant.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "model/model_core.h"

namespace ds {

void mla_attend(const ModelCore& m, const LayerWeights& L, const float* q, const SequenceCache::Layer& cache,
                const int32_t* idx, int n, float* out) {
  const ModelConfig& c = m.cfg;
  const int H = c.num_attention_heads, dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim, dv = c.v_head_dim;
  const int64_t C = c.kv_lora_rank, dq = dn + dr;
  thread_local std::vector<float> q_lat, q_pe, o_lat;
  q_lat.assign(size_t(H * C), 0.f);
  q_pe.resize(size_t(H * dr));
  o_lat.resize(size_t(H * C));
  for (int h = 0; h < H; ++h) {
    // q~ = W_UK^T q_nope (fixed order over d), BF16 in official mode (the demo's BF16 einsum).
    float* ql = q_lat.data() + h * C;
    const float* qn = q + h * dq;
    const float* wuk = L.w_uk.data() + int64_t(h) * dn * C;
    for (int d = 0; d < dn; ++d) {
      const float s = qn[d];
      const float* row = wuk + d * C;
      for (int64_t k = 0; k < C; ++k) ql[k] += s * row[k];
    }
    for (int64_t k = 0; k < C; ++k) ql[k] = m.rnd(ql[k]);
    std::copy(qn + dn, qn + dq, q_pe.data() + h * dr);
  }
  cpu::mqa_attention(q_lat.data(), q_pe.data(), H, int(C), dr, cache.latent.data(), cache.k_pe.data(), idx, n,
                     m.softmax_scale, o_lat.data());
  for (int h = 0; h < H; ++h) {
    float* ol = o_lat.data() + h * C;
    for (int64_t k = 0; k < C; ++k) ol[k] = m.rnd(ol[k]);
    const float* wuv = L.w_uv.data() + int64_t(h) * dv * C;
    for (int d = 0; d < dv; ++d) out[h * dv + d] = m.rnd(cpu::dot_fixed(wuv + d * C, ol, C));
  }
}

void mla_forward(const ModelCore& m, int layer, const StepRows& rows, const float* a, float* out) {
  const ModelConfig& c = m.cfg;
  const LayerWeights& L = m.layer_weights(layer);
  const int64_t R = rows.R, D = c.hidden_size, Q = c.q_lora_rank, C = c.kv_lora_rank;
  const int H = c.num_attention_heads, dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim, dv = c.v_head_dim;
  const int64_t dq = dn + dr, nf = dr / 2;
  const float eps = float(c.rms_norm_eps);

  // 4.3.1-2: q path.
  std::vector<float> qr(size_t(R * Q)), q(size_t(R * H * dq));
  cpu::gemm(a, R, L.q_a, qr.data(), m.lin(L.q_a));
  for (int64_t r = 0; r < R; ++r)
    cpu::rmsnorm(qr.data() + r * Q, L.q_a_norm.data(), Q, eps, qr.data() + r * Q, m.official);
  if (float* t = trace_op(rows, layer, "qr", qr.size())) std::copy(qr.begin(), qr.end(), t);
  cpu::gemm(qr.data(), R, L.q_b, q.data(), m.lin(L.q_b));
  // 4.3.3-6: latent and shared rope key.
  std::vector<float> ckv(size_t(R * (C + dr)));
  cpu::gemm(a, R, L.kv_a, ckv.data(), m.lin(L.kv_a));
  const bool round_trip = m.official && C % cpu::kQuantBlock == 0;
  float* t_kvn = trace_op(rows, layer, "kv_norm", size_t(R * C));
  float* t_kvf = trace_op(rows, layer, "kv_fp8", size_t(R * C));
  float* t_kpe = trace_op(rows, layer, "k_pe", size_t(R * dr));
  for (int64_t r = 0; r < R; ++r) {
    float* row = ckv.data() + r * (C + dr);
    cpu::rmsnorm(row, L.kv_a_norm.data(), C, eps, row, m.official);
    if (t_kvn) std::copy(row, row + C, t_kvn + r * C);
    if (round_trip) cpu::fp8_round_trip(row, 1, C);
    if (t_kvf) std::copy(row, row + C, t_kvf + r * C);
    const float* cs = rows.cos.data() + r * nf;
    const float* sn = rows.sin.data() + r * nf;
    cpu::rope_interleaved(row + C, cs, sn, int(nf), m.official);
    if (t_kpe) std::copy(row + C, row + C + dr, t_kpe + r * dr);
    for (int h = 0; h < H; ++h) cpu::rope_interleaved(q.data() + (r * H + h) * dq + dn, cs, sn, int(nf), m.official);
  }
  if (float* t = trace_op(rows, layer, "q", q.size())) std::copy(q.begin(), q.end(), t);
  // Spec 5: indexer keys appended, selections computed.
  std::vector<std::vector<int32_t>> selection;
  indexer_forward(m, layer, rows, a, qr.data(), selection);
  // 4.3.7: write latent and k_pe into each row's slot (private caches were sized by the forward).
  for (int64_t r = 0; r < R; ++r) {
    const KvView& kv = rows.kv[size_t(rows.seg[r])];
    KvLayer& cl = (*kv.layers)[size_t(layer)];
    const int64_t slot = kv.slot(rows.pos[r]);
    const float* row = ckv.data() + r * (C + dr);
    std::copy(row, row + C, cl.latent.data() + slot * C);
    std::copy(row + C, row + C + dr, cl.k_pe.data() + slot * dr);
  }
  // 4.7: attention per row over its selected (or all causal) keys; rows are independent.
  std::vector<float> o(size_t(R * H * dv));
  if (rows.trace && rows.trace->demo_attention()) mla_demo_attention(m, layer, rows, q.data(), selection, o.data());
  else cpu::parallel_for(R, [&](int64_t r) {
    const KvView& kv = rows.kv[size_t(rows.seg[r])];
    const KvLayer& cl = (*kv.layers)[size_t(layer)];
    const std::vector<int32_t>* idx = &selection[size_t(r)];
    thread_local std::vector<int32_t> all;
    if (idx->empty()) {
      all.resize(size_t(rows.pos[r]) + 1);
      for (int64_t p = 0; p <= rows.pos[r]; ++p) all[size_t(p)] = int32_t(kv.slot(p));
      idx = &all;
    }
    mla_attend(m, L, q.data() + r * H * dq, cl, idx->data(), int(idx->size()), o.data() + r * H * dv);
  });
  if (rows.trace && size_t(layer) < rows.trace->attn_override.size() &&
      !rows.trace->attn_override[size_t(layer)].empty()) {
    const std::vector<float>& ov = rows.trace->attn_override[size_t(layer)];
    if (ov.size() != o.size())
      throw std::invalid_argument("ForwardTrace::attn_override: layer " + std::to_string(layer) + " has " +
                                  std::to_string(ov.size()) + " values, the attention output has " +
                                  std::to_string(o.size()));
    o = ov;
  }
  if (rows.trace) rows.trace->attn[size_t(layer)] = o;
  // 4.8: output projection.
  cpu::gemm(o.data(), R, L.o, out, m.lin(L.o));
  (void)D;
}

}  // namespace ds
