#include "model/weights.h"

#include <cstring>
#include <map>

#include "model/tensor_names.h"

namespace ds {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

class Binder {
 public:
  Binder(const Checkpoint& ckpt, const ModelConfig& cfg, bool with_mtp, bool official, ModelWeights& w)
      : ckpt_(ckpt), cfg_(cfg), with_mtp_(with_mtp), official_(official), w_(w) {}

  void run() {
    validate();
    w_.embed = matrix("model.embed_tokens.weight");
    w_.final_norm = vec("model.norm.weight");
    w_.lm_head = matrix("lm_head.weight");
    for (int i = 0; i < cfg_.num_hidden_layers; ++i) {
      w_.layers.emplace_back();
      layer(i, cfg_.is_moe_layer(i), w_.layers.back());
    }
    if (with_mtp_) {
      for (int k = 0; k < cfg_.num_nextn_predict_layers; ++k) {
        const int i = cfg_.num_hidden_layers + k;
        const std::string P = "model.layers." + std::to_string(i) + ".";
        w_.mtp.emplace_back();
        MtpWeights& m = w_.mtp.back();
        m.embed = matrix(P + "embed_tokens.weight");
        m.enorm = vec(P + "enorm.weight");
        m.hnorm = vec(P + "hnorm.weight");
        m.eh_proj = matrix(P + "eh_proj.weight");
        m.head_norm = vec(P + "shared_head.norm.weight");
        m.head = matrix(P + "shared_head.head.weight");
        layer(i, true, m.layer);
      }
    }
  }

 private:
  // Every expected tensor present with the right dtype/shape; nothing unexpected.
  void validate() {
    std::map<std::string, const ExpectedTensor*> expected;
    const auto list = expected_tensors(cfg_);
    for (const auto& e : list) expected[e.name] = &e;
    for (const auto& name : ckpt_.names())
      if (!expected.count(name))
        throw CheckpointError("unexpected tensor " + name + " in " + ckpt_.dir() +
                              " (not part of a DeepSeek-V3.2 checkpoint for this config.json)");
    for (const auto& e : list) {
      if (e.mtp && !with_mtp_) continue;
      const TensorView* t = ckpt_.find(e.name);
      if (!t) throw CheckpointError("missing tensor " + e.name + " in " + ckpt_.dir());
      if (t->shape != e.shape)
        throw CheckpointError("tensor " + e.name + " in " + t->file + " has shape " + shape_str(t->shape) +
                              ", expected " + shape_str(e.shape));
      bool ok;
      if (e.fp8) ok = t->dtype == DType::F8_E4M3;
      else if (e.is_scale) ok = t->dtype == DType::F32;
      else ok = t->dtype == DType::BF16 || t->dtype == DType::F32;
      if (!ok)
        throw CheckpointError("tensor " + e.name + " in " + t->file + " has dtype " +
                              std::string(dtype_name(t->dtype)) + ", expected " +
                              (e.fp8 ? "F8_E4M3" : e.is_scale ? "F32" : "BF16 or F32"));
    }
  }

  cpu::WeightView matrix(const std::string& name) {
    const TensorView& t = ckpt_.get(name);
    cpu::WeightView v;
    v.dtype = t.dtype;
    v.rows = t.shape[0];
    v.cols = t.shape[1];
    v.data = t.data;
    if (t.dtype == DType::F8_E4M3) {
      const TensorView& s = ckpt_.get(name + "_scale_inv");
      std::vector<float> sc(size_t(s.numel()));
      std::memcpy(sc.data(), s.data, sc.size() * 4);
      w_.arena.push_back(std::move(sc));
      v.scale_inv = w_.arena.back().data();
    }
    return v;
  }

  std::vector<float> vec(const std::string& name) { return tensor_to_f32(ckpt_.get(name)); }

  FfnWeights ffn(const std::string& p) {
    return {matrix(p + "gate_proj.weight"), matrix(p + "up_proj.weight"), matrix(p + "down_proj.weight")};
  }

