// GPU forward over a paged BatchPlan (see cuda_model.h). The op sequence and every rounding point
// are those of the CPU official mode; comments name the CPU line each step mirrors.
#include "cuda/cuda_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <stdexcept>
#include <string>

#include "cuda/cuda_model_exact.h"
#include "cuda/device_memory.h"
#include "kernels/act_quant.h"
#include "kernels/cpu/rope.h"
#include "kernels/elementwise.h"
#include "kernels/indexer.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/router.h"
#include "kernels/sampling.h"

namespace ds::cuda {

namespace {

/// Device pointers of one step's activations (sized by StepShape; a dry pass with a null arena
/// base only measures).
struct StepBufs {
  // inputs (one H2D copy)
  int32_t *tokens, *slots, *pages, *n_keys, *n_attn, *logit_rows;
  int64_t* pos;
  SampleRowParams* sp;  // sampling parameters of the logit rows (forward_sample)
  // residual stream and norms (BF16 bits) and the F32 copy of the normed input
  uint16_t *resid, *f, *xb, *ob;
  float* xf;
  // FP8 activation quantization of a linear input
  uint8_t* xq;
  float* xs;
  // MLA
  float *qr, *q, *ckv, *q_lat, *q_pe, *o_lat, *ao, *of;
  float* qkv;  // [R, q_lora_rank + kv_lora_rank + rope]: the fused q_a + kv_a GEMM output
  // indexer
  float *k, *ks, *qi, *qis, *wraw, *wj;
  uint8_t *kq, *qiq;
  int32_t* idx;
  void* idx_ws;
  size_t idx_ws_bytes;
  // FFN
  float *g, *u, *y, *rlogits, *wts, *moe_out, *ysh;
  int32_t* ids;
  void* moe_ws;
  size_t moe_ws_bytes;
  // head
  float *hf, *logits;
  int32_t* sampled;  // sampled token ids of the logit rows
};

constexpr int64_t kRowsPerCall = 32768;

struct StepShape {
  int64_t R = 0, NL = 0, max_pages = 1, max_keys = 1;
};

}  // namespace

struct CudaModel::Impl {
  cudaStream_t stream = nullptr;
  DevMem freqs;                 // [rope/2] F32 YaRN frequencies
  DevMem kv_mla, kv_idx, kv_scale;
  int64_t slot_bytes = 0;
  int64_t idx_key_bytes = 0;    // bytes of one indexer key: Di (FP8) or 4 Di (exact mode, F32)
  std::unique_ptr<ExactForward> exact;  // set in exact numerics (cuda_model_exact.h)
  DevMem exact_sampled;                 // exact mode: sampled ids of the logit rows (forward_sample)
  DevMem step;                  // activations
  DevMem inputs;                // step inputs
  PinnedMem h_inputs, h_logits;
  // Decode graphs (cuda_graphs.h): one activation block sized for the largest graph (graphs run one
  // at a time on `stream`), and per size a static input block and the pointers baked into it.
  DevMem graph_step;
  std::map<int, DevMem> graph_inputs;
  std::map<int, StepBufs> graph_bufs;
  int64_t graph_pages = 0;
  int64_t max_inter = 0, max_k = 0;
  int n_freq = 0;

  /// Enqueues the whole forward of one step on `stream` over the buffers `a` (inputs already on the
  /// device), up to the logits of the logit rows: the body the decode graphs capture.
  void enqueue(const CudaModel& M, const StepBufs& a, const StepShape& s, bool any_scored) const;

