// Preset configurations of make-model: tiny-a is spec/model.md 10.1 verbatim; tiny and
// real-geometry derive from it (D25).
#include "tools/make_model_presets.h"

#include <stdexcept>

namespace ds::mm {

namespace {

// spec/model.md 10.1 "Tiny-A", key order as printed there.
nlohmann::ordered_json tiny_a_config() {
  nlohmann::ordered_json c;
  c["architectures"] = {"DeepseekV32ForCausalLM"};
  c["model_type"] = "deepseek_v32";
  c["vocab_size"] = 1024;
  c["hidden_size"] = 256;
  c["intermediate_size"] = 512;
  c["moe_intermediate_size"] = 128;
  c["num_hidden_layers"] = 3;
  c["first_k_dense_replace"] = 1;
  c["num_nextn_predict_layers"] = 1;
  c["moe_layer_freq"] = 1;
  c["num_attention_heads"] = 4;
  c["num_key_value_heads"] = 4;
  c["q_lora_rank"] = 128;
  c["kv_lora_rank"] = 128;
  c["qk_nope_head_dim"] = 64;
  c["qk_rope_head_dim"] = 64;
  c["v_head_dim"] = 64;
  c["n_routed_experts"] = 8;
  c["n_shared_experts"] = 1;
  c["num_experts_per_tok"] = 2;
  c["n_group"] = 2;
  c["topk_group"] = 1;
  c["routed_scaling_factor"] = 2.5;
  c["scoring_func"] = "sigmoid";
  c["topk_method"] = "noaux_tc";
  c["norm_topk_prob"] = true;
  c["index_n_heads"] = 4;
  c["index_head_dim"] = 128;
  c["index_topk"] = 16;
  c["rope_theta"] = 10000;
  c["max_position_embeddings"] = 163840;
  nlohmann::ordered_json rs;
  rs["type"] = "yarn";
  rs["factor"] = 40;
  rs["original_max_position_embeddings"] = 4096;
  rs["beta_fast"] = 32;
  rs["beta_slow"] = 1;
  rs["mscale"] = 1.0;
  rs["mscale_all_dim"] = 1.0;
  c["rope_scaling"] = rs;
  c["rms_norm_eps"] = 1e-6;
  c["hidden_act"] = "silu";
  c["attention_bias"] = false;
  c["bos_token_id"] = 0;
  c["eos_token_id"] = 1;
  c["tie_word_embeddings"] = false;
  nlohmann::ordered_json q;
  q["quant_method"] = "fp8";
  q["fmt"] = "e4m3";
  q["activation_scheme"] = "dynamic";
  q["weight_block_size"] = {128, 128};
  q["scale_fmt"] = "ue8m0";
  c["quantization_config"] = q;
  return c;
}

}  // namespace

Preset make_preset(const std::string& name, int index_topk_override) {
  Preset p;
  p.name = name;
  p.config = tiny_a_config();
  if (name == "tiny-a") {
    p.seed = 1;
  } else if (name == "tiny") {
    p.seed = 2;
    p.config["vocab_size"] = 129280;  // DeepSeek's tokenizer
  } else if (name == "real-geometry") {
    p.seed = 3;
    auto& c = p.config;
    c["hidden_size"] = 512;
    c["intermediate_size"] = 512;
    c["moe_intermediate_size"] = 128;
    c["num_hidden_layers"] = 2;
    c["first_k_dense_replace"] = 1;
    c["num_attention_heads"] = 4;
    c["num_key_value_heads"] = 4;
    c["q_lora_rank"] = 256;
    c["kv_lora_rank"] = 512;
    c["qk_nope_head_dim"] = 128;
    c["qk_rope_head_dim"] = 64;
    c["v_head_dim"] = 128;
    c["index_n_heads"] = 64;
    c["index_head_dim"] = 128;
    c["index_topk"] = 128;
  } else {
    throw std::invalid_argument("unknown make-model preset '" + name +
                                "' (known: tiny, tiny-a, real-geometry)");
  }
  if (index_topk_override > 0) p.config["index_topk"] = index_topk_override;
  return p;
}

}  // namespace ds::mm
