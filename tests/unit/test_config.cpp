// config.json validation (spec/model.md 2, 4.5) and the expected tensor list (spec 3.2).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "model/config.h"
#include "model/tensor_names.h"

using namespace ds;
using nlohmann::json;

namespace {

// DeepSeek-V3.2's config.json fields (spec/model.md section 2).
json real_config() {
  return json::parse(R"({
    "architectures": ["DeepseekV32ForCausalLM"], "model_type": "deepseek_v32", "vocab_size": 129280,
    "hidden_size": 7168, "intermediate_size": 18432, "moe_intermediate_size": 2048, "num_hidden_layers": 61,
    "first_k_dense_replace": 3, "moe_layer_freq": 1, "n_routed_experts": 256, "n_shared_experts": 1,
    "num_experts_per_tok": 8, "n_group": 8, "topk_group": 4, "routed_scaling_factor": 2.5,
    "scoring_func": "sigmoid", "topk_method": "noaux_tc", "norm_topk_prob": true, "ep_size": 1,
    "num_attention_heads": 128, "num_key_value_heads": 128, "q_lora_rank": 1536, "kv_lora_rank": 512,
    "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128, "index_n_heads": 64,
    "index_head_dim": 128, "index_topk": 2048, "attention_bias": false, "attention_dropout": 0.0,
    "hidden_act": "silu", "rms_norm_eps": 1e-06, "rope_theta": 10000,
    "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                     "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
    "max_position_embeddings": 163840, "num_nextn_predict_layers": 1, "bos_token_id": 0, "eos_token_id": 1,
    "tie_word_embeddings": false, "initializer_range": 0.02, "use_cache": true, "torch_dtype": "bfloat16",
    "transformers_version": "4.44.2",
    "quantization_config": {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                            "weight_block_size": [128, 128], "scale_fmt": "ue8m0"}})");
}

// Parses `j` expecting a ConfigError whose message is "SRC: field 'FIELD' ...".
std::string error_of(const json& j) {
  try {
    ModelConfig::parse(j.dump(), "DIR/config.json");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

void expect_field_error(const json& j, const std::string& field) {
  const std::string msg = error_of(j);
  EXPECT_EQ(msg.rfind("DIR/config.json: field '" + field + "'", 0), 0u) << msg;
}

}  // namespace

TEST(Config, RealConfigParses) {
  ModelConfig c = ModelConfig::parse(real_config().dump(), "real");
  EXPECT_EQ(c.model_type, "deepseek_v32");
  EXPECT_EQ(c.vocab_size, 129280);
  EXPECT_EQ(c.hidden_size, 7168);
  EXPECT_EQ(c.qk_head_dim(), 192);
  EXPECT_EQ(c.n_group, 8);
  EXPECT_EQ(c.topk_group, 4);
  EXPECT_DOUBLE_EQ(c.routed_scaling_factor, 2.5);
  EXPECT_TRUE(c.rope_scaling.enabled);
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 40.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 4096);
  EXPECT_TRUE(c.fp8);
  EXPECT_TRUE(c.scale_fmt_ue8m0);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_FALSE(c.is_moe_layer(2));
  EXPECT_TRUE(c.is_moe_layer(3));
  EXPECT_TRUE(c.is_moe_layer(60));
}

TEST(Config, SoftmaxScale) {
  // spec 4.5: 192^-0.5 * (0.1 ln 40 + 1)^2 = 0.13523378 (8 significant digits given -> 5e-9).
  EXPECT_NEAR(ModelConfig::parse(real_config().dump(), "r").softmax_scale(), 0.13523378, 5e-9);
  json j = real_config();
  j["rope_scaling"] = nullptr;  // plain RoPE: no mscale
  ModelConfig c = ModelConfig::parse(j.dump(), "r");
  EXPECT_FALSE(c.rope_scaling.enabled);
  EXPECT_NEAR(c.softmax_scale(), 0.0721687836, 1e-10);  // 192^-0.5
  j = real_config();
  j["rope_scaling"].erase("type");
  j["rope_scaling"]["rope_type"] = "yarn";
  j["rope_scaling"]["mscale_all_dim"] = 0.707;
  // m = 0.1 * 0.707 * ln 40 + 1 = 1.26080378; m^2 / sqrt(192) = 0.11472139 (hand-computed, 8 digits)
  EXPECT_NEAR(ModelConfig::parse(j.dump(), "r").softmax_scale(), 0.11472139, 1e-8);
}