  StepBufs plan(StepArena& a, const ModelConfig& c, const StepShape& s) const {
    StepBufs b{};
    const int64_t R = s.R, D = c.hidden_size, H = c.num_attention_heads, C = c.kv_lora_rank;
    const int64_t dr = c.qk_rope_head_dim, dq = c.qk_head_dim(), Hi = c.index_n_heads, Di = c.index_head_dim;
    b.resid = a.take<uint16_t>(R * D);
    b.f = a.take<uint16_t>(R * D);
    b.xb = a.take<uint16_t>(R * D);
    b.ob = a.take<uint16_t>(R * D);
    b.xf = a.take<float>(R * D);
    b.xq = a.take<uint8_t>(R * max_k);
    b.xs = a.take<float>(R * max_k / 128 + 1);
    b.qr = a.take<float>(R * c.q_lora_rank);
    b.q = a.take<float>(R * H * dq);
    b.ckv = a.take<float>(R * (C + dr));
    b.qkv = a.take<float>(R * (c.q_lora_rank + C + dr));
    b.q_lat = a.take<float>(R * H * C);
    b.q_pe = a.take<float>(R * H * dr);
    b.o_lat = a.take<float>(R * H * C);
    b.ao = a.take<float>(R * H * c.v_head_dim);
    b.of = a.take<float>(R * D);
    b.k = a.take<float>(R * Di);
    b.ks = a.take<float>(R);
    b.kq = a.take<uint8_t>(R * Di);
    b.qi = a.take<float>(R * Hi * Di);
    b.qiq = a.take<uint8_t>(R * Hi * Di);
    b.qis = a.take<float>(R * Hi);
    b.wraw = a.take<float>(R * Hi);
    b.wj = a.take<float>(R * Hi);
    b.idx = a.take<int32_t>(R * c.index_topk);
    b.idx_ws_bytes = indexer_workspace_bytes(R, s.max_keys);
    b.idx_ws = a.take<uint8_t>(int64_t(b.idx_ws_bytes));
    b.g = a.take<float>(R * max_inter);
    b.u = a.take<float>(R * max_inter);
    b.y = a.take<float>(R * D);
    const int E = std::max(c.n_routed_experts, 1), K = std::max(c.num_experts_per_tok, 1);
    b.rlogits = a.take<float>(R * E);
    b.ids = a.take<int32_t>(R * K);
    b.wts = a.take<float>(R * K);
    b.moe_out = a.take<float>(R * D);
    b.ysh = a.take<float>(R * D);
    b.moe_ws_bytes = c.n_routed_experts > 0 ? moe_workspace_bytes(R, K, D, c.moe_intermediate_size, true) : 0;
    b.moe_ws = a.take<uint8_t>(int64_t(b.moe_ws_bytes));
    b.hf = a.take<float>(s.NL * D);
    b.logits = a.take<float>(s.NL * c.vocab_size);
    b.sampled = a.take<int32_t>(s.NL);
    return b;
  }
};

CudaModel::CudaModel(std::unique_ptr<DeviceWeights> w, KvCacheDtype kv_dtype)
    : w_(std::move(w)), kv_dtype_(kv_dtype), impl_(std::make_unique<Impl>()) {
  if (!w_) throw std::invalid_argument("CudaModel: weights are null");
  numerics_ = w_->numerics();
  const bool exact = numerics_ == Numerics::Exact;
  const ModelConfig& c = w_->config();
  if (!exact && c.index_head_dim != 128)
    throw std::invalid_argument("CUDA runner: official numerics need index_head_dim 128 (spec 5.2)");
  if (!exact && c.kv_lora_rank % 128 != 0)
    throw std::invalid_argument("CUDA runner: kv_lora_rank must be a multiple of 128 (FP8 latent groups)");
  Impl& m = *impl_;
  if (exact) m.exact = std::make_unique<ExactForward>();
  DS_CUDA_CHECK(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking));
  cpu::YarnParams y;
  y.enabled = c.rope_scaling.enabled;
  y.factor = c.rope_scaling.factor;
  y.original_max_position_embeddings = c.rope_scaling.original_max_position_embeddings;
  y.beta_fast = c.rope_scaling.beta_fast;
  y.beta_slow = c.rope_scaling.beta_slow;
  const std::vector<float> f = cpu::rope_frequencies(c.qk_rope_head_dim, c.rope_theta, y);
  m.n_freq = int(f.size());
  m.freqs.ensure(f.size() * 4);
  DS_CUDA_CHECK(cudaMemcpy(m.freqs.as(), f.data(), f.size() * 4, cudaMemcpyHostToDevice));
  m.slot_bytes = exact ? int64_t(c.kv_lora_rank + c.qk_rope_head_dim) * 4
                       : mla_slot_bytes(kv_dtype, c.kv_lora_rank, c.qk_rope_head_dim);
  m.idx_key_bytes = exact ? int64_t(c.index_head_dim) * 4 : int64_t(c.index_head_dim);
  m.max_inter = std::max<int64_t>({c.intermediate_size, int64_t(c.n_shared_experts) * c.moe_intermediate_size,
                                   c.moe_intermediate_size, 1});
  m.max_k = std::max<int64_t>({c.hidden_size, c.q_lora_rank, int64_t(c.num_attention_heads) * c.v_head_dim,
                               m.max_inter});
}

CudaModel::~CudaModel() {
  if (impl_ && impl_->stream) cudaStreamDestroy(impl_->stream);
}

int64_t CudaModel::kv_bytes_per_token() const {
  const ModelConfig& c = w_->config();
  return int64_t(c.num_hidden_layers) * (impl_->slot_bytes + impl_->idx_key_bytes + 4);
}