  void layer(int i, bool moe, LayerWeights& L) {
    const std::string P = "model.layers." + std::to_string(i) + ".";
    L.attn_norm = vec(P + "input_layernorm.weight");
    L.ffn_norm = vec(P + "post_attention_layernorm.weight");
    const std::string A = P + "self_attn.";
    L.q_a = matrix(A + "q_a_proj.weight");
    L.q_a_norm = vec(A + "q_a_layernorm.weight");
    L.q_b = matrix(A + "q_b_proj.weight");
    L.kv_a = matrix(A + "kv_a_proj_with_mqa.weight");
    L.kv_a_norm = vec(A + "kv_a_layernorm.weight");
    L.kv_b = matrix(A + "kv_b_proj.weight");
    L.o = matrix(A + "o_proj.weight");
    absorb(L);
    const std::string I = A + "indexer.";
    L.idx_wq_b = matrix(I + "wq_b.weight");
    L.idx_wk = matrix(I + "wk.weight");
    L.idx_k_norm_w = vec(I + "k_norm.weight");
    L.idx_k_norm_b = vec(I + "k_norm.bias");
    L.idx_weights_proj = matrix(I + "weights_proj.weight");
    const std::string M = P + "mlp.";
    L.moe = moe;
    if (!moe) {
      L.dense = ffn(M);
      return;
    }
    L.router = matrix(M + "gate.weight");
    L.router_bias = vec(M + "gate.e_score_correction_bias");
    for (int j = 0; j < cfg_.n_routed_experts; ++j) L.experts.push_back(ffn(M + "experts." + std::to_string(j) + "."));
    L.has_shared = cfg_.n_shared_experts > 0;
    if (L.has_shared) L.shared = ffn(M + "shared_experts.");
  }

  // W_UK / W_UV of spec 4.7 from kv_b_proj rows [h*(nope+v), ...).
  void absorb(LayerWeights& L) {
    const int H = cfg_.num_attention_heads, dn = cfg_.qk_nope_head_dim, dv = cfg_.v_head_dim;
    const int64_t C = cfg_.kv_lora_rank;
    std::vector<float> full(size_t(L.kv_b.rows * C));
    cpu::dequantize_rows(L.kv_b, 0, L.kv_b.rows, full.data());
    if (official_)
      for (auto& x : full) x = round_bf16(x);
    L.w_uk.resize(size_t(H) * dn * C);
    L.w_uv.resize(size_t(H) * dv * C);
    for (int h = 0; h < H; ++h) {
      const float* base = full.data() + int64_t(h) * (dn + dv) * C;
      std::memcpy(L.w_uk.data() + int64_t(h) * dn * C, base, size_t(dn * C) * 4);
      std::memcpy(L.w_uv.data() + int64_t(h) * dv * C, base + dn * C, size_t(dv * C) * 4);
    }
  }

  const Checkpoint& ckpt_;
  const ModelConfig& cfg_;
  bool with_mtp_, official_;
  ModelWeights& w_;
};

}  // namespace

std::vector<float> tensor_to_f32(const TensorView& t) {
  std::vector<float> out(size_t(t.numel()));
  if (t.dtype == DType::F32) {
    std::memcpy(out.data(), t.data, out.size() * 4);
  } else if (t.dtype == DType::BF16) {
    for (size_t i = 0; i < out.size(); ++i) {
      uint16_t b;
      std::memcpy(&b, t.data + 2 * i, 2);
      out[i] = bf16_to_f32(b);
    }
  } else {
    throw CheckpointError("tensor " + t.name + " in " + t.file + ": expected BF16 or F32, got " +
                          std::string(dtype_name(t.dtype)));
  }
  return out;
}

void bind_weights(const Checkpoint& ckpt, const ModelConfig& cfg, bool with_mtp, bool official, ModelWeights& w) {
  Binder(ckpt, cfg, with_mtp, official, w).run();
}

}  // namespace ds