TEST(Config, MissingAndWrongFieldsNameTheField) {
  json j = real_config();
  j.erase("kv_lora_rank");
  expect_field_error(j, "kv_lora_rank");
  EXPECT_NE(error_of(j).find("is missing"), std::string::npos);
  j = real_config();
  j["hidden_size"] = "7168";
  expect_field_error(j, "hidden_size");
  j = real_config();
  j["num_attention_heads"] = 1.5;
  expect_field_error(j, "num_attention_heads");
  j = real_config();
  j["q_lora_rank"] = 0;
  expect_field_error(j, "q_lora_rank");
  j = real_config();
  j["model_type"] = "deepseek_v3";
  expect_field_error(j, "model_type");
  j = real_config();
  j["norm_topk_prob"] = 1;
  expect_field_error(j, "norm_topk_prob");
  j = real_config();
  j["scoring_func"] = "softmax";
  expect_field_error(j, "scoring_func");
  j = real_config();
  j["rope_scaling"].erase("factor");
  expect_field_error(j, "rope_scaling.factor");
  j = real_config();
  j["rope_scaling"]["type"] = "linear";
  expect_field_error(j, "rope_scaling.type");
  j = real_config();
  j["quantization_config"]["weight_block_size"] = {64, 64};
  expect_field_error(j, "quantization_config.weight_block_size");
  j = real_config();
  j["quantization_config"]["scale_fmt"] = "fp32";
  expect_field_error(j, "quantization_config.scale_fmt");
  j = real_config();
  j["eos_token_id"] = 129280;
  expect_field_error(j, "eos_token_id");
  EXPECT_EQ(error_of(json::array()), "DIR/config.json: not a JSON object");
}

TEST(Config, ConsistencyChecks) {
  json j = real_config();
  j["n_group"] = 3;  // 256 % 3 != 0
  expect_field_error(j, "n_group");
  j = real_config();
  j["topk_group"] = 9;
  expect_field_error(j, "topk_group");
  j = real_config();
  j["num_experts_per_tok"] = 257;
  expect_field_error(j, "num_experts_per_tok");
  j = real_config();
  j["topk_group"] = 1;
  j["num_experts_per_tok"] = 33;  // one group of 32 experts cannot supply 33
  expect_field_error(j, "num_experts_per_tok");
  j = real_config();
  j["index_head_dim"] = 32;
  expect_field_error(j, "index_head_dim");
  j = real_config();
  j["hidden_size"] = 7000;
  expect_field_error(j, "hidden_size");
  EXPECT_NE(error_of(j).find("multiple of 128"), std::string::npos);
  j.erase("quantization_config");  // unquantized: no 128 rule
  ModelConfig c = ModelConfig::parse(j.dump(), "r");
  EXPECT_FALSE(c.fp8);
  EXPECT_EQ(c.hidden_size, 7000);
  j = real_config();
  j["quantization_config"].erase("scale_fmt");
  EXPECT_FALSE(ModelConfig::parse(j.dump(), "r").scale_fmt_ue8m0);
}

