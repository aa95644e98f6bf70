// The DeepSeek-V3.2 forward on the GPU in the official numerics mode (D23), mirroring the CPU
// forward (src/model/deepseek_v32.cpp, mla.cpp, indexer.cpp, moe.cpp) op for op and rounding for
// rounding; the kernels are in src/kernels/*.cu. Internal to src/cuda (no CUDA headers).
#pragma once
#include <cstdint>
#include <memory>

#include "cuda/device_weights.h"
#include "kernels/mla_cache.h"
#include "model/batch.h"

namespace ds::cuda {

/// Weights + paged device KV pool + step workspace. One forward at a time (the engine thread).
class CudaModel {
 public:
  /// Takes the weights; `kv_dtype` selects the MLA cache record (mla_cache.h).
  CudaModel(std::unique_ptr<DeviceWeights> w, KvCacheDtype kv_dtype);
  ~CudaModel();
  CudaModel(const CudaModel&) = delete;
  CudaModel& operator=(const CudaModel&) = delete;

  const ModelConfig& config() const { return w_->config(); }
  const DeviceWeights& weights() const { return *w_; }
  KvCacheDtype kv_dtype() const { return kv_dtype_; }

  /// Device bytes one KV token slot takes over all layers (MLA record + indexer key + scale).
  int64_t kv_bytes_per_token() const;
  /// (Re)allocates the device KV pool: num_pages pages of page_size slots in every layer
  /// (contents zeroed). Throws std::invalid_argument naming --page-size / --max-total-tokens for
  /// bad sizes, std::runtime_error when the device memory is short.
  void init_kv_pool(int page_size, int64_t num_pages);
  int page_size() const { return page_size_; }
  int64_t num_pages() const { return num_pages_; }

  /// Same contract as DeepseekV32::forward for PAGED segments (private caches are refused with
  /// std::invalid_argument): validates the plan before touching the KV pool (same rules and
  /// messages), writes each token's keys into its page-table slot, returns FP32 logits on the
  /// host for the last token of each segment (every token with all_logits).
  Logits forward(const BatchPlan& plan);

 private:
  struct Impl;
  std::unique_ptr<DeviceWeights> w_;
  KvCacheDtype kv_dtype_;
  int page_size_ = 0;
  int64_t num_pages_ = 0;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ds::cuda
