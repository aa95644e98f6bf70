// DeepSeek-V3.2 weights in device memory for the CUDA runner (spec/model.md 3.2, 3.4; issue 8):
// FP8 matrices stay FP8 with their 128x128 scale_inv blocks, BF16/F32 dense matrices stay as
// stored, norms are uploaded as the kernels read them. Internal to src/cuda (no CUDA headers).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/gemm_dense.h"
#include "kernels/gemm_fp8.h"
#include "kernels/mla_attention.h"
#include "kernels/moe_experts.h"
#include "model/config.h"
#include "model/deepseek_v32.h"  // Numerics

namespace ds::cuda {

/// A projection slot of spec 9.1: FP8 (block-scaled) or dense BF16/F32; rows = N, cols = K.
struct LinearDev {
  bool fp8 = false;
  Fp8WeightDev f8;
  DenseWeightDev dense;
  int64_t rows() const { return fp8 ? f8.rows : dense.rows; }
  int64_t cols() const { return fp8 ? f8.cols : dense.cols; }
};

/// One SwiGLU FFN (dense, routed expert, shared expert).
struct FfnDev {
  LinearDev gate, up, down;
};

/// One decoder layer on the device. Norm weights: attn/ffn norms BF16 bits (add_rmsnorm_bf16),
/// q_a/kv_a norms and the indexer LayerNorm F32.
struct LayerDev {
  const uint16_t* attn_norm = nullptr;  // [hidden] BF16
  const uint16_t* ffn_norm = nullptr;   // [hidden] BF16
  LinearDev q_a, q_b, kv_a, o;
  /// q_a and kv_a as one FP8 weight [q_lora_rank + kv_lora_rank + rope, hidden] (rows of q_a, then
  /// kv_a; q_a and kv_a above are views of its row ranges) when both are FP8 and q_lora_rank % 128
  /// == 0 (the 128 x 128 scale blocks stay aligned): the runner launches one GEMM for both
  /// (per-element bits unchanged: they depend on K only). Otherwise qkv_fused = false.
  LinearDev q_a_kv_a;
  bool qkv_fused = false;
  const float* q_a_norm = nullptr;   // [q_lora_rank]
  const float* kv_a_norm = nullptr;  // [kv_lora_rank]
  AbsorbWeightDev w_uk, w_uv;        // BF16 values (official mode, spec 4.7); F32 in exact mode
  LinearDev idx_wq_b, idx_wk;
  DenseWeightDev idx_weights_proj;   // [index_n_heads, hidden], FP32 GEMM (Nov demo)
  const float* idx_k_norm_w = nullptr;
  const float* idx_k_norm_b = nullptr;
  bool moe = false;
  FfnDev dense;
  DenseWeightDev router;             // [n_routed_experts, hidden]
  const float* router_bias = nullptr;  // [n_routed_experts] or null
  const ExpertDev* experts = nullptr;  // DEVICE array [n_routed_experts (+ 1 if shared_fused)] (moe_experts reads it)
  bool all_experts_fp8 = true;
  std::vector<FfnDev> experts_host;    // the same weights, host-side handles
  FfnDev shared;
  bool has_shared = false;
  bool shared_fused = false;  // the shared expert is experts[n_routed_experts] (official mode runs it there)
};

/// All weights of a model in one device allocation (plus the config they were made for).
class DeviceWeights {
 public:
  /// Uploads a checkpoint directory: validates it with bind_weights (official numerics: W_UK/W_UV
  /// BF16-rounded and stored BF16; exact numerics: W_UK/W_UV = fp8 * scale unrounded, stored F32,
  /// as the CPU exact mode), then copies every tensor through a pinned staging buffer, logging
  /// progress (GB, GB/s). Every other tensor is identical in both modes. Throws ConfigError /
  /// CheckpointError naming the file/tensor, std::runtime_error on a CUDA error (e.g. out of
  /// memory, with the bytes needed).
  static std::unique_ptr<DeviceWeights> load(const std::string& dir, Numerics numerics = Numerics::Official);
  /// --load-format dummy: random weights of the configured shapes made on the device from
  /// config.json alone (FP8 E4M3 uniform codes with scale_inv = 1 / (258.7 * sqrt(cols)), so
  /// |W| has std ~ cols^-0.5; norms 1; BF16 dense weights uniform with the same std; router bias
  /// 0). No safetensors are read. Deterministic in `seed`. Exact numerics: W_UK/W_UV in F32.
  static std::unique_ptr<DeviceWeights> dummy(const std::string& dir, uint64_t seed = 1,
                                              Numerics numerics = Numerics::Official);
  ~DeviceWeights();
  DeviceWeights(const DeviceWeights&) = delete;
  DeviceWeights& operator=(const DeviceWeights&) = delete;
  struct Builder;  // implementation (device_weights.cpp)

  const ModelConfig& config() const { return cfg_; }
  /// The numerics mode the weights were prepared for (W_UK/W_UV storage).
  Numerics numerics() const { return numerics_; }
  const std::vector<LayerDev>& layers() const { return layers_; }
  /// Embedding table [vocab, hidden] (BF16 bits if embed_bf16()).
  const void* embed() const { return embed_; }
  bool embed_bf16() const { return embed_bf16_; }
  const uint16_t* final_norm() const { return final_norm_; }
  const DenseWeightDev& lm_head() const { return lm_head_; }
  /// Bytes of weights resident on the device (everything above).
  int64_t resident_bytes() const { return resident_; }
  /// Bytes of the same tensors in the checkpoint (main layers, no MTP): the FP8 expectation.
  int64_t checkpoint_bytes() const { return ckpt_bytes_; }

 private:
  DeviceWeights() = default;
  ModelConfig cfg_;
  Numerics numerics_ = Numerics::Official;
  void* base_ = nullptr;
  int64_t resident_ = 0, ckpt_bytes_ = 0;
  std::vector<LayerDev> layers_;
  const void* embed_ = nullptr;
  bool embed_bf16_ = true;
  const uint16_t* final_norm_ = nullptr;
  DenseWeightDev lm_head_;
};

/// Checkpoint bytes of the main-layer tensors of `cfg` (expected_tensors without MTP) and the
/// device bytes the runner keeps for them (kv_b_proj replaced by W_UK/W_UV in BF16, F32 in exact
/// numerics; q_a/kv_a norms and the indexer LayerNorm as F32): what DeviceWeights must report.
struct WeightBytes {
  int64_t checkpoint = 0, device = 0;
};
WeightBytes expected_weight_bytes(const ModelConfig& cfg, Numerics numerics = Numerics::Official);

}  // namespace ds::cuda
