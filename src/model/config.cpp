// config.json parsing and validation for DeepSeek-V3.2 (spec/model.md section 2, 4.4, 4.5).
#include "model/config.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

namespace ds {

using nlohmann::json;

namespace {

// Reads typed fields of one JSON object; every error names `source` and the dotted field path.
struct Fields {
  const json& j;
  std::string source;
  std::string prefix;  // "" or "rope_scaling."

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw ConfigError(source + ": field '" + prefix + field + "' " + what);
  }
  const json* find(const std::string& k) const {
    auto it = j.find(k);
    return (it == j.end() || it->is_null()) ? nullptr : &*it;
  }
  int integer(const std::string& k, int lo, int hi, std::optional<int> def = std::nullopt) const {
    const json* v = find(k);
    if (!v) {
      if (def) return *def;
      fail(k, "is missing (an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "] is required)");
    }
    if (!v->is_number_integer())
      fail(k, "must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + v->dump());
    const int64_t x = v->get<int64_t>();
    if (x < lo || x > hi)
      fail(k, "must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + v->dump());
    return int(x);
  }
  double number(const std::string& k, double lo, double hi, std::optional<double> def = std::nullopt) const {
    const json* v = find(k);
    if (!v) {
      if (def) return *def;
      fail(k, "is missing (a number is required)");
    }
    if (!v->is_number()) fail(k, "must be a number, got " + v->dump());
    const double x = v->get<double>();
    if (!std::isfinite(x) || x < lo || x > hi)
      fail(k, "must be a number in [" + fmt(lo) + ", " + fmt(hi) + "], got " + v->dump());
    return x;
  }
  bool boolean(const std::string& k, bool def) const {
    const json* v = find(k);
    if (!v) return def;
    if (!v->is_boolean()) fail(k, "must be true or false, got " + v->dump());
    return v->get<bool>();
  }
  std::string string(const std::string& k, std::optional<std::string> def = std::nullopt) const {
    const json* v = find(k);
    if (!v) {
      if (def) return *def;
      fail(k, "is missing (a string is required)");
    }
    if (!v->is_string()) fail(k, "must be a string, got " + v->dump());
    return v->get<std::string>();
  }
  std::string one_of(const std::string& k, std::initializer_list<const char*> allowed,
                     std::optional<std::string> def = std::nullopt) const {
    std::string s = string(k, def);
    std::string list;
    for (const char* a : allowed) {
      if (s == a) return s;
      list += std::string(list.empty() ? "" : ", ") + "\"" + a + "\"";
    }
    fail(k, "must be one of " + list + ", got \"" + s + "\"");
  }
  static std::string fmt(double x) {
    std::ostringstream o;
    o << x;
    return o.str();
  }
};

constexpr int kMaxI = std::numeric_limits<int>::max();
constexpr double kInf = std::numeric_limits<double>::infinity();

}  // namespace

double ModelConfig::softmax_scale() const {
  double s = 1.0 / std::sqrt(double(qk_head_dim()));
  if (rope_scaling.enabled && rope_scaling.factor > 1.0) {
    const double m = 0.1 * rope_scaling.mscale_all_dim * std::log(rope_scaling.factor) + 1.0;
    s *= m * m;
  }
  return s;
}

ModelConfig ModelConfig::load(const std::string& dir) {
  const std::string path = dir + "/config.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot open (no config.json in the model directory?)");
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path);
}

