// The CUDA model runner's entry points (issue 8; docs/cuda.md "Model runner"): device detection,
// loading a model onto the GPU, and the ModelExecutor the engine drives. No CUDA headers: the
// server reaches these through the device-backend registry (src/engine/device_backend.h), which
// this library fills at static initialization when linked into `deepserve`.
#pragma once
#include <memory>
#include <string>

#include "engine/device_backend.h"
#include "engine/engine.h"
#include "kernels/mla_cache.h"

namespace ds::cuda {

class CudaModel;

/// Number of CUDA devices. 0 (with the reason in `why`) when cudaGetDeviceCount fails: no driver,
/// no GPU, or a driver older than the runtime. Never throws.
int device_count(std::string* why = nullptr);

/// --kv-cache-dtype: auto | bf16 | bfloat16 -> BF16 (1152-byte records at full width); fp8_e4m3 ->
/// the 656-byte FP8 record (spec 8.1). Throws std::invalid_argument naming the flag otherwise.
KvCacheDtype parse_kv_cache_dtype(const std::string& s);

/// Default --mem-fraction-static of the CUDA runner (fraction of total device memory for weights
/// + KV pool; the rest is left for step activations, workspaces and the CUDA context).
constexpr double kDefaultMemFraction = 0.85;

/// Loads `o.model_dir` onto device 0 (checkpoint upload, or dummy weights), then sizes the KV
/// pool: budget = total * fraction - (total - free after weights); pages = budget / (bytes per
/// token x page size), capped by max_total_tokens when given and at 2^31 slots; logs the page
/// count and bytes. Throws std::runtime_error naming --device / --mem-fraction-static /
/// --max-total-tokens when there is no GPU or the budget does not hold one context.
DeviceRunner load_device_runner(const DeviceRunnerOptions& o);

/// ModelExecutor over a CudaModel (paged plans; logits come back to the host for the engine's
/// CPU sampler).
std::unique_ptr<ModelExecutor> make_cuda_executor(std::shared_ptr<CudaModel> model);

}  // namespace ds::cuda
