// The DeepSeek-V3.2 forward pass on CPU (spec/model.md sections 4-6, 9).
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/batch.h"
#include "model/config.h"

namespace ds {

class Checkpoint;
struct ModelWeights;

/// D23. official: BF16 rounding where DeepSeek's demo stores BF16, FP8 E4M3 activation quantization
/// per token per 128 channels with UE8M0 scales, FP8 round trip of the cached latent, FP8 indexer
/// q/k. exact: FP32 end to end on dequantized weights.
enum class Numerics { Official, Exact };
Numerics parse_numerics(const std::string& s);  // throws std::invalid_argument naming the flag
const char* numerics_name(Numerics n);

/// Per-request KV state: for every main layer, the MLA latent cache (kv_lora_rank floats per token,
/// FP8 round-tripped in official mode), the rope key (qk_rope_head_dim floats per token) and the
/// indexer key cache (index_head_dim floats + one scale per token). Grows by append.
struct SequenceCache {
  struct Layer {
    std::vector<float> latent;     // [len, kv_lora_rank]
    std::vector<float> k_pe;       // [len, qk_rope_head_dim], RoPE applied
    std::vector<float> index_k;    // [len, index_head_dim] (FP8 values in official mode)
    std::vector<float> index_k_scale;  // [len] (1.0 in exact mode)
  };
  std::vector<Layer> layers;
  int32_t length = 0;  // tokens cached
};

/// Loaded model. Thread-compatible: one forward at a time (the engine thread).
class DeepseekV32 {
 public:
  /// Loads and validates weights from a checkpoint directory (config.json + safetensors).
  /// Throws ConfigError / CheckpointError naming the field, file or tensor. FP8 weights stay FP8
  /// in the mmap (D26). `with_mtp` binds the MTP layer too (otherwise its tensors are skipped).
  static std::unique_ptr<DeepseekV32> load(const std::string& dir, Numerics numerics, bool with_mtp = false);
  ~DeepseekV32();

  const ModelConfig& config() const;
  Numerics numerics() const { return numerics_; }
  std::unique_ptr<SequenceCache> new_cache() const;

  /// Runs all segments of `plan`; appends their tokens to their caches; returns logits
  /// (last token per segment unless all_logits). Throws std::invalid_argument on a plan whose
  /// start_pos does not match its cache length or has an out-of-vocab token.
  Logits forward(const BatchPlan& plan);

  /// Tokens run through the layers since load (prefill + decode), for tests and metrics.
  uint64_t tokens_processed() const { return tokens_processed_.load(); }

 private:
  DeepseekV32() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Numerics numerics_ = Numerics::Official;
  std::atomic<uint64_t> tokens_processed_{0};
};

}  // namespace ds