void CudaModel::init_kv_pool(int page_size, int64_t num_pages) {
  if (page_size < 1) throw std::invalid_argument("--page-size: must be >= 1");
  if (num_pages < 1) throw std::invalid_argument("--max-total-tokens: the KV pool needs at least one page");
  const int64_t slots = int64_t(page_size) * num_pages;
  if (slots >= (int64_t(1) << 31))
    throw std::invalid_argument("--max-total-tokens: a KV pool above 2^31 slots is not supported");
  const ModelConfig& c = w_->config();
  Impl& m = *impl_;
  const int64_t L = c.num_hidden_layers;
  graphs_.clear();
  m.graph_pages = 0;
  m.kv_mla.release();
  m.kv_idx.release();
  m.kv_scale.release();
  m.kv_mla.ensure(size_t(L * slots * m.slot_bytes));
  m.kv_idx.ensure(size_t(L * slots * m.idx_key_bytes));
  m.kv_scale.ensure(size_t(L * slots * 4));
  DS_CUDA_CHECK(cudaMemset(m.kv_mla.as(), 0, m.kv_mla.bytes()));
  DS_CUDA_CHECK(cudaMemset(m.kv_idx.as(), 0, m.kv_idx.bytes()));
  DS_CUDA_CHECK(cudaMemset(m.kv_scale.as(), 0, m.kv_scale.bytes()));
  page_size_ = page_size;
  num_pages_ = num_pages;
  capture_graphs();  // the graphs bake in the pool's pointers
}

namespace {

// y = official linear(x) (spec 9.1/9.2, ModelCore::lin): FP8 weight -> UE8M0 activation quant +
// FP8 GEMM; dense weight -> FP32 GEMM; BF16 output either way.
void linear(const float* x, int64_t M, const LinearDev& w, float* y, const StepBufs& b, cudaStream_t st) {
  if (w.fp8) {
    act_quant_ue8m0(x, QuantInType::F32, M, w.f8.cols, b.xq, b.xs, st);
    gemm_fp8(b.xq, b.xs, M, w.f8, y, true, st);
  } else {
    gemm_dense(x, M, w.dense, y, true, st);
  }
}

// moe.cpp swiglu(): out = down(bf16(silu(gate x) * up x)), BF16 output.
void swiglu_ffn(const FfnDev& f, const float* x, int64_t R, float* out, const StepBufs& b, cudaStream_t st) {
  const int64_t I = f.gate.rows();
  linear(x, R, f.gate, b.g, b, st);
  linear(x, R, f.up, b.u, b, st);
  swiglu(b.g, b.u, R * I, b.g, true, st);
  linear(b.g, R, f.down, out, b, st);
}

}  // namespace


namespace {

// Test hook (CudaModel::set_layer_capture): synchronous downloads of one layer's tensors.
std::vector<float> download_f32(const float* d, int64_t n, cudaStream_t st) {
  std::vector<float> h(static_cast<size_t>(n));
  DS_CUDA_CHECK(cudaStreamSynchronize(st));
  DS_CUDA_CHECK(cudaMemcpy(h.data(), d, size_t(n) * 4, cudaMemcpyDeviceToHost));
  return h;
}
std::vector<float> download_sum_bf16(const uint16_t* a, const uint16_t* b, int64_t n, cudaStream_t st) {
  std::vector<uint16_t> ha(static_cast<size_t>(n)), hb(static_cast<size_t>(n));
  DS_CUDA_CHECK(cudaStreamSynchronize(st));
  DS_CUDA_CHECK(cudaMemcpy(ha.data(), a, size_t(n) * 2, cudaMemcpyDeviceToHost));
  DS_CUDA_CHECK(cudaMemcpy(hb.data(), b, size_t(n) * 2, cudaMemcpyDeviceToHost));
  std::vector<float> h(static_cast<size_t>(n));
  for (size_t i = 0; i < h.size(); ++i) {
    const uint32_t ua = uint32_t(ha[i]) << 16, ub = uint32_t(hb[i]) << 16;
    float fa, fb;
    std::memcpy(&fa, &ua, 4);
    std::memcpy(&fb, &ub, 4);
    h[i] = fa + fb;
  }
  return h;
}

}  // namespace

