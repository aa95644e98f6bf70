// The official Hugging Face tensor list of a DeepSeek-V3.2 checkpoint (spec/model.md section 3.2).
#include "model/tensor_names.h"

namespace ds {

namespace {

struct Builder {
  const ModelConfig& cfg;
  std::vector<ExpectedTensor> out;
  bool mtp = false;

  static int64_t blocks(int64_t n) { return (n + 127) / 128; }

  // A 1-D or plain tensor stored as-is.
  void plain(const std::string& name, std::vector<int64_t> shape, DType dt) {
    out.push_back({name, std::move(shape), dt, false, false, mtp});
  }
  // A [rows, cols] Linear weight: FP8 + scale_inv when cfg.fp8, else BF16.
  void matrix(const std::string& name, int64_t rows, int64_t cols) {
    if (!cfg.fp8) return plain(name, {rows, cols}, DType::BF16);
    out.push_back({name, {rows, cols}, DType::F8_E4M3, true, false, mtp});
    out.push_back({name + "_scale_inv", {blocks(rows), blocks(cols)}, DType::F32, false, true, mtp});
  }

  void ffn(const std::string& p, int64_t inter) {
    const int64_t d = cfg.hidden_size;
    matrix(p + "gate_proj.weight", inter, d);
    matrix(p + "up_proj.weight", inter, d);
    matrix(p + "down_proj.weight", d, inter);
  }

  void layer(int i, bool moe) {
    const std::string P = "model.layers." + std::to_string(i) + ".";
    const int64_t d = cfg.hidden_size, h = cfg.num_attention_heads;
    plain(P + "input_layernorm.weight", {d}, DType::BF16);
    plain(P + "post_attention_layernorm.weight", {d}, DType::BF16);
    const std::string A = P + "self_attn.";
    matrix(A + "q_a_proj.weight", cfg.q_lora_rank, d);
    plain(A + "q_a_layernorm.weight", {cfg.q_lora_rank}, DType::BF16);
    matrix(A + "q_b_proj.weight", h * cfg.qk_head_dim(), cfg.q_lora_rank);
    matrix(A + "kv_a_proj_with_mqa.weight", cfg.kv_lora_rank + cfg.qk_rope_head_dim, d);
    plain(A + "kv_a_layernorm.weight", {cfg.kv_lora_rank}, DType::BF16);
    matrix(A + "kv_b_proj.weight", h * (cfg.qk_nope_head_dim + cfg.v_head_dim), cfg.kv_lora_rank);
    matrix(A + "o_proj.weight", d, h * cfg.v_head_dim);
    const std::string I = A + "indexer.";
    matrix(I + "wq_b.weight", int64_t(cfg.index_n_heads) * cfg.index_head_dim, cfg.q_lora_rank);
    matrix(I + "wk.weight", cfg.index_head_dim, d);
    plain(I + "k_norm.weight", {cfg.index_head_dim}, DType::BF16);
    plain(I + "k_norm.bias", {cfg.index_head_dim}, DType::BF16);
    plain(I + "weights_proj.weight", {cfg.index_n_heads, d}, DType::BF16);
    const std::string M = P + "mlp.";
    if (!moe) return ffn(M, cfg.intermediate_size);
    plain(M + "gate.weight", {cfg.n_routed_experts, d}, DType::BF16);
    plain(M + "gate.e_score_correction_bias", {cfg.n_routed_experts}, DType::F32);
    for (int j = 0; j < cfg.n_routed_experts; ++j)
      ffn(M + "experts." + std::to_string(j) + ".", cfg.moe_intermediate_size);
    if (cfg.n_shared_experts > 0)
      ffn(M + "shared_experts.", int64_t(cfg.n_shared_experts) * cfg.moe_intermediate_size);
  }
};

}  // namespace

std::vector<ExpectedTensor> expected_tensors(const ModelConfig& cfg) {
  Builder b{cfg, {}, false};
  const int64_t V = cfg.vocab_size, d = cfg.hidden_size;
  b.plain("model.embed_tokens.weight", {V, d}, DType::BF16);
  b.plain("model.norm.weight", {d}, DType::BF16);
  b.plain("lm_head.weight", {V, d}, DType::BF16);
  for (int i = 0; i < cfg.num_hidden_layers; ++i) b.layer(i, cfg.is_moe_layer(i));
  b.mtp = true;
  for (int k = 0; k < cfg.num_nextn_predict_layers; ++k) {
    const int i = cfg.num_hidden_layers + k;
    const std::string P = "model.layers." + std::to_string(i) + ".";
    b.plain(P + "embed_tokens.weight", {V, d}, DType::BF16);
    b.plain(P + "enorm.weight", {d}, DType::BF16);
    b.plain(P + "hnorm.weight", {d}, DType::BF16);
    b.plain(P + "eh_proj.weight", {d, 2 * d}, DType::BF16);
    b.plain(P + "shared_head.norm.weight", {d}, DType::BF16);
    b.plain(P + "shared_head.head.weight", {V, d}, DType::BF16);
    b.layer(i, true);  // the MTP layer is always the MoE variant (spec 3.2)
  }
  return b.out;
}

}  // namespace ds
