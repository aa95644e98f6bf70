// Binding of a DeepSeek-V3.2 checkpoint's tensors to the model's weight structs
// (spec/model.md 3.2, 3.2b, 3.4; D26). FP8 and BF16 matrices stay in the mmap; norms become FP32.
#pragma once
#include <deque>
#include <string>
#include <vector>

#include "common/safetensors.h"
#include "kernels/cpu/gemm.h"
#include "model/config.h"

namespace ds {

/// One SwiGLU FFN (dense, routed expert or shared expert): down(silu(gate x) * up x) (spec 6).
struct FfnWeights {
  cpu::WeightView gate, up, down;
};

/// One decoder layer (MLA + lightning indexer + dense FFN or MoE).
struct LayerWeights {
  std::vector<float> attn_norm, ffn_norm;           // [hidden]
  cpu::WeightView q_a, q_b, kv_a, kv_b, o;         // spec 3.2 shapes
  std::vector<float> q_a_norm;                     // [q_lora_rank]
  std::vector<float> kv_a_norm;                    // [kv_lora_rank]
  /// Absorbed-form weights (spec 4.7) dequantized from kv_b_proj at load; BF16-rounded in official
  /// mode (the demo's weight_dequant output), FP32 in exact mode.
  std::vector<float> w_uk;  // [heads, qk_nope_head_dim, kv_lora_rank]
  std::vector<float> w_uv;  // [heads, v_head_dim, kv_lora_rank]
  // Lightning indexer (spec 5).
  cpu::WeightView idx_wq_b, idx_wk, idx_weights_proj;
  std::vector<float> idx_k_norm_w, idx_k_norm_b;  // [index_head_dim]
  // FFN: dense (`dense`) or MoE (router + experts + shared).
  bool moe = false;
  FfnWeights dense;
  cpu::WeightView router;             // [n_routed_experts, hidden] (BF16/F32)
  std::vector<float> router_bias;     // [n_routed_experts] e_score_correction_bias (empty = none)
  std::vector<FfnWeights> experts;
  FfnWeights shared;
  bool has_shared = false;
};

/// The MTP module's extra tensors (spec 7.1); its decoder layer is `layer`.
struct MtpWeights {
  cpu::WeightView embed, eh_proj, head;
  std::vector<float> enorm, hnorm, head_norm;
  LayerWeights layer;
};

/// All weights of a model. Views point into the Checkpoint's mmap and into `arena` (scale copies),
/// so the struct must outlive neither; it is not copyable.
struct ModelWeights {
  cpu::WeightView embed;   // [vocab, hidden]
  std::vector<float> final_norm;
  cpu::WeightView lm_head; // [vocab, hidden]
  std::vector<LayerWeights> layers;
  std::vector<MtpWeights> mtp;  // empty unless bound with_mtp
  std::deque<std::vector<float>> arena;

  ModelWeights() = default;
  ModelWeights(const ModelWeights&) = delete;
  ModelWeights& operator=(const ModelWeights&) = delete;
};

/// Validates `ckpt` against expected_tensors(cfg) and binds every tensor. Errors (CheckpointError,
/// naming the tensor and directory): a missing tensor, a wrong shape, a wrong dtype (FP8 slots need
/// F8_E4M3, scales F32, others BF16 or F32), a checkpoint tensor that is not expected. MTP tensors
/// are allowed and only bound when `with_mtp`. `official` selects BF16 rounding of W_UK/W_UV.
void bind_weights(const Checkpoint& ckpt, const ModelConfig& cfg, bool with_mtp, bool official, ModelWeights& w);

/// Reads a 1-D BF16/F32 tensor as FP32 (norm weights, biases).
std::vector<float> tensor_to_f32(const TensorView& t);

}  // namespace ds