// The forward body (the CPU official mode op for op; see the file comment).
void CudaModel::Impl::enqueue(const CudaModel& M, const StepBufs& a, const StepShape& s, bool any_scored) const {
  const Impl& m = *this;
  const DeviceWeights* w_ = M.w_.get();
  const KvCacheDtype kv_dtype_ = M.kv_dtype_;
  const int page_size_ = M.page_size_;
  const int64_t num_pages_ = M.num_pages_;
  const ModelConfig& c = w_->config();
  cudaStream_t st = m.stream;
  if (M.layer_capture_) M.layer_capture_->attn.clear(), M.layer_capture_->hidden.clear();
  const int64_t R = s.R, NL = s.NL, D = c.hidden_size, H = c.num_attention_heads, C = c.kv_lora_rank;
  const int64_t dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim, dq = c.qk_head_dim();
  const int64_t Hi = c.index_n_heads, Di = c.index_head_dim, topk = c.index_topk;
  const float eps = float(c.rms_norm_eps);
  const float* freqs = m.freqs.as<float>();
  const int nf = m.n_freq;
  const int64_t slots_total = int64_t(page_size_) * num_pages_;
  // 4.1 embedding (BF16 values, as dequantize_rows of the BF16 table).
  embed_gather(w_->embed(), w_->embed_bf16(), a.tokens, R, D, a.resid, st);
  for (int li = 0; li < c.num_hidden_layers; ++li) {
    const LayerDev& L = w_->layers()[size_t(li)];
    uint8_t* cache = m.kv_mla.as<uint8_t>() + size_t(li) * size_t(slots_total) * size_t(m.slot_bytes);
    uint8_t* kcache = m.kv_idx.as<uint8_t>() + size_t(li) * size_t(slots_total) * size_t(Di);
    float* kscale = m.kv_scale.as<float>() + size_t(li) * size_t(slots_total);
    // 4.2: s = f + resid, resid <- bf16(s), x = bf16(RMSNorm(s)) (layer 0: no f).
    add_rmsnorm_bf16(li == 0 ? nullptr : a.f, a.resid, L.attn_norm, R, D, eps, a.xb, st);
    bf16_to_f32(a.xb, R * D, a.xf, st);
    // mla.cpp 4.3.1-2: q path.
    // q_a and kv_a read the same input: one GEMM over the stacked weight when the loader fused
    // them (same bits per element), its column ranges then feed the two paths.
    const int64_t QL = c.q_lora_rank, NQKV = QL + C + dr;
    if (L.qkv_fused) {
      linear(a.xf, R, L.q_a_kv_a, a.qkv, a, st);
      rmsnorm_f32(a.qkv, NQKV, L.q_a_norm, R, QL, eps, a.qr, QL, true, st);
      DS_CUDA_CHECK(cudaMemcpy2DAsync(a.ckv, size_t(C + dr) * 4, a.qkv + QL, size_t(NQKV) * 4, size_t(C + dr) * 4,
                                      size_t(R), cudaMemcpyDeviceToDevice, st));
    } else {
      linear(a.xf, R, L.q_a, a.qr, a, st);
      rmsnorm_f32(a.qr, QL, L.q_a_norm, R, QL, eps, a.qr, QL, true, st);
    }
    linear(a.qr, R, L.q_b, a.q, a, st);
    // 4.3.3-6: latent (RMSNorm, FP8 round trip) and the shared rope key; RoPE on q_pe.
    if (!L.qkv_fused) linear(a.xf, R, L.kv_a, a.ckv, a, st);
    rmsnorm_f32(a.ckv, C + dr, L.kv_a_norm, R, C, eps, a.ckv, C + dr, true, st);
    fp8_round_trip(a.ckv, C + dr, R, C, st);
    rope_apply(RopeView{a.ckv, RopeType::F32, R, 1, C + dr, 0, C}, a.pos, freqs, nf, RopeLayout::Interleaved, true, st);
    rope_apply(RopeView{a.q, RopeType::F32, R, H, H * dq, dq, dn}, a.pos, freqs, nf, RopeLayout::Interleaved, true, st);
    // indexer.cpp 5.2 steps 3-8: keys = FP8(Hadamard(RoPE(LayerNorm(wk x)))), into the rows' slots.
    linear(a.xf, R, L.idx_wk, a.k, a, st);
    layernorm_f32(a.k, L.idx_k_norm_w, L.idx_k_norm_b, R, Di, eps, a.k, true, st);
    rope_apply(RopeView{a.k, RopeType::F32, R, 1, Di, 0, 0}, a.pos, freqs, nf, RopeLayout::HalfSplit, true, st);
    hadamard_rows(a.k, R, int(Di), 1.0f / std::sqrt(float(Di)), true, st);
    act_quant_ue8m0(a.k, QuantInType::F32, R, Di, a.kq, a.ks, st);
    index_cache_store(a.kq, a.ks, R, int(Di), a.slots, kcache, kscale, st);
    // 5.2 steps 1-2, 9-10: queries and head weights (only when some row has > index_topk keys).
    if (any_scored) {
      linear(a.qr, R, L.idx_wq_b, a.qi, a, st);
      gemm_dense(a.xf, R, L.idx_weights_proj, a.wraw, false, st);  // FP32 (Nov demo)
      rope_apply(RopeView{a.qi, RopeType::F32, R, Hi, Hi * Di, Di, 0}, a.pos, freqs, nf, RopeLayout::HalfSplit, true, st);
      hadamard_rows(a.qi, R * Hi, int(Di), 1.0f / std::sqrt(float(Di)), true, st);
      act_quant_ue8m0(a.qi, QuantInType::F32, R * Hi, Di, a.qiq, a.qis, st);
      index_head_weights(a.wraw, a.qis, R * Hi, 1.0f / std::sqrt(float(Hi)), 1.0f / std::sqrt(float(Di)), a.wj, st);
    }
    // The indexer and attention kernels put rows on grid.y (<= 65535): row chunks of kRowsPerCall.
    for (int64_t r0 = 0; r0 < R; r0 += kRowsPerCall) {
      IndexerArgs ia_args;
      ia_args.q = a.qiq + r0 * Hi * Di;
      ia_args.w = a.wj + r0 * Hi;
      ia_args.R = std::min(kRowsPerCall, R - r0);
      ia_args.Hi = int(Hi);
      ia_args.Di = int(Di);
      ia_args.kcache = kcache;
      ia_args.kscale = kscale;
      ia_args.pages = a.pages + r0 * s.max_pages;
      ia_args.max_pages = int(s.max_pages);
      ia_args.page_size = page_size_;
      ia_args.n_keys = a.n_keys + r0;
      indexer_topk(ia_args, int(topk), s.max_keys, a.idx_ws, a.idx_ws_bytes, a.idx + r0 * topk, st);
    }
    // 4.3.7: latent + k_pe into the rows' slots (before attention: rows of a chunk see each other).
    mla_cache_store(a.ckv, R, int(C), int(dr), a.slots, kv_dtype_, cache, st);
    // 4.7: absorbed attention over the selected (or all causal) slots.
    mla_absorb_q(a.q, R, int(dq), L.w_uk, a.q_lat, a.q_pe, true, st);
    for (int64_t r0 = 0; r0 < R; r0 += kRowsPerCall)
      mla_sparse_attention(a.q_lat + r0 * H * C, a.q_pe + r0 * H * dr, std::min(kRowsPerCall, R - r0), int(H), int(C),
                           int(dr), cache, kv_dtype_, a.idx + r0 * topk, a.n_attn + r0, int(topk),
                           float(c.softmax_scale()), a.o_lat + r0 * H * C, st);
    round_to_bf16(a.o_lat, R * H * C, st);
    mla_absorb_out(a.o_lat, R, L.w_uv, a.ao, true, st);
    if (M.layer_capture_) M.layer_capture_->attn.push_back(download_f32(a.ao, R * H * c.v_head_dim, st));
    // 4.8 output projection; then the FFN's fused residual norm.
    linear(a.ao, R, L.o, a.of, a, st);
    add_to_bf16(a.of, nullptr, R * D, a.ob, st);
    add_rmsnorm_bf16(a.ob, a.resid, L.ffn_norm, R, D, eps, a.xb, st);
    bf16_to_f32(a.xb, R * D, a.xf, st);
    // moe.cpp: dense SwiGLU or routed experts + shared expert, rounded once to BF16.
    if (!L.moe) {
      swiglu_ffn(L.dense, a.xf, R, a.y, a, st);
      add_to_bf16(a.y, nullptr, R * D, a.f, st);
      if (M.layer_capture_) M.layer_capture_->hidden.push_back(download_sum_bf16(a.resid, a.f, R * D, st));
      continue;
    }
    if (!L.all_experts_fp8) throw std::runtime_error("CUDA runner: routed experts must be FP8 (moe_experts)");
    gemm_dense(a.xf, R, L.router, a.rlogits, false, st);
    RouterShape rs{c.n_routed_experts, c.n_group, c.topk_group, c.num_experts_per_tok, c.norm_topk_prob,
                   float(c.routed_scaling_factor)};
    moe_route(a.rlogits, L.router_bias, R, rs, a.ids, a.wts, st);
    moe_experts(a.xf, R, a.ids, a.wts, c.num_experts_per_tok, L.experts, c.n_routed_experts, D, c.moe_intermediate_size,
                a.moe_out, a.moe_ws, a.moe_ws_bytes, st, L.shared_fused);
    const bool shared_apart = L.has_shared && !L.shared_fused;  // else moe_out already holds it
    if (shared_apart) swiglu_ffn(L.shared, a.xf, R, a.ysh, a, st);
    add_to_bf16(a.moe_out, shared_apart ? a.ysh : nullptr, R * D, a.f, st);
    if (M.layer_capture_) M.layer_capture_->hidden.push_back(download_sum_bf16(a.resid, a.f, R * D, st));
  }
  // Final norm (all rows; only logit rows are read) and the FP32 head.
  add_rmsnorm_bf16(a.f, a.resid, w_->final_norm(), R, D, eps, a.xb, st);
  gather_bf16_rows_f32(a.xb, a.logit_rows, NL, D, a.hf, st);
  gemm_dense(a.hf, NL, w_->lm_head(), a.logits, false, st);
}

