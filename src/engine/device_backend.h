// Optional device backends of the engine (the CUDA runner, src/cuda/): a process-wide registry so
// that `deepserve serve --device cuda` can build a GPU ModelExecutor without the server layer
// linking CUDA. The CUDA runner library registers itself at static-initialization time when it is
// linked into the binary (whole-archive, cmake/cuda.cmake); a CPU-only build registers nothing.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "engine/engine.h"
#include "model/config.h"

namespace ds {

/// What serve hands a device backend (from its flags).
struct DeviceRunnerOptions {
  std::string model_dir;
  bool dummy_weights = false;         ///< --load-format dummy: random weights from config.json alone
  double mem_fraction_static = 0.0;   ///< 0: the backend's default
  std::string kv_cache_dtype = "auto";  ///< auto | bf16 | bfloat16 | fp8_e4m3
  int page_size = 64;
  int64_t max_total_tokens = 0;       ///< 0: as many as the memory fraction allows
  int context_length = 0;             ///< the pool holds at least one context (+ one page)
  int cuda_graph_max_bs = 0;          ///< --cuda-graph-max-bs; 0: the backend's default
  std::string cuda_graph_bs;          ///< --cuda-graph-bs list ("1,2,4,8"); empty: generated
  bool disable_cuda_graph = false;    ///< --disable-cuda-graph
  std::string numerics = "official";  ///< --numerics official | exact (D23)
};

/// A loaded device model: the executor (its KV pool is created by the Engine through init_kv with
/// `kv_tokens / page_size` pages) and the config it runs.
struct DeviceRunner {
  std::unique_ptr<ModelExecutor> executor;
  ModelConfig config;
  int64_t kv_tokens = 0;  ///< KV pool capacity in tokens (a multiple of page_size)
};

struct DeviceBackend {
  std::string name;  ///< "cuda"
  /// Number of usable devices; 0 when there is no GPU or no driver (`why` gets the reason).
  std::function<int(std::string* why)> device_count;
  /// Loads weights and sizes the KV pool; throws with a message naming the flag or file.
  std::function<DeviceRunner(const DeviceRunnerOptions&)> load;
};

/// Registers (replaces) the backend called b.name. Returns true (for static registration).
bool register_device_backend(DeviceBackend b);
/// The backend called `name`, or null when this binary was built without it.
const DeviceBackend* find_device_backend(const std::string& name);

}  // namespace ds
