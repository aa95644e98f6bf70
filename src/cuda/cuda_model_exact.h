// The CUDA runner's EXACT numerics forward (D23: FP32 end to end on dequantized weights), the
// device twin of the CPU engine's Numerics::Exact (src/model/{deepseek_v32,mla,indexer,moe}.cpp
// with ModelCore::official = false). Internal to src/cuda; CudaModel (cuda_model.h) calls it when
// constructed with Numerics::Exact. Kernels: src/kernels/exact_ops.h plus the FP32 modes of the
// shared ones (gemm_fp8_small_m, gemm_dense, rmsnorm_f32, layernorm_f32, rope_apply, mla_absorb_*,
// moe_route, swiglu, index_head_weights, indexer_topk_scored). Design: docs/cuda.md ("Exact mode").
#pragma once
#include <cstdint>

#include "cuda/cuda_model.h"
#include "cuda/device_memory.h"
#include "cuda/device_weights.h"

namespace ds::cuda {

/// Device pointers of one step's inputs (CudaModel's input block, already on the device) and its
/// shape: R rows, NL logit rows, page-table rows of max_pages, max_keys >= every n_keys.
struct ExactStepInputs {
  const int32_t* tokens = nullptr;      ///< [R]
  const int64_t* pos = nullptr;         ///< [R]
  const int32_t* slots = nullptr;       ///< [R] KV slot of each row
  const int32_t* pages = nullptr;       ///< [R, max_pages]
  const int32_t* n_keys = nullptr;      ///< [R] causal key count (pos + 1)
  const int32_t* n_attn = nullptr;      ///< [R] min(n_keys, index_topk)
  const int32_t* logit_rows = nullptr;  ///< [NL]
  int64_t R = 0, NL = 0, max_pages = 1, max_keys = 1;
  bool any_scored = false;              ///< some row has more than index_topk keys
};

/// The exact-mode KV pool: per layer l, MLA cache mla + l * slots * (C + dr) floats and indexer
/// keys idx + l * slots * Di floats (exact_ops.h layouts), slots = page_size * num_pages.
struct ExactKv {
  float* mla = nullptr;
  float* idx = nullptr;
  int64_t slots = 0;
  int page_size = 0;
};

/// Activations and forward of exact mode. One forward at a time; not capture-safe (each MoE layer
/// downloads its routing to group rows by expert on the host, like moe.cpp), so exact mode never
/// uses CUDA graphs.
class ExactForward {
 public:
  /// Enqueues the whole step on `stream` and returns the device logits [in.NL, vocab] F32 (valid
  /// until the next run). Synchronizes `stream` once per MoE layer. With `cap` set, fills it like
  /// CudaModel::set_layer_capture (attention output before o_proj; resid + FFN output, F32).
  /// Throws std::runtime_error on a CUDA error, std::invalid_argument from the kernels' checks.
  const float* run(const DeviceWeights& w, const ExactStepInputs& in, const ExactKv& kv, const float* freqs,
                   int n_freq, CudaModel::LayerCapture* cap, cudaStream_t stream);

 private:
  DevMem step_;  // activations (bump-allocated per step, grown when a step needs more)
  DevMem moe_index_;  // per MoE layer: source rows and destination slots of the expert groups
};

}  // namespace ds::cuda