namespace {

/// Lays out the step inputs (one block, one H2D copy) for `s`.
void in_layout(StepArena& a, StepBufs& b, const StepShape& s) {
  b.tokens = a.take<int32_t>(s.R);
  b.pos = a.take<int64_t>(s.R);
  b.slots = a.take<int32_t>(s.R);
  b.pages = a.take<int32_t>(s.R * s.max_pages);
  b.n_keys = a.take<int32_t>(s.R);
  b.n_attn = a.take<int32_t>(s.R);
  b.logit_rows = a.take<int32_t>(s.NL);
  b.sp = a.take<SampleRowParams>(s.NL);
}

/// Fills the pinned host image `h` of the input block laid out at device base `dev` (layout `b`):
/// the plan's rows first, then padding rows up to s.R (token 0, position 0, slot -1 = no KV write,
/// page table of zeros, one key), logit rows r for padded rows. `plan` may be null (all padding).
void fill_inputs(const BatchPlan* plan, const StepShape& s, int page_size, int64_t topk, const StepBufs& b,
                 const uint8_t* dev, uint8_t* h, const std::vector<SampleRowParams>* sp, Logits* out) {
  auto at = [&](const void* d) { return h + (static_cast<const uint8_t*>(d) - dev); };
  int32_t* tokens = reinterpret_cast<int32_t*>(at(b.tokens));
  int64_t* pos = reinterpret_cast<int64_t*>(at(b.pos));
  int32_t* slots = reinterpret_cast<int32_t*>(at(b.slots));
  int32_t* pages = reinterpret_cast<int32_t*>(at(b.pages));
  int32_t* n_keys = reinterpret_cast<int32_t*>(at(b.n_keys));
  int32_t* n_attn = reinterpret_cast<int32_t*>(at(b.n_attn));
  int32_t* lrows = reinterpret_cast<int32_t*>(at(b.logit_rows));
  SampleRowParams* params = reinterpret_cast<SampleRowParams*>(at(b.sp));
  int64_t r = 0, l = 0;
  if (plan) {
    for (size_t si = 0; si < plan->segments.size(); ++si) {
      const Segment& seg = plan->segments[si];
      const int64_t np = (int64_t(seg.start_pos) + int64_t(seg.tokens.size()) + page_size - 1) / page_size;
      for (size_t i = 0; i < seg.tokens.size(); ++i, ++r) {
        const int64_t p = seg.start_pos + int64_t(i);
        tokens[r] = seg.tokens[i];
        pos[r] = p;
        slots[r] = int32_t(int64_t(seg.page_table[size_t(p / page_size)]) * page_size + p % page_size);
        for (int64_t j = 0; j < s.max_pages; ++j) pages[r * s.max_pages + j] = j < np ? seg.page_table[size_t(j)] : 0;
        n_keys[r] = int32_t(p + 1);
        n_attn[r] = int32_t(std::min<int64_t>(p + 1, topk));
        if (seg.all_logits || i + 1 == seg.tokens.size()) {
          params[l] = sp ? (*sp)[si] : SampleRowParams{};
          lrows[l++] = int32_t(r);
        }
      }
      if (out) out->row_begin.push_back(int(l));
    }
  }
  for (; r < s.R; ++r) {  // padding rows (decode graphs): one row, one logit row each
    tokens[r] = 0;
    pos[r] = 0;
    slots[r] = -1;
    for (int64_t j = 0; j < s.max_pages; ++j) pages[r * s.max_pages + j] = 0;
    n_keys[r] = 1;
    n_attn[r] = 1;
    if (l < s.NL) {
      params[l] = SampleRowParams{0.0f, 1.0f, -1, 0.0f, 0.0};
      lrows[l++] = int32_t(r);
    }
  }
}

void set_inputs(StepBufs& a, const StepBufs& b) {
  a.tokens = b.tokens, a.pos = b.pos, a.slots = b.slots, a.pages = b.pages, a.n_keys = b.n_keys, a.n_attn = b.n_attn;
  a.logit_rows = b.logit_rows, a.sp = b.sp;
}

}  // namespace