ModelConfig ModelConfig::parse(const std::string& json_text, const std::string& source) {
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw ConfigError(source + ": not valid JSON");
  if (!j.is_object()) throw ConfigError(source + ": not a JSON object");
  Fields f{j, source, ""};
  ModelConfig c;
  c.model_type = f.string("model_type");
  if (c.model_type != "deepseek_v32")
    f.fail("model_type", "must be \"deepseek_v32\" (DeepSeek-V3.2), got \"" + c.model_type + "\"");

  c.vocab_size = f.integer("vocab_size", 2, kMaxI);
  c.hidden_size = f.integer("hidden_size", 1, kMaxI);
  c.intermediate_size = f.integer("intermediate_size", 1, kMaxI);
  c.moe_intermediate_size = f.integer("moe_intermediate_size", 1, kMaxI);
  c.num_hidden_layers = f.integer("num_hidden_layers", 1, 4096);
  c.num_nextn_predict_layers = f.integer("num_nextn_predict_layers", 0, 1, 0);
  c.first_k_dense_replace = f.integer("first_k_dense_replace", 0, c.num_hidden_layers, 0);
  c.moe_layer_freq = f.integer("moe_layer_freq", 1, kMaxI, 1);
  c.num_attention_heads = f.integer("num_attention_heads", 1, 65536);
  c.q_lora_rank = f.integer("q_lora_rank", 1, kMaxI);
  c.kv_lora_rank = f.integer("kv_lora_rank", 1, kMaxI);
  c.qk_nope_head_dim = f.integer("qk_nope_head_dim", 1, 65536);
  c.qk_rope_head_dim = f.integer("qk_rope_head_dim", 2, 65536);
  if (c.qk_rope_head_dim % 2 != 0) f.fail("qk_rope_head_dim", "must be even (RoPE rotates pairs)");
  c.v_head_dim = f.integer("v_head_dim", 1, 65536);
  c.n_routed_experts = f.integer("n_routed_experts", 1, 65536);
  c.n_shared_experts = f.integer("n_shared_experts", 0, 64, 0);
  c.num_experts_per_tok = f.integer("num_experts_per_tok", 1, c.n_routed_experts);
  c.n_group = f.integer("n_group", 1, c.n_routed_experts, 1);
  if (c.n_routed_experts % c.n_group != 0)
    f.fail("n_group", "must divide n_routed_experts (" + std::to_string(c.n_routed_experts) + "), got " +
                          std::to_string(c.n_group));
  c.topk_group = f.integer("topk_group", 1, c.n_group, 1);
  if (c.num_experts_per_tok > c.topk_group * (c.n_routed_experts / c.n_group))
    f.fail("num_experts_per_tok", "exceeds the experts in the topk_group kept groups (" +
                                      std::to_string(c.topk_group * (c.n_routed_experts / c.n_group)) + ")");
  c.routed_scaling_factor = f.number("routed_scaling_factor", 0.0, kInf, 1.0);
  c.norm_topk_prob = f.boolean("norm_topk_prob", true);
  c.scoring_func = f.one_of("scoring_func", {"sigmoid"}, "sigmoid");
  c.topk_method = f.one_of("topk_method", {"noaux_tc"}, "noaux_tc");
  c.index_n_heads = f.integer("index_n_heads", 1, 65536);
  c.index_head_dim = f.integer("index_head_dim", 1, 65536);
  if (c.index_head_dim < c.qk_rope_head_dim)
    f.fail("index_head_dim", "must be >= qk_rope_head_dim (" + std::to_string(c.qk_rope_head_dim) + "), got " +
                                 std::to_string(c.index_head_dim));
  if ((c.index_head_dim & (c.index_head_dim - 1)) != 0)
    f.fail("index_head_dim", "must be a power of two (Hadamard transform), got " + std::to_string(c.index_head_dim));
  c.index_topk = f.integer("index_topk", 1, kMaxI);
  c.rope_theta = f.number("rope_theta", 1e-300, kInf, 10000.0);
  c.max_position_embeddings = f.integer("max_position_embeddings", 1, kMaxI);
  c.rms_norm_eps = f.number("rms_norm_eps", 1e-300, 1.0, 1e-6);
  c.bos_token_id = f.integer("bos_token_id", 0, c.vocab_size - 1, 0);
  c.eos_token_id = f.integer("eos_token_id", 0, c.vocab_size - 1, 1);
  c.tie_word_embeddings = f.boolean("tie_word_embeddings", false);
  if (c.tie_word_embeddings) f.fail("tie_word_embeddings", "must be false (DeepSeek-V3.2 has a separate lm_head)");
  if (f.find("hidden_act")) f.one_of("hidden_act", {"silu"});
  if (f.boolean("attention_bias", false)) f.fail("attention_bias", "must be false (MLA has no biases)");

  if (const json* rs = f.find("rope_scaling")) {
    if (!rs->is_object()) f.fail("rope_scaling", "must be an object or null, got " + rs->dump());
    Fields r{*rs, source, "rope_scaling."};
    std::string type = r.find("type") ? r.one_of("type", {"yarn"}) : r.one_of("rope_type", {"yarn"});
    (void)type;
    c.rope_scaling.enabled = true;
    c.rope_scaling.factor = r.number("factor", 1.0, kInf);
    c.rope_scaling.original_max_position_embeddings = r.integer("original_max_position_embeddings", 1, kMaxI);
    c.rope_scaling.beta_fast = r.number("beta_fast", 0.0, kInf, 32.0);
    c.rope_scaling.beta_slow = r.number("beta_slow", 0.0, kInf, 1.0);
    c.rope_scaling.mscale = r.number("mscale", 0.0, kInf, 1.0);
    c.rope_scaling.mscale_all_dim = r.number("mscale_all_dim", 0.0, kInf, 1.0);
    if (c.rope_scaling.beta_slow > c.rope_scaling.beta_fast)
      r.fail("beta_slow", "must be <= beta_fast");
  }

  if (const json* qc = f.find("quantization_config")) {
    if (!qc->is_object()) f.fail("quantization_config", "must be an object, got " + qc->dump());
    Fields q{*qc, source, "quantization_config."};
    q.one_of("quant_method", {"fp8"});
    q.one_of("fmt", {"e4m3"}, "e4m3");
    q.one_of("activation_scheme", {"dynamic"}, "dynamic");
    const json* bs = q.find("weight_block_size");
    if (!bs || !bs->is_array() || bs->size() != 2 || (*bs)[0] != 128 || (*bs)[1] != 128)
      q.fail("weight_block_size", "must be [128, 128], got " + (bs ? bs->dump() : std::string("nothing")));
    c.fp8 = true;
    c.weight_block_size = 128;
    c.scale_fmt_ue8m0 = q.find("scale_fmt") != nullptr && q.one_of("scale_fmt", {"ue8m0"}) == "ue8m0";
  }

  if (c.fp8) {
    // Every GEMM reduction dim must be a multiple of 128: act_quant groups 128 channels (spec 9.2).
    auto need128 = [&](const std::string& field, int v) {
      if (v % 128 != 0)
        f.fail(field, "must be a multiple of 128 for an FP8 checkpoint (activation quantization groups), got " +
                          std::to_string(v));
    };
    need128("hidden_size", c.hidden_size);
    need128("intermediate_size", c.intermediate_size);
    need128("moe_intermediate_size", c.moe_intermediate_size);
    need128("q_lora_rank", c.q_lora_rank);
    need128("kv_lora_rank", c.kv_lora_rank);
    if ((c.num_attention_heads * c.v_head_dim) % 128 != 0)
      f.fail("v_head_dim", "num_attention_heads * v_head_dim must be a multiple of 128 for an FP8 checkpoint");
  }
  return c;
}

}  // namespace ds
