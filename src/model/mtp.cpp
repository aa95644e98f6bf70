// The MTP module forward on CPU (spec/model.md 7.1): draft logits from the main model's hidden
// states and the next tokens, through the MTP layer (index num_hidden_layers) with its own cache.
// The decoder layer is the main layers' code (mla_forward / ffn_forward); see deepseek_v32.h.
#include <algorithm>
#include <set>
#include <stdexcept>
#include <string>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "model/deepseek_v32.h"
#include "model/model_core.h"

namespace ds {

bool DeepseekV32::has_mtp() const { return !impl_->core.w.mtp.empty(); }

std::unique_ptr<SequenceCache> DeepseekV32::new_mtp_cache() const {
  if (!has_mtp()) throw std::logic_error("new_mtp_cache: the model was loaded without MTP weights (load with_mtp)");
  auto c = std::make_unique<SequenceCache>();
  c->layers.resize(size_t(impl_->core.cfg.num_hidden_layers) + 1);
  return c;
}

Logits DeepseekV32::mtp_forward(const BatchPlan& plan, const std::vector<float>& h, std::vector<float>* mtp_hidden) {
  if (!has_mtp()) throw std::logic_error("mtp_forward: the model was loaded without MTP weights (load with_mtp)");
  const ModelCore& m = impl_->core;
  const ModelConfig& c = m.cfg;
  const MtpWeights& W = m.w.mtp[0];
  const int layer = c.num_hidden_layers;  // the (single, spec 7.2) MTP layer
  // Validate everything before touching a cache.
  std::set<const SequenceCache*> seen;
  size_t R_total = 0;
  for (size_t s = 0; s < plan.segments.size(); ++s) {
    const Segment& seg = plan.segments[s];
    const std::string where = "MTP batch plan segment " + std::to_string(s);
    if (seg.tokens.empty()) throw std::invalid_argument(where + ": no tokens");
    if (!seg.cache) throw std::invalid_argument(where + ": no cache (the MTP layer runs on new_mtp_cache() caches only)");
    if (!seen.insert(seg.cache).second) throw std::invalid_argument(where + ": cache used by two segments");
    if (seg.cache->layers.size() != size_t(layer) + 1)
      throw std::invalid_argument(where + ": cache was not made by new_mtp_cache()");
    if (seg.start_pos != seg.cache->length)
      throw std::invalid_argument(where + ": start_pos " + std::to_string(seg.start_pos) +
                                  " does not match the cache length " + std::to_string(seg.cache->length));
    check_segment_tokens(where, seg, c.vocab_size);
    R_total += seg.tokens.size();
  }
  const int64_t D = c.hidden_size;
  if (h.size() != R_total * size_t(D))
    throw std::invalid_argument("mtp_forward: h has " + std::to_string(h.size()) + " floats, expected " +
                                std::to_string(R_total) + " rows x hidden_size " + std::to_string(D));
  // Flatten rows (as forward does); only the MTP layer's cache slots are sized and written.
  StepRows rows;
  std::vector<int32_t> tokens;
  std::vector<int64_t> logit_rows;
  Logits out = step_logits(c.vocab_size);
  for (size_t s = 0; s < plan.segments.size(); ++s) {
    const Segment& seg = plan.segments[s];
    resize_private_layer(seg.cache->layers[size_t(layer)], c, size_t(seg.start_pos) + seg.tokens.size());
    KvView kv;
    kv.layers = &seg.cache->layers;
    rows.add_segment(int(s), seg, kv, tokens, logit_rows, out);
  }
  rows.finish(m.rope_freqs);
  const int64_t R = rows.R;

  // 7.1 steps 1-3: u = eh_proj([enorm(embed(x)) ; hnorm(h)]), embedding first; norms rounded to
  // BF16 in official mode like every other RMSNorm output.
  const float eps = float(c.rms_norm_eps);
  std::vector<float> eh(size_t(R * 2 * D)), e(static_cast<size_t>(D));
  for (int64_t r = 0; r < R; ++r) {
    cpu::dequantize_rows(W.embed, tokens[size_t(r)], 1, e.data());
    cpu::rmsnorm(e.data(), W.enorm.data(), D, eps, eh.data() + r * 2 * D, m.official);
    cpu::rmsnorm(h.data() + r * D, W.hnorm.data(), D, eps, eh.data() + r * 2 * D + D, m.official);
  }
  std::vector<float> resid(size_t(R * D)), f(size_t(R * D)), x(size_t(R * D)), o(size_t(R * D));
  cpu::gemm(eh.data(), R, W.eh_proj, resid.data(), m.lin(W.eh_proj));
  // 7.1 step 4: one decoder layer with u as the initial residual (spec 4.2 skeleton).
  const LayerWeights& L = W.layer;
  for (int64_t r = 0; r < R; ++r)
    cpu::add_rmsnorm(nullptr, resid.data() + r * D, L.attn_norm.data(), D, eps, x.data() + r * D, m.official);
  mla_forward(m, layer, rows, x.data(), o.data());
  for (int64_t r = 0; r < R; ++r)
    cpu::add_rmsnorm(o.data() + r * D, resid.data() + r * D, L.ffn_norm.data(), D, eps, x.data() + r * D, m.official);
  ffn_forward(m, L, x.data(), R, f.data());
  for (const Segment& seg : plan.segments) seg.cache->length += int32_t(seg.tokens.size());
  // 7.1 step 5: shared_head.norm over every row, FP32 head on the logit rows.
  std::vector<float> hm(size_t(R * D));
  for (int64_t r = 0; r < R; ++r)
    cpu::add_rmsnorm(f.data() + r * D, resid.data() + r * D, W.head_norm.data(), D, eps, hm.data() + r * D, m.official);
  const int64_t NL = int64_t(logit_rows.size());
  std::vector<float> hl(size_t(NL * D));
  for (int64_t i = 0; i < NL; ++i) std::copy_n(hm.data() + logit_rows[size_t(i)] * D, D, hl.data() + i * D);
  out.data.resize(size_t(NL * c.vocab_size));
  cpu::gemm(hl.data(), NL, W.head, out.data.data(), cpu::GemmOptions{false, false});
  if (mtp_hidden) *mtp_hidden = std::move(hm);
  return out;
}

}  // namespace ds