Logits CudaModel::forward(const BatchPlan& plan) {
  Logits out;
  step(plan, nullptr, &out, nullptr);
  return out;
}

std::vector<int32_t> CudaModel::forward_sample(const BatchPlan& plan, const std::vector<SampleRowParams>& params) {
  if (params.size() != plan.segments.size())
    throw std::invalid_argument("forward_sample: " + std::to_string(params.size()) + " sampling rows for " +
                                std::to_string(plan.segments.size()) + " segments");
  for (size_t i = 0; i < plan.segments.size(); ++i)
    if (plan.segments[i].all_logits)
      throw std::invalid_argument("forward_sample: segment " + std::to_string(i) + " asks for all logits");
  std::vector<int32_t> ids;
  step(plan, &params, nullptr, &ids);
  return ids;
}

void CudaModel::step(const BatchPlan& plan, const std::vector<SampleRowParams>* sp, Logits* logits,
                     std::vector<int32_t>* ids) {
  const ModelConfig& c = w_->config();
  Impl& m = *impl_;
  cudaStream_t st = m.stream;
  // Validate the whole plan before touching the pool (the rules of DeepseekV32::forward).
  if (num_pages_ == 0) throw std::invalid_argument("CUDA runner: no KV pool (init_kv first)");
  std::set<int32_t> written_pages;
  StepShape s;
  for (size_t i = 0; i < plan.segments.size(); ++i) {
    const Segment& seg = plan.segments[i];
    const std::string where = "batch plan segment " + std::to_string(i);
    if (seg.tokens.empty()) throw std::invalid_argument(where + ": no tokens");
    if (seg.start_pos < 0) throw std::invalid_argument(where + ": negative start_pos");
    if (seg.cache) throw std::invalid_argument(where + ": the CUDA runner takes paged segments only (no private cache)");
    const int64_t ps = page_size_, end = int64_t(seg.start_pos) + int64_t(seg.tokens.size());
    if (int64_t(seg.page_table.size()) * ps < end)
      throw std::invalid_argument(where + ": page table of " + std::to_string(seg.page_table.size()) +
                                  " pages does not cover position " + std::to_string(end - 1));
    for (int64_t p = 0; p < (end + ps - 1) / ps; ++p) {
      const int32_t pg = seg.page_table[size_t(p)];
      if (pg < 0 || pg >= num_pages_)
        throw std::invalid_argument(where + ": page id " + std::to_string(pg) + " outside the pool [0, " +
                                    std::to_string(num_pages_) + ")");
      if (p >= seg.start_pos / ps && !written_pages.insert(pg).second)
        throw std::invalid_argument(where + ": page " + std::to_string(pg) + " is written by two segments");
    }
    for (int32_t t : seg.tokens)
      if (t < 0 || t >= c.vocab_size)
        throw std::invalid_argument(where + ": token id " + std::to_string(t) + " outside the vocabulary [0, " +
                                    std::to_string(c.vocab_size) + ")");
    s.R += int64_t(seg.tokens.size());
    s.NL += seg.all_logits ? int64_t(seg.tokens.size()) : 1;
    s.max_pages = std::max<int64_t>(s.max_pages, (end + ps - 1) / ps);
    s.max_keys = std::max<int64_t>(s.max_keys, end);
  }
  Logits out;
  out.vocab = c.vocab_size;
  out.row_begin.push_back(0);
  if (s.R == 0) {
    if (logits) *logits = std::move(out);
    return;
  }
  const int64_t topk = c.index_topk;
  // A decode step whose segment count fits a captured graph replays it (padded to the graph's size).
  bool decode = use_graphs_ && s.R == s.NL && s.max_keys <= m.graph_pages * page_size_;
  for (const Segment& seg : plan.segments) decode = decode && seg.tokens.size() == 1 && !seg.all_logits;
  const int gbs = decode ? graphs_.pick(int(s.R)) : 0;
  StepShape shape = s;
  if (gbs > 0) shape = StepShape{gbs, gbs, m.graph_pages, m.graph_pages * page_size_};

  // Host step inputs, packed into one pinned block (256-byte aligned pieces) and one H2D copy.
  StepArena ia;
  StepBufs b{};
  ia.reset(nullptr);
  in_layout(ia, b, shape);
  const size_t in_bytes = ia.used();
  DevMem& dev_in = gbs > 0 ? m.graph_inputs.at(gbs) : m.inputs;
  m.h_inputs.ensure(in_bytes);
  if (gbs == 0) m.inputs.ensure(in_bytes);
  ia.reset(&dev_in);
  in_layout(ia, b, shape);
  fill_inputs(&plan, shape, page_size_, topk, b, dev_in.as<uint8_t>(), m.h_inputs.as<uint8_t>(), sp, &out);
  DS_CUDA_CHECK(cudaMemcpyAsync(dev_in.as(), m.h_inputs.as(), in_bytes, cudaMemcpyHostToDevice, st));

  StepBufs a{};
  if (m.exact) {  // exact numerics (cuda_model_exact.h): always eager
    ExactStepInputs ei;
    ei.tokens = b.tokens, ei.pos = b.pos, ei.slots = b.slots, ei.pages = b.pages, ei.n_keys = b.n_keys;
    ei.n_attn = b.n_attn, ei.logit_rows = b.logit_rows;
    ei.R = s.R, ei.NL = s.NL, ei.max_pages = s.max_pages, ei.max_keys = s.max_keys;
    for (const Segment& seg : plan.segments)
      ei.any_scored = ei.any_scored || int64_t(seg.start_pos) + int64_t(seg.tokens.size()) > topk;
    const ExactKv kv{m.kv_mla.as<float>(), m.kv_idx.as<float>(), int64_t(page_size_) * num_pages_, page_size_};
    a.logits = const_cast<float*>(m.exact->run(*w_, ei, kv, m.freqs.as<float>(), m.n_freq, layer_capture_, st));
    a.sp = b.sp;
    m.exact_sampled.ensure(size_t(s.NL) * 4);
    a.sampled = m.exact_sampled.as<int32_t>();
  } else if (gbs > 0) {
    a = m.graph_bufs.at(gbs);
    graphs_.replay(gbs, st);
  } else {
    bool any_scored = false;
    for (const Segment& seg : plan.segments)
      any_scored = any_scored || int64_t(seg.start_pos) + int64_t(seg.tokens.size()) > topk;
    StepArena sa;
    sa.reset(nullptr);
    m.plan(sa, c, s);
    m.step.ensure(sa.used());
    sa.reset(&m.step);
    a = m.plan(sa, c, s);
    set_inputs(a, b);
    m.enqueue(*this, a, s, any_scored);
  }
  // Only the plan's logit rows come back (the first s.NL rows of a padded graph step).
  const int64_t NL = s.NL;
  if (ids) {
    sample_rows(a.logits, NL, c.vocab_size, a.sp, a.sampled, st);
    ids->resize(size_t(NL));
    DS_CUDA_CHECK(cudaMemcpyAsync(ids->data(), a.sampled, size_t(NL) * 4, cudaMemcpyDeviceToHost, st));
    DS_CUDA_CHECK(cudaStreamSynchronize(st));
    return;
  }
  const size_t lbytes = size_t(NL) * size_t(c.vocab_size) * 4;
  m.h_logits.ensure(lbytes);
  DS_CUDA_CHECK(cudaMemcpyAsync(m.h_logits.as(), a.logits, lbytes, cudaMemcpyDeviceToHost, st));
  DS_CUDA_CHECK(cudaStreamSynchronize(st));
  out.data.resize(size_t(NL) * size_t(c.vocab_size));
  std::memcpy(out.data.data(), m.h_logits.as(), lbytes);
  *logits = std::move(out);
}

