// DeepSeek-V3.2 forward on CPU: load, batch plan validation, decoder layers, final norm and head
// (spec/model.md 4.1, 4.2, 9; D23, D27). MLA, indexer and FFN live in mla.cpp, indexer.cpp, moe.cpp.
#include "model/deepseek_v32.h"

#include <algorithm>
#include <set>
#include <stdexcept>
#include <string>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "model/model_core.h"

namespace ds {

Numerics parse_numerics(const std::string& s) {
  if (s == "official") return Numerics::Official;
  if (s == "exact") return Numerics::Exact;
  throw std::invalid_argument("--numerics: unknown value '" + s + "' (expected official or exact)");
}

const char* numerics_name(Numerics n) { return n == Numerics::Official ? "official" : "exact"; }

DeepseekV32::~DeepseekV32() = default;

std::unique_ptr<DeepseekV32> DeepseekV32::load(const std::string& dir, Numerics numerics, bool with_mtp) {
  std::unique_ptr<DeepseekV32> model(new DeepseekV32());
  model->numerics_ = numerics;
  model->impl_ = std::make_unique<Impl>();
  ModelCore& m = model->impl_->core;
  m.cfg = ModelConfig::load(dir);
  m.ckpt = Checkpoint::open(dir);
  m.official = numerics == Numerics::Official;
  const ModelConfig& c = m.cfg;
  if (c.qk_rope_head_dim % 2 != 0 || c.qk_rope_head_dim > c.index_head_dim)
    throw ConfigError(dir + "/config.json: qk_rope_head_dim must be even and <= index_head_dim");
  if (m.official && c.index_head_dim != 128)
    throw ConfigError(dir + "/config.json: official numerics need index_head_dim 128 (one FP8 group, spec 5.2)");
  if (c.n_routed_experts > 0 && (c.n_group <= 0 || c.n_routed_experts % c.n_group != 0))
    throw ConfigError(dir + "/config.json: n_routed_experts must be a multiple of n_group");
  bind_weights(m.ckpt, c, with_mtp, m.official, m.w);
  cpu::YarnParams y;
  y.enabled = c.rope_scaling.enabled;
  y.factor = c.rope_scaling.factor;
  y.original_max_position_embeddings = c.rope_scaling.original_max_position_embeddings;
  y.beta_fast = c.rope_scaling.beta_fast;
  y.beta_slow = c.rope_scaling.beta_slow;
  m.rope_freqs = cpu::rope_frequencies(c.qk_rope_head_dim, c.rope_theta, y);
  m.softmax_scale = float(c.softmax_scale());
  return model;
}

const ModelConfig& DeepseekV32::config() const { return impl_->core.cfg; }

std::unique_ptr<SequenceCache> DeepseekV32::new_cache() const {
  auto c = std::make_unique<SequenceCache>();
  c->layers.resize(size_t(impl_->core.cfg.num_hidden_layers));
  return c;
}

void DeepseekV32::init_kv_pool(int page_size, int64_t num_pages) {
  const ModelConfig& c = impl_->core.cfg;
  impl_->pool.reset();
  impl_->pool = std::make_unique<KvPool>(c.num_hidden_layers, KvDims{c.kv_lora_rank, c.qk_rope_head_dim, c.index_head_dim},
                                         page_size, num_pages);
}

const KvPool* DeepseekV32::kv_pool() const { return impl_->pool.get(); }

void StepRows::finish(const std::vector<float>& rope_freqs) {
  R = int64_t(pos.size());
  const int64_t nf = int64_t(rope_freqs.size());
  cos.resize(size_t(R * nf));
  sin.resize(size_t(R * nf));
  for (int64_t r = 0; r < R; ++r) cpu::rope_cos_sin(rope_freqs, pos[size_t(r)], cos.data() + r * nf, sin.data() + r * nf);
}

void check_segment_tokens(const std::string& where, const Segment& seg, int vocab) {
  for (int32_t t : seg.tokens)
    if (t < 0 || t >= vocab)
      throw std::invalid_argument(where + ": token id " + std::to_string(t) + " outside the vocabulary [0, " +
                                  std::to_string(vocab) + ")");
}

void resize_private_layer(KvLayer& l, const ModelConfig& c, size_t n) {
  l.latent.resize(n * size_t(c.kv_lora_rank));
  l.k_pe.resize(n * size_t(c.qk_rope_head_dim));
  l.index_k.resize(n * size_t(c.index_head_dim));
  l.index_k_scale.resize(n);
}

Logits DeepseekV32::forward(const BatchPlan& plan, ForwardHidden* hidden) {
  const ModelCore& m = impl_->core;
  const ModelConfig& c = m.cfg;
  KvPool* pool = impl_->pool.get();
  // Validate the whole plan before touching any cache.
  std::set<const SequenceCache*> seen;
  std::set<int32_t> written_pages;
  for (size_t s = 0; s < plan.segments.size(); ++s) {
    const Segment& seg = plan.segments[s];
    const std::string where = "batch plan segment " + std::to_string(s);
    if (seg.tokens.empty()) throw std::invalid_argument(where + ": no tokens");
    if (seg.start_pos < 0) throw std::invalid_argument(where + ": negative start_pos");
    if (seg.cache) {
      if (!seen.insert(seg.cache).second) throw std::invalid_argument(where + ": cache used by two segments");
      if (seg.cache->layers.size() != size_t(c.num_hidden_layers))
        throw std::invalid_argument(where + ": cache was not made by this model");
      if (seg.start_pos != seg.cache->length)
        throw std::invalid_argument(where + ": start_pos " + std::to_string(seg.start_pos) +
                                    " does not match the cache length " + std::to_string(seg.cache->length));
    } else {
      if (!pool) throw std::invalid_argument(where + ": no cache and no KV pool (call init_kv_pool)");
      const int64_t ps = pool->page_size(), end = int64_t(seg.start_pos) + int64_t(seg.tokens.size());
      if (int64_t(seg.page_table.size()) * ps < end)
        throw std::invalid_argument(where + ": page table of " + std::to_string(seg.page_table.size()) +
                                    " pages does not cover position " + std::to_string(end - 1));
      for (int64_t i = 0; i < (end + ps - 1) / ps; ++i) {
        const int32_t pg = seg.page_table[size_t(i)];
        if (pg < 0 || pg >= pool->num_pages())
          throw std::invalid_argument(where + ": page id " + std::to_string(pg) + " outside the pool [0, " +
                                      std::to_string(pool->num_pages()) + ")");
        if (i >= seg.start_pos / ps && !written_pages.insert(pg).second)
          throw std::invalid_argument(where + ": page " + std::to_string(pg) + " is written by two segments");
      }
    }
    check_segment_tokens(where, seg, c.vocab_size);
  }
  // Flatten rows.
  StepRows rows;
  std::vector<int32_t> tokens;
  std::vector<int64_t> logit_rows;
  Logits out = step_logits(c.vocab_size);
  for (size_t s = 0; s < plan.segments.size(); ++s) {
    const Segment& seg = plan.segments[s];
    KvView kv;
    if (seg.cache) {
      kv.layers = &seg.cache->layers;
      const size_t n = size_t(seg.start_pos) + seg.tokens.size();
      for (KvLayer& l : seg.cache->layers) resize_private_layer(l, c, n);  // private cache: slots [0, n)
    } else {
      kv.layers = &pool->layers();
      kv.pages = seg.page_table.data();
      kv.page_size = pool->page_size();
    }
    rows.add_segment(int(s), seg, kv, tokens, logit_rows, out);
  }
  rows.finish(m.rope_freqs);
  const int64_t R = rows.R, D = c.hidden_size;

  // 4.1 embedding; 4.2 layers with the fused residual norm.
  std::vector<float> resid(size_t(R * D)), f(size_t(R * D)), x(size_t(R * D)), o(size_t(R * D));
  for (int64_t r = 0; r < R; ++r) cpu::dequantize_rows(m.w.embed, tokens[size_t(r)], 1, resid.data() + r * D);
  const float eps = float(c.rms_norm_eps);
  rows.trace = trace_;
  if (trace_) {
    trace_->hidden.assign(size_t(c.num_hidden_layers), {});
    trace_->attn.assign(size_t(c.num_hidden_layers), {});
    trace_->index_sets.assign(size_t(c.num_hidden_layers), std::vector<std::vector<int32_t>>(size_t(R)));
    trace_->index_scores.assign(size_t(c.num_hidden_layers), std::vector<std::vector<float>>(size_t(R)));
  }
  auto rec = [&](int l, const char* name, const std::vector<float>& v) {  // ForwardTrace::record_ops
    if (float* t = trace_op(rows, l, name, v.size())) std::copy(v.begin(), v.end(), t);
  };
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const LayerWeights& L = m.w.layers[size_t(l)];
    for (int64_t r = 0; r < R; ++r)
      cpu::add_rmsnorm(l == 0 ? nullptr : f.data() + r * D, resid.data() + r * D, L.attn_norm.data(), D, eps,
                       x.data() + r * D, m.official);
    rec(l, "resid_in", resid);
    rec(l, "attn_in", x);
    mla_forward(m, l, rows, x.data(), o.data());
    rec(l, "wo", o);
    for (int64_t r = 0; r < R; ++r)
      cpu::add_rmsnorm(o.data() + r * D, resid.data() + r * D, L.ffn_norm.data(), D, eps, x.data() + r * D,
                       m.official);
    rec(l, "resid_attn", resid);
    rec(l, "ffn_in", x);
    ffn_forward(m, L, x.data(), R, f.data());
    rec(l, "ffn_out", f);
    if (trace_) {
      std::vector<float>& hl = trace_->hidden[size_t(l)];
      hl.resize(size_t(R * D));
      for (int64_t i = 0; i < R * D; ++i) hl[size_t(i)] = resid[size_t(i)] + f[size_t(i)];
    }
  }
  for (size_t s = 0; s < plan.segments.size(); ++s)
    if (plan.segments[s].cache) plan.segments[s].cache->length += int32_t(plan.segments[s].tokens.size());

