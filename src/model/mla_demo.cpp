// Test-only emulation of the attention of DeepSeek's Nov-2025 demo (inference/model.py, MLA.forward)
// in official mode, switched on by ForwardTrace::demo_expanded_prefill / demo_bf16_scores
// (docs/numerics.md "Oracle parity"). It removes the engine's documented deviations 2 and 1, one
// at a time or both, so that the oracle-B tests can measure what they contribute; the engine
// itself never uses it. With R = BF16 rounding if demo_bf16_scores, else identity:
//  - prefill (a segment of > 1 token; the demo's `mask is not None` branch) if
//    demo_expanded_prefill: MHA over keys expanded with kv_b_proj through the FP8 linear
//    (act_quant of the FP8-round-tripped latent, BF16 out):
//    scores = R(R(q . k) * softmax_scale), p = R(softmax_FP32(scores)), o = BF16(p . v);
//  - otherwise (decode; prefill without demo_expanded_prefill): the engine's absorbed form with
//    the demo's einsum roundings: scores = R(R(R(q~ . c) + R(q_pe . k_pe)) * softmax_scale), p R.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"
#include "model/model_core.h"

namespace ds {
namespace {

// p[0..n) <- R(softmax(s)) with FP32 max/exp/sum (PyTorch's BF16 softmax computes in FP32).
void softmax_r(float* s, int n, bool bf16) {
  float mx = -INFINITY;
  for (int i = 0; i < n; ++i) mx = std::max(mx, s[i]);
  float sum = 0.f;
  for (int i = 0; i < n; ++i) {
    s[i] = std::exp(s[i] - mx);
    sum += s[i];
  }
  for (int i = 0; i < n; ++i) s[i] = bf16 ? round_bf16(s[i] / sum) : s[i] / sum;
}

}  // namespace

void mla_demo_attention(const ModelCore& m, int layer, const StepRows& rows, const float* q,
                        const std::vector<std::vector<int32_t>>& selection, float* o) {
  const ModelConfig& c = m.cfg;
  const LayerWeights& L = m.layer_weights(layer);
  const int H = c.num_attention_heads, dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim, dv = c.v_head_dim;
  const int64_t C = c.kv_lora_rank, dq = dn + dr, hx = int64_t(H) * (dn + dv);
  const ForwardTrace& tr = *rows.trace;
  const bool b16 = tr.demo_bf16_scores;
  auto R = [b16](float x) { return b16 ? round_bf16(x) : x; };
  if (!m.official) throw std::invalid_argument("demo attention emulation covers official numerics only");
  // ForwardTrace::record_ops: kv_b per key position, scores / probs [R, H, T] (NaN = not attended).
  int64_t T = 0;
  for (int64_t r = 0; r < rows.R; ++r) T = std::max<int64_t>(T, int64_t(rows.pos[size_t(r)]) + 1);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  float* t_kvb = trace_op(rows, layer, "kv_b", size_t(rows.R * hx));
  float* t_raw = trace_op(rows, layer, "scores_raw", size_t(rows.R * H * T), nan);
  float* t_sc = trace_op(rows, layer, "scores", size_t(rows.R * H * T), nan);
  float* t_pr = trace_op(rows, layer, "probs", size_t(rows.R * H * T), nan);
  for (size_t s = 0; s + 1 < rows.seg_begin.size(); ++s) {
    const KvView& kv = rows.kv[s];
    if (kv.pages) throw std::invalid_argument("demo attention emulation: private caches only");
    const KvLayer& cl = (*kv.layers)[size_t(layer)];
    const int64_t r0 = rows.seg_begin[s], r1 = rows.seg_begin[s + 1];
    const bool prefill = tr.demo_expanded_prefill && r1 - r0 > 1;
    const int64_t n_keys = int64_t(rows.pos[size_t(r1 - 1)]) + 1;
    // Prefill: k_nope / v of every key through the FP8 kv_b_proj linear (BF16 out).
    std::vector<float> kvx;
    if (prefill) {
      kvx.resize(size_t(n_keys * hx));
      cpu::gemm(cl.latent.data(), n_keys, L.kv_b, kvx.data(), m.lin(L.kv_b));
      if (t_kvb && rows.pos[size_t(r0)] == 0) std::copy(kvx.begin(), kvx.end(), t_kvb + r0 * hx);
    }
    cpu::parallel_for(r1 - r0, [&](int64_t i) {
      const int64_t r = r0 + i;
      std::vector<int32_t> idx = selection[size_t(r)];
      if (idx.empty())
        for (int32_t p = 0; p <= rows.pos[size_t(r)]; ++p) idx.push_back(p);
      const int n = int(idx.size());
      std::vector<float> sc(static_cast<size_t>(n)), raw(static_cast<size_t>(n)), ql(static_cast<size_t>(C)),
          ol(static_cast<size_t>(C));
      for (int h = 0; h < H; ++h) {
        const float* qh = q + (r * H + h) * dq;
        float* out = o + r * int64_t(H) * dv + int64_t(h) * dv;
        const int64_t tb = (r * H + h) * T;  // trace row of (r, h)
        auto record = [&](const float* raw) {
          if (!t_raw) return;
          for (int t = 0; t < n; ++t) {
            t_raw[tb + idx[size_t(t)]] = raw[t];
            t_sc[tb + idx[size_t(t)]] = sc[size_t(t)];
          }
        };
        auto record_p = [&] {
          if (t_pr)
            for (int t = 0; t < n; ++t) t_pr[tb + idx[size_t(t)]] = sc[size_t(t)];
        };
        if (prefill) {
          for (int t = 0; t < n; ++t) {
            const float* k = kvx.data() + int64_t(idx[size_t(t)]) * hx + int64_t(h) * (dn + dv);
            const float* kp = cl.k_pe.data() + int64_t(idx[size_t(t)]) * dr;
            const float v = cpu::dot_fixed(qh, k, dn) + cpu::dot_fixed(qh + dn, kp, dr);
            raw[size_t(t)] = R(v);
            sc[size_t(t)] = R(raw[size_t(t)] * m.softmax_scale);
          }
          record(raw.data());
          softmax_r(sc.data(), n, b16);
          record_p();
          std::fill(out, out + dv, 0.f);
          for (int t = 0; t < n; ++t) {
            const float* v = kvx.data() + int64_t(idx[size_t(t)]) * hx + int64_t(h) * (dn + dv) + dn;
            for (int d = 0; d < dv; ++d) out[d] += sc[size_t(t)] * v[d];
          }
          for (int d = 0; d < dv; ++d) out[d] = round_bf16(out[d]);
          continue;
        }
        std::fill(ql.begin(), ql.end(), 0.f);
        const float* wuk = L.w_uk.data() + int64_t(h) * dn * C;
        for (int d = 0; d < dn; ++d)
          for (int64_t k = 0; k < C; ++k) ql[size_t(k)] += qh[d] * wuk[d * C + k];
        for (float& x : ql) x = round_bf16(x);
        for (int t = 0; t < n; ++t) {
          const int64_t j = idx[size_t(t)];
          const float a = R(cpu::dot_fixed(ql.data(), cl.latent.data() + j * C, C));
          const float b = R(cpu::dot_fixed(qh + dn, cl.k_pe.data() + j * dr, dr));
          raw[size_t(t)] = R(a + b);
          sc[size_t(t)] = R(raw[size_t(t)] * m.softmax_scale);
        }
        record(raw.data());
        softmax_r(sc.data(), n, b16);
        record_p();
        std::fill(ol.begin(), ol.end(), 0.f);
        for (int t = 0; t < n; ++t)
          for (int64_t k = 0; k < C; ++k) ol[size_t(k)] += sc[size_t(t)] * cl.latent[size_t(idx[size_t(t)] * C + k)];
        for (float& x : ol) x = round_bf16(x);
        const float* wuv = L.w_uv.data() + int64_t(h) * dv * C;
        for (int d = 0; d < dv; ++d) out[d] = round_bf16(cpu::dot_fixed(wuv + d * C, ol.data(), C));
      }
    });
  }
}

}  // namespace ds