void CudaModel::set_graph_options(const CudaGraphOptions& o) {
  cuda_graph_batch_sizes(o, 1);  // validates the flags
  graph_opts_ = o;
}

void CudaModel::capture_graphs() {
  const ModelConfig& c = w_->config();
  Impl& m = *impl_;
  graphs_.clear();
  m.graph_bufs.clear();
  m.graph_inputs.clear();
  m.graph_pages = 0;
  if (num_pages_ == 0 || graph_opts_.max_context <= 0) return;  // no options set: eager only
  if (m.exact) return;  // exact numerics: every step eager (the MoE routing syncs with the host)
  size_t free_b = 0, total_b = 0;
  DS_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  const std::vector<int> sizes = cuda_graph_batch_sizes(graph_opts_, default_cuda_graph_max_bs(total_b / double(1 << 30)));
  if (sizes.empty()) return;
  const int64_t ctx = graph_opts_.max_context;
  const int64_t gpages = std::min<int64_t>((ctx + page_size_ - 1) / page_size_, num_pages_);
  const int64_t topk = c.index_topk;
  const bool any_scored = gpages * page_size_ > topk;
  StepArena sa;
  sa.reset(nullptr);
  m.plan(sa, c, StepShape{sizes.back(), sizes.back(), gpages, gpages * page_size_});
  m.graph_step.ensure(sa.used());
  for (int bs : sizes) {
    const StepShape shape{bs, bs, gpages, gpages * page_size_};
    StepArena ia;
    StepBufs b{};
    ia.reset(nullptr);
    in_layout(ia, b, shape);
    const size_t in_bytes = ia.used();
    DevMem& dev_in = m.graph_inputs[bs];
    dev_in.ensure(in_bytes);
    ia.reset(&dev_in);
    in_layout(ia, b, shape);
    m.h_inputs.ensure(in_bytes);
    fill_inputs(nullptr, shape, page_size_, topk, b, dev_in.as<uint8_t>(), m.h_inputs.as<uint8_t>(), nullptr, nullptr);
    DS_CUDA_CHECK(cudaMemcpyAsync(dev_in.as(), m.h_inputs.as(), in_bytes, cudaMemcpyHostToDevice, m.stream));
    sa.reset(&m.graph_step);
    StepBufs a = m.plan(sa, c, shape);
    set_inputs(a, b);
    m.enqueue(*this, a, shape, any_scored);  // warm-up: first-call attribute setting happens here
    DS_CUDA_CHECK(cudaStreamSynchronize(m.stream));
    try {
      graphs_.capture(bs, [&] { m.enqueue(*this, a, shape, any_scored); }, m.stream);
    } catch (const std::exception& e) {
      graphs_.clear();
      throw std::runtime_error(std::string(e.what()) +
                               " (lower --cuda-graph-max-bs or pass --disable-cuda-graph to run decode eagerly)");
    }
    m.graph_bufs[bs] = a;
  }
  m.graph_pages = gpages;
  DS_CUDA_CHECK(cudaStreamSynchronize(m.stream));
}

}  // namespace ds::cuda