  // Final norm and FP32 head for the rows that need logits (every row when `hidden` is asked for;
  // the norm is per row, so the logit rows' values are the same either way).
  const int64_t NL = int64_t(logit_rows.size());
  std::vector<float> h(size_t(NL * D));
  if (hidden) {
    hidden->pre_norm.resize(size_t(R * D));
    for (int64_t i = 0; i < R * D; ++i) hidden->pre_norm[size_t(i)] = resid[size_t(i)] + f[size_t(i)];
    hidden->post_norm.resize(size_t(R * D));
    for (int64_t r = 0; r < R; ++r)
      cpu::add_rmsnorm(f.data() + r * D, resid.data() + r * D, m.w.final_norm.data(), D, eps,
                       hidden->post_norm.data() + r * D, m.official);
    for (int64_t i = 0; i < NL; ++i)
      std::copy_n(hidden->post_norm.data() + logit_rows[size_t(i)] * D, D, h.data() + i * D);
  } else {
    for (int64_t i = 0; i < NL; ++i) {
      const int64_t r = logit_rows[size_t(i)];
      cpu::add_rmsnorm(f.data() + r * D, resid.data() + r * D, m.w.final_norm.data(), D, eps, h.data() + i * D,
                       m.official);
    }
  }
  out.data.resize(size_t(NL * c.vocab_size));
  cpu::gemm(h.data(), NL, m.w.lm_head, out.data.data(), cpu::GemmOptions{false, false});
  tokens_processed_ += uint64_t(R);
  return out;
}

}  // namespace ds