TEST(Config, LoadFromDirectory) {
  const std::string dir = ::testing::TempDir() + "/ds_cfg_test";
  std::filesystem::create_directories(dir);
  std::filesystem::remove(dir + "/config.json");
  try {
    ModelConfig::load(dir);
    ADD_FAILURE();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/config.json"), std::string::npos);
  }
  json j = real_config();
  j.erase("vocab_size");
  std::ofstream(dir + "/config.json") << j.dump();
  try {
    ModelConfig::load(dir);
    ADD_FAILURE();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(dir + "/config.json: field 'vocab_size'", 0), 0u) << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(TensorNames, RealConfigCounts) {
  // Counts include every FP8 weight's `_scale_inv` sibling (spec 3.2: "dense layer 27 tensors,
  // MoE layer 1565, main model 90,854, MTP layer 1,571 -> 92,425 total").
  const ModelConfig c = ModelConfig::parse(real_config().dump(), "r");
  const auto all = expected_tensors(c);
  EXPECT_EQ(all.size(), 92425u);
  std::map<std::string, int> per_layer;
  int mtp = 0;
  for (const auto& t : all) {
    if (t.name.rfind("model.layers.", 0) == 0) per_layer[t.name.substr(0, t.name.find('.', 13))]++;
    mtp += t.mtp ? 1 : 0;
  }
  EXPECT_EQ(per_layer["model.layers.0"], 27);
  EXPECT_EQ(per_layer["model.layers.2"], 27);
  EXPECT_EQ(per_layer["model.layers.3"], 1565);
  EXPECT_EQ(per_layer["model.layers.61"], 1571);
  EXPECT_EQ(mtp, 1571);
  EXPECT_EQ(all.size() - 1571, 90854u);
  EXPECT_EQ(all[0].name, "model.embed_tokens.weight");
  EXPECT_EQ(all[2].name, "lm_head.weight");
  EXPECT_EQ(all[2].shape, (std::vector<int64_t>{129280, 7168}));
}

TEST(TensorNames, ShapesDtypesAndScales) {
  const ModelConfig c = ModelConfig::parse(real_config().dump(), "r");
  std::map<std::string, ExpectedTensor> by;
  for (const auto& t : expected_tensors(c)) by[t.name] = t;
  auto shape = [&](const std::string& n) { return by.at(n).shape; };
  using S = std::vector<int64_t>;
  const std::string A = "model.layers.3.self_attn.";
  EXPECT_EQ(shape(A + "kv_a_proj_with_mqa.weight"), (S{576, 7168}));
  EXPECT_EQ(shape(A + "kv_a_proj_with_mqa.weight_scale_inv"), (S{5, 56}));  // partial edge block
  EXPECT_EQ(by.at(A + "kv_a_proj_with_mqa.weight").dtype, DType::F8_E4M3);
  EXPECT_TRUE(by.at(A + "kv_a_proj_with_mqa.weight_scale_inv").is_scale);
  EXPECT_EQ(by.at(A + "kv_a_proj_with_mqa.weight_scale_inv").dtype, DType::F32);
  EXPECT_EQ(shape(A + "q_b_proj.weight_scale_inv"), (S{192, 12}));
  EXPECT_EQ(shape(A + "kv_b_proj.weight"), (S{32768, 512}));
  EXPECT_EQ(shape(A + "o_proj.weight_scale_inv"), (S{56, 128}));
  EXPECT_EQ(shape(A + "indexer.wq_b.weight_scale_inv"), (S{64, 12}));
  EXPECT_EQ(shape(A + "indexer.wk.weight_scale_inv"), (S{1, 56}));
  EXPECT_EQ(by.at(A + "indexer.weights_proj.weight").dtype, DType::BF16);
  EXPECT_EQ(shape(A + "indexer.weights_proj.weight"), (S{64, 7168}));
  EXPECT_EQ(shape(A + "indexer.k_norm.bias"), (S{128}));
  EXPECT_EQ(by.at("model.layers.3.mlp.gate.weight").dtype, DType::BF16);
  EXPECT_EQ(by.at("model.layers.3.mlp.gate.e_score_correction_bias").dtype, DType::F32);
  EXPECT_EQ(shape("model.layers.3.mlp.experts.255.down_proj.weight_scale_inv"), (S{56, 16}));
  EXPECT_EQ(shape("model.layers.3.mlp.shared_experts.up_proj.weight"), (S{2048, 7168}));
  EXPECT_EQ(shape("model.layers.0.mlp.gate_proj.weight_scale_inv"), (S{144, 56}));
  EXPECT_EQ(by.count("model.layers.0.mlp.gate.weight"), 0u);
  EXPECT_EQ(shape("model.layers.61.eh_proj.weight"), (S{7168, 14336}));
  EXPECT_EQ(by.at("model.layers.61.eh_proj.weight").dtype, DType::BF16);
  EXPECT_EQ(by.count("model.layers.61.eh_proj.weight_scale_inv"), 0u);
  EXPECT_TRUE(by.at("model.layers.61.shared_head.head.weight").mtp);
  EXPECT_TRUE(by.at("model.layers.61.mlp.experts.0.up_proj.weight").mtp);
  EXPECT_FALSE(by.at("model.layers.60.mlp.experts.0.up_proj.weight").mtp);
  EXPECT_EQ(by.count("model.layers.62.enorm.weight"), 0u);
}

TEST(TensorNames, UnquantizedAndSharedExpertWidth) {
  json j = real_config();
  j.erase("quantization_config");
  j["n_shared_experts"] = 2;
  j["num_nextn_predict_layers"] = 0;
  const ModelConfig c = ModelConfig::parse(j.dump(), "r");
  std::map<std::string, ExpectedTensor> by;
  int scales = 0;
  for (const auto& t : expected_tensors(c)) {
    by[t.name] = t;
    scales += t.is_scale ? 1 : 0;
  }
  EXPECT_EQ(scales, 0);
  EXPECT_EQ(by.at("model.layers.0.self_attn.q_a_proj.weight").dtype, DType::BF16);
  EXPECT_EQ(by.at("model.layers.3.mlp.shared_experts.gate_proj.weight").shape,
            (std::vector<int64_t>{4096, 7168}));  // n_shared_experts * moe_intermediate_size
  EXPECT_EQ(by.count("model.layers.61.enorm.weight"), 0u);
  // 3 global + 3 dense x 17 + 58 MoE x (2 norms + 7 attn + 5 indexer + 2 router + 256 x 3 + 3 shared).
  EXPECT_EQ(by.size(), 3u + 3 * 17 + 58 * (2 + 7 + 5 + 2 + 768 + 3));
  j["n_shared_experts"] = 0;
  for (const auto& t : expected_tensors(ModelConfig::parse(j.dump(), "r")))
    EXPECT_EQ(t.name.find("shared_experts"), std::string::npos);
}
