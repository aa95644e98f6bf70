// Test-only emulation of the attention of DeepSeek's Nov-2025 demo (inference/model.py, MLA.forward)
// in official mode, switched on by ForwardTrace::demo_attention (docs/numerics.md "Oracle parity").
// It removes the engine's documented deviations 1-2 so that the oracle-B tests can measure what
// they contribute; the engine itself never uses it.
//  - prefill (a segment of > 1 token; the demo's `mask is not None` branch): MHA over keys expanded
//    with kv_b_proj through the FP8 linear (act_quant of the FP8-round-tripped latent, BF16 out):
//    scores = BF16(BF16(q . k) * softmax_scale), p = BF16(softmax_FP32(scores)), o = BF16(p . v);
//  - decode (one token): absorbed form as in the engine, but with the demo's BF16 einsums:
//    scores = BF16(BF16(BF16(q~ . c) + BF16(q_pe . k_pe)) * softmax_scale), p BF16.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"
#include "model/model_core.h"

namespace ds {
namespace {

// p[0..n) <- BF16(softmax(s)) with FP32 max/exp/sum (PyTorch's BF16 softmax computes in FP32).
void softmax_bf16(float* s, int n) {
  float mx = -INFINITY;
  for (int i = 0; i < n; ++i) mx = std::max(mx, s[i]);
  float sum = 0.f;
  for (int i = 0; i < n; ++i) {
    s[i] = std::exp(s[i] - mx);
    sum += s[i];
  }
  for (int i = 0; i < n; ++i) s[i] = round_bf16(s[i] / sum);
}

}  // namespace

void mla_demo_attention(const ModelCore& m, int layer, const StepRows& rows, const float* q,
                        const std::vector<std::vector<int32_t>>& selection, float* o) {
  const ModelConfig& c = m.cfg;
  const LayerWeights& L = m.w.layers[size_t(layer)];
  const int H = c.num_attention_heads, dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim, dv = c.v_head_dim;
  const int64_t C = c.kv_lora_rank, dq = dn + dr, hx = int64_t(H) * (dn + dv);
  if (!m.official) throw std::invalid_argument("demo_attention emulates official numerics only");
  for (size_t s = 0; s + 1 < rows.seg_begin.size(); ++s) {
    const KvView& kv = rows.kv[s];
    if (kv.pages) throw std::invalid_argument("demo_attention: private caches only");
    const KvLayer& cl = (*kv.layers)[size_t(layer)];
    const int64_t r0 = rows.seg_begin[s], r1 = rows.seg_begin[s + 1];
    const bool prefill = r1 - r0 > 1;
    const int64_t n_keys = int64_t(rows.pos[size_t(r1 - 1)]) + 1;
    // Prefill: k_nope / v of every key through the FP8 kv_b_proj linear (BF16 out).
    std::vector<float> kvx;
    if (prefill) {
      kvx.resize(size_t(n_keys * hx));
      cpu::gemm(cl.latent.data(), n_keys, L.kv_b, kvx.data(), m.lin(L.kv_b));
    }
    cpu::parallel_for(r1 - r0, [&](int64_t i) {
      const int64_t r = r0 + i;
      std::vector<int32_t> idx = selection[size_t(r)];
      if (idx.empty())
        for (int32_t p = 0; p <= rows.pos[size_t(r)]; ++p) idx.push_back(p);
      const int n = int(idx.size());
      std::vector<float> sc(static_cast<size_t>(n)), ql(static_cast<size_t>(C)), ol(static_cast<size_t>(C));
      for (int h = 0; h < H; ++h) {
        const float* qh = q + (r * H + h) * dq;
        float* out = o + r * int64_t(H) * dv + int64_t(h) * dv;
        if (prefill) {
          for (int t = 0; t < n; ++t) {
            const float* k = kvx.data() + int64_t(idx[size_t(t)]) * hx + int64_t(h) * (dn + dv);
            const float* kp = cl.k_pe.data() + int64_t(idx[size_t(t)]) * dr;
            const float v = cpu::dot_fixed(qh, k, dn) + cpu::dot_fixed(qh + dn, kp, dr);
            sc[size_t(t)] = round_bf16(round_bf16(v) * m.softmax_scale);
          }
          softmax_bf16(sc.data(), n);
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
          const float a = round_bf16(cpu::dot_fixed(ql.data(), cl.latent.data() + j * C, C));
          const float b = round_bf16(cpu::dot_fixed(qh + dn, cl.k_pe.data() + j * dr, dr));
          sc[size_t(t)] = round_bf16(round_bf16(a + b) * m.softmax_scale);
        }
        softmax_bf16(sc.data(), n);
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
