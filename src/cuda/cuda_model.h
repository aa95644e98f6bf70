// The DeepSeek-V3.2 forward on the GPU in either numerics mode (D23), mirroring the CPU forward
// (src/model/deepseek_v32.cpp, mla.cpp, indexer.cpp, moe.cpp) op for op and rounding for rounding:
// official here, exact in cuda_model_exact.{h,cpp}. The kernels are in src/kernels/*.cu. Internal
// to src/cuda (no CUDA headers).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "cuda/cuda_graphs.h"
#include "cuda/device_weights.h"
#include "kernels/mla_cache.h"
#include "kernels/sampling.h"
#include "model/batch.h"

namespace ds::cuda {

/// Weights + paged device KV pool + step workspace. One forward at a time (the engine thread).
class CudaModel {
 public:
  /// Takes the weights; the numerics mode is the one they were loaded for (DeviceWeights::load /
  /// dummy). Official: `kv_dtype` selects the MLA cache record (mla_cache.h). Exact: FP32 caches
  /// (exact_ops.h layouts) whatever `kv_dtype` says, and no CUDA graphs (every step eager).
  CudaModel(std::unique_ptr<DeviceWeights> w, KvCacheDtype kv_dtype);
  ~CudaModel();
  CudaModel(const CudaModel&) = delete;
  CudaModel& operator=(const CudaModel&) = delete;

  const ModelConfig& config() const { return w_->config(); }
  const DeviceWeights& weights() const { return *w_; }
  KvCacheDtype kv_dtype() const { return kv_dtype_; }
  /// Numerics::Official or Numerics::Exact (D23), fixed at load.
  Numerics numerics() const { return numerics_; }

  /// Device bytes one KV token slot takes over all layers (MLA record + indexer key + scale;
  /// exact mode: (kv_lora + rope) * 4 + index_head_dim * 4 + 4 per layer).
  int64_t kv_bytes_per_token() const;
  /// (Re)allocates the device KV pool: num_pages pages of page_size slots in every layer
  /// (contents zeroed), then capture_graphs(). Throws std::invalid_argument naming --page-size / --max-total-tokens for
  /// bad sizes, std::runtime_error when the device memory is short.
  void init_kv_pool(int page_size, int64_t num_pages);
  int page_size() const { return page_size_; }
  int64_t num_pages() const { return num_pages_; }

  /// Same contract as DeepseekV32::forward for PAGED segments (private caches are refused with
  /// std::invalid_argument): validates the plan before touching the KV pool (same rules and
  /// messages), writes each token's keys into its page-table slot, returns FP32 logits on the
  /// host for the last token of each segment (every token with all_logits).
  /// Decode steps (every segment one token, no all_logits) whose segment count fits a captured
  /// graph replay it (padded rows: slot -1 writes no KV, their logits are ignored); other plans run
  /// eagerly. Both give bit-identical rows when every kernel is batch invariant (D27).
  Logits forward(const BatchPlan& plan);

  /// forward() followed by sampling on the device (kernels/sampling.h): one token id per segment,
  /// `params[i]` for segment i (all_logits segments are refused). Only the ids come back to the host.
  std::vector<int32_t> forward_sample(const BatchPlan& plan, const std::vector<SampleRowParams>& params);

  /// Sets the graph options; the graphs are (re)captured by init_kv_pool (they bake in the pool's
  /// pointers) or by capture_graphs() when a pool exists. Throws std::invalid_argument naming the flag.
  void set_graph_options(const CudaGraphOptions& o);
  /// Captures one decode graph per size of cuda_graph_batch_sizes (no-op when disabled or when no
  /// options with max_context > 0 were set: the default CudaModel runs eagerly); each size
  /// first runs once eagerly on its static buffers (first-call attribute setting happens outside).
  void capture_graphs();
  /// Runtime switch for tests and benchmarks: false makes every step eager (graphs are kept).
  void use_graphs(bool on) { use_graphs_ = on; }
  std::vector<int> graph_sizes() const { return graphs_.sizes(); }
  uint64_t graph_replays() const { return graphs_.replays(); }

  /// TEST HOOK (drivers only): per-layer host copies of one eager forward, the twins of
  /// ForwardTrace::attn and ::hidden (src/model/deepseek_v32.h), so a driver can name the first
  /// layer and block where the GPU departs from the CPU.
  struct LayerCapture {
    std::vector<std::vector<float>> attn;    ///< [layer][R * heads * v_head_dim]: attention output before o_proj (BF16 values)
    std::vector<std::vector<float>> hidden;  ///< [layer][R * hidden]: stored residual + FFN output, F32 sum
  };
  /// While `c` is non-null, forward() synchronizes after each layer's attention and FFN and fills
  /// *c (cleared first). Slow; never set while graphs are captured (init_kv_pool / capture_graphs).
  void set_layer_capture(LayerCapture* c) { layer_capture_ = c; }

 private:
  void step(const BatchPlan& plan, const std::vector<SampleRowParams>* params, Logits* logits,
            std::vector<int32_t>* ids);
  struct Impl;
  CudaGraphOptions graph_opts_;
  GraphSet graphs_;
  bool use_graphs_ = true;
  LayerCapture* layer_capture_ = nullptr;
  std::unique_ptr<DeviceWeights> w_;
  KvCacheDtype kv_dtype_;
  Numerics numerics_ = Numerics::Official;
  int page_size_ = 0;
  int64_t num_pages_ = 0;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ds::cuda
