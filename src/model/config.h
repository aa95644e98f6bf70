// DeepSeek-V3.2 model configuration from a Hugging Face config.json (spec/model.md section 2).
#pragma once
#include <stdexcept>
#include <string>

namespace ds {

/// config.json problem; the message names the file and the field ("config.json: field
/// 'kv_lora_rank' must be a positive integer").
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// YaRN RoPE scaling parameters (spec/model.md 4.4). `enabled` false = plain RoPE.
struct RopeScaling {
  bool enabled = false;
  double factor = 1.0;
  int original_max_position_embeddings = 4096;
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double mscale = 1.0;
  double mscale_all_dim = 1.0;
};

/// Every config.json field deepserve uses, validated. Derived sizes are methods.
struct ModelConfig {
  std::string model_type;  // must be "deepseek_v32"
  int vocab_size = 0;
  int hidden_size = 0;
  int intermediate_size = 0;       // dense FFN width
  int moe_intermediate_size = 0;   // per-expert width
  int num_hidden_layers = 0;       // main layers; the MTP layer is index num_hidden_layers
  int num_nextn_predict_layers = 0;
  int first_k_dense_replace = 0;
  int moe_layer_freq = 1;
  int num_attention_heads = 0;
  int q_lora_rank = 0;
  int kv_lora_rank = 0;
  int qk_nope_head_dim = 0;
  int qk_rope_head_dim = 0;
  int v_head_dim = 0;
  int n_routed_experts = 0;
  int n_shared_experts = 0;
  int num_experts_per_tok = 0;
  int n_group = 1;
  int topk_group = 1;
  double routed_scaling_factor = 1.0;
  bool norm_topk_prob = true;
  std::string scoring_func;  // "sigmoid"
  std::string topk_method;   // "noaux_tc"
  int index_n_heads = 0;
  int index_head_dim = 0;
  int index_topk = 0;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  int max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  int bos_token_id = 0;
  int eos_token_id = 1;
  bool tie_word_embeddings = false;
  // quantization_config (absent = unquantized checkpoint)
  bool fp8 = false;
  int weight_block_size = 128;
  bool scale_fmt_ue8m0 = false;

  int qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  bool is_moe_layer(int layer) const {
    return n_routed_experts > 0 && layer >= first_k_dense_replace && layer % moe_layer_freq == 0;
  }
  /// MLA softmax scale: qk_head_dim^-0.5 * mscale^2 with YaRN (spec/model.md 4.5).
  double softmax_scale() const;

  /// Parses and validates `dir/config.json`. Throws ConfigError naming the field.
  static ModelConfig load(const std::string& dir);
  /// Parses and validates JSON text; `source` names it in errors.
  static ModelConfig parse(const std::string& json_text, const std::string& source);
};

}  // namespace ds
