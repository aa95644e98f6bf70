// Exact-mode forward of the CUDA runner (see cuda_model_exact.h). Mirrors the CPU engine with
// Numerics::Exact op for op; comments name the CPU step each call mirrors. Nothing is rounded:
// every activation, cache entry and weight product is FP32 (W_UK/W_UV F32, FP8 weights multiplied
// as fp8 * scale in FP32 by gemm_fp8_small_m).
#include "cuda/cuda_model_exact.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/expert_groups.h"
#include "kernels/elementwise.h"
#include "kernels/exact_ops.h"
#include "kernels/indexer.h"
#include "kernels/rope.h"
#include "kernels/router.h"

namespace ds::cuda {
namespace {

struct Bufs {
  float *resid, *f, *x, *qr, *q, *ckv, *q_lat, *q_pe, *o_lat, *ao, *of;
  float *k, *qi, *wraw, *wj, *ones, *scores;
  float *g, *u, *xe, *yt, *ye, *ysh, *rlogits, *wts, *hf, *logits;
  int32_t *idx, *ids;
};

Bufs plan(StepArena& a, const ModelConfig& c, const ExactStepInputs& in) {
  Bufs b{};
  const int64_t R = in.R, D = c.hidden_size, H = c.num_attention_heads, C = c.kv_lora_rank;
  const int64_t dr = c.qk_rope_head_dim, dq = c.qk_head_dim(), Hi = c.index_n_heads, Di = c.index_head_dim;
  const int64_t inter = std::max<int64_t>({c.intermediate_size, int64_t(c.n_shared_experts) * c.moe_intermediate_size,
                                           c.moe_intermediate_size, 1});
  const int64_t E = std::max(c.n_routed_experts, 1), K = std::max(c.num_experts_per_tok, 1);
  b.resid = a.take<float>(R * D);
  b.f = a.take<float>(R * D);
  b.x = a.take<float>(R * D);
  b.qr = a.take<float>(R * c.q_lora_rank);
  b.q = a.take<float>(R * H * dq);
  b.ckv = a.take<float>(R * (C + dr));
  b.q_lat = a.take<float>(R * H * C);
  b.q_pe = a.take<float>(R * H * dr);
  b.o_lat = a.take<float>(R * H * C);
  b.ao = a.take<float>(R * H * c.v_head_dim);
  b.of = a.take<float>(R * D);
  b.k = a.take<float>(R * Di);
  b.qi = a.take<float>(R * Hi * Di);
  b.wraw = a.take<float>(R * Hi);
  b.wj = a.take<float>(R * Hi);
  b.ones = a.take<float>(R * Hi);
  b.scores = a.take<float>(R * in.max_keys);
  b.idx = a.take<int32_t>(R * c.index_topk);
  b.g = a.take<float>(R * inter);
  b.u = a.take<float>(R * inter);
  b.xe = a.take<float>(R * D);
  b.yt = a.take<float>(R * D);
  b.ye = a.take<float>(R * K * D);
  b.ysh = a.take<float>(R * D);
  b.rlogits = a.take<float>(R * E);
  b.ids = a.take<int32_t>(R * K);
  b.wts = a.take<float>(R * K);
  b.hf = a.take<float>(in.NL * D);
  b.logits = a.take<float>(in.NL * c.vocab_size);
  return b;
}

// ModelCore::lin in exact mode: x (FP32) times the FP32 value of W, FP32 out.
void linear(const float* x, int64_t M, const LinearDev& w, float* y, cudaStream_t st) {
  if (w.fp8) gemm_fp8_f32(x, M, w.f8, y, st);
  else gemm_dense(x, M, w.dense, y, false, st);
}

// moe.cpp swiglu() in exact mode: y = down(silu(gate x) * up x), no rounding.
void swiglu_ffn(const FfnDev& f, const float* x, int64_t n, float* y, const Bufs& b, cudaStream_t st) {
  if (n == 0) return;
  linear(x, n, f.gate, b.g, st);
  linear(x, n, f.up, b.u, st);
  swiglu(b.g, b.u, n * f.gate.rows(), b.g, false, st);
  linear(b.g, n, f.down, y, st);
}

std::vector<float> download(const float* d, int64_t n, cudaStream_t st) {
  std::vector<float> h(static_cast<size_t>(n));
  DS_CUDA_CHECK(cudaStreamSynchronize(st));
  DS_CUDA_CHECK(cudaMemcpy(h.data(), d, size_t(n) * 4, cudaMemcpyDeviceToHost));
  return h;
}

}  // namespace

const float* ExactForward::run(const DeviceWeights& w, const ExactStepInputs& in, const ExactKv& kv, const float* freqs,
                               int n_freq, CudaModel::LayerCapture* cap, cudaStream_t st) {
  const ModelConfig& c = w.config();
  const int64_t R = in.R, NL = in.NL, D = c.hidden_size, H = c.num_attention_heads, C = c.kv_lora_rank;
  const int64_t dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim, dq = c.qk_head_dim();
  const int64_t Hi = c.index_n_heads, Di = c.index_head_dim, topk = c.index_topk;
  const int K = c.num_experts_per_tok, E = c.n_routed_experts;
  const float eps = float(c.rms_norm_eps);
  StepArena sa;
  sa.reset(nullptr);
  plan(sa, c, in);
  step_.ensure(sa.used());
  sa.reset(&step_);
  const Bufs a = plan(sa, c, in);
  moe_index_.ensure(size_t(std::max<int64_t>(R * std::max(K, 1), 1)) * 2 * sizeof(int32_t));
  int32_t* moe_src = moe_index_.as<int32_t>();
  int32_t* moe_dst = moe_src + R * std::max(K, 1);
  if (cap) cap->attn.clear(), cap->hidden.clear();
  fill_random_f32(a.ones, R * Hi, 0, 0.f, 1.f, st);  // q_scale = 1 (indexer.cpp: rotate_and_quantize)

  // deepseek_v32.cpp 4.1: embedding values in FP32.
  embed_gather_f32(w.embed(), w.embed_bf16(), in.tokens, R, D, a.resid, st);
  for (int li = 0; li < c.num_hidden_layers; ++li) {
    const LayerDev& L = w.layers()[size_t(li)];
    float* mla_cache = kv.mla + size_t(li) * size_t(kv.slots) * size_t(C + dr);
    float* idx_cache = kv.idx + size_t(li) * size_t(kv.slots) * size_t(Di);
    // 4.2: s = f + resid, resid <- s, x = RMSNorm(s) (layer 0: no f); no rounding.
    add_rmsnorm_f32(li == 0 ? nullptr : a.f, a.resid, L.attn_norm, R, D, eps, a.x, st);
    // mla.cpp 4.3.1-2: q path (q_a and kv_a as separate FP32 GEMMs; the fused weight's views).
    const int64_t QL = c.q_lora_rank;
    linear(a.x, R, L.q_a, a.qr, st);
    rmsnorm_f32(a.qr, QL, L.q_a_norm, R, QL, eps, a.qr, QL, false, st);
    linear(a.qr, R, L.q_b, a.q, st);
    // 4.3.3-6: latent RMSNorm (no FP8 round trip) and the shared rope key; RoPE on q_pe.
    linear(a.x, R, L.kv_a, a.ckv, st);
    rmsnorm_f32(a.ckv, C + dr, L.kv_a_norm, R, C, eps, a.ckv, C + dr, false, st);
    rope_apply(RopeView{a.ckv, RopeType::F32, R, 1, C + dr, 0, C}, in.pos, freqs, n_freq, RopeLayout::Interleaved,
               false, st);
    rope_apply(RopeView{a.q, RopeType::F32, R, H, H * dq, dq, dn}, in.pos, freqs, n_freq, RopeLayout::Interleaved,
               false, st);
    // indexer.cpp 5.2 steps 3-8: keys = RoPE(LayerNorm(wk x)), FP32, no Hadamard, no FP8.
    linear(a.x, R, L.idx_wk, a.k, st);
    layernorm_f32(a.k, L.idx_k_norm_w, L.idx_k_norm_b, R, Di, eps, a.k, false, st);
    rope_apply(RopeView{a.k, RopeType::F32, R, 1, Di, 0, 0}, in.pos, freqs, n_freq, RopeLayout::HalfSplit, false, st);
    scatter_rows_f32(a.k, Di, R, Di, in.slots, idx_cache, st);
    // 5.2 steps 1-2, 9-10: queries, head weights (q_scale 1) and scores, only when some row has
    // more than index_topk keys; the selection (all causal slots for short rows) always.
    if (in.any_scored) {
      linear(a.qr, R, L.idx_wq_b, a.qi, st);
      gemm_dense(a.x, R, L.idx_weights_proj, a.wraw, false, st);
      rope_apply(RopeView{a.qi, RopeType::F32, R, Hi, Hi * Di, Di, 0}, in.pos, freqs, n_freq, RopeLayout::HalfSplit,
                 false, st);
      index_head_weights(a.wraw, a.ones, R * Hi, 1.0f / std::sqrt(float(Hi)), 1.0f / std::sqrt(float(Di)), a.wj, st);
      index_scores_f32(a.qi, a.wj, R, int(Hi), int(Di), idx_cache, in.pages, int(in.max_pages), kv.page_size,
                       in.n_keys, int(topk), in.max_keys, a.scores, st);
    }
    IndexerArgs ia;
    ia.R = R;
    ia.pages = in.pages;
    ia.max_pages = int(in.max_pages);
    ia.page_size = kv.page_size;
    ia.n_keys = in.n_keys;
    indexer_topk_scored(ia, int(topk), in.max_keys, a.scores, a.idx, st);
    // 4.3.7: latent + k_pe into the rows' slots (before attention: rows of a chunk see each other).
    scatter_rows_f32(a.ckv, C + dr, R, C + dr, in.slots, mla_cache, st);
    // 4.7: absorbed attention, all FP32.
    mla_absorb_q(a.q, R, int(dq), L.w_uk, a.q_lat, a.q_pe, false, st);
    mla_attention_f32(a.q_lat, a.q_pe, R, int(H), int(C), int(dr), mla_cache, a.idx, in.n_attn, int(topk),
                      float(c.softmax_scale()), a.o_lat, st);
    mla_absorb_out(a.o_lat, R, L.w_uv, a.ao, false, st);
    if (cap) cap->attn.push_back(download(a.ao, R * H * c.v_head_dim, st));
    // 4.8 output projection; then the FFN's residual norm.
    linear(a.ao, R, L.o, a.of, st);
    add_rmsnorm_f32(a.of, a.resid, L.ffn_norm, R, D, eps, a.x, st);
    // moe.cpp: dense SwiGLU, or routed experts (grouped by expert on the host) + shared expert.
    if (!L.moe) {
      swiglu_ffn(L.dense, a.x, R, a.f, a, st);
    } else {
      gemm_dense(a.x, R, L.router, a.rlogits, false, st);
      const RouterShape rs{E, c.n_group, c.topk_group, K, c.norm_topk_prob, float(c.routed_scaling_factor)};
      moe_route(a.rlogits, L.router_bias, R, rs, a.ids, a.wts, st);
      std::vector<int32_t> ids(size_t(R * K));
      DS_CUDA_CHECK(cudaMemcpyAsync(ids.data(), a.ids, ids.size() * 4, cudaMemcpyDeviceToHost, st));
      DS_CUDA_CHECK(cudaStreamSynchronize(st));
      // Per expert e, its (row, k) pairs i = r * K + k in ascending i (moe.cpp's order).
      const ExpertGroups gr = group_by_expert(ids, R, K, E);
      DS_CUDA_CHECK(cudaMemcpyAsync(moe_src, gr.src.data(), gr.src.size() * 4, cudaMemcpyHostToDevice, st));
      DS_CUDA_CHECK(cudaMemcpyAsync(moe_dst, gr.dst.data(), gr.dst.size() * 4, cudaMemcpyHostToDevice, st));
      for (int e = 0; e < E; ++e) {
        const int64_t o0 = gr.off[size_t(e)], n = gr.off[size_t(e) + 1] - o0;
        if (n == 0) continue;
        if (n > R)  // the expert buffers hold R rows: a row routes to K distinct experts
          throw std::runtime_error("CUDA runner (exact): expert " + std::to_string(e) + " got " + std::to_string(n) +
                                   " pairs from " + std::to_string(R) + " rows (duplicate expert ids in a row)");
        gather_rows_f32(a.x, D, moe_src + o0, n, D, a.xe, st);
        swiglu_ffn(L.experts_host[size_t(e)], a.xe, n, a.yt, a, st);
        scatter_rows_f32(a.yt, D, n, D, moe_dst + o0, a.ye, st);
      }
      if (L.has_shared) swiglu_ffn(L.shared, a.x, R, a.ysh, a, st);
      moe_combine_f32(a.ye, a.wts, L.has_shared ? a.ysh : nullptr, R, K, D, a.f, st);
    }
    if (cap) {
      std::vector<float> h = download(a.resid, R * D, st);
      const std::vector<float> f = download(a.f, R * D, st);
      for (size_t i = 0; i < h.size(); ++i) h[i] += f[i];
      cap->hidden.push_back(std::move(h));
    }
  }
  // Final norm (all rows; only logit rows are read) and the FP32 head.
  add_rmsnorm_f32(a.f, a.resid, w.final_norm(), R, D, eps, a.x, st);
  gather_rows_f32(a.x, D, in.logit_rows, NL, D, a.hf, st);
  gemm_dense(a.hf, NL, w.lm_head(), a.logits, false, st);
  return a.logits;
}

}  // namespace ds::cuda
