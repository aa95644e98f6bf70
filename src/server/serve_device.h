// `deepserve serve --device cuda|cpu`: picks the device and loads the model for it (the CPU
// DeepseekV32 or a registered device backend, src/engine/device_backend.h). docs/server.md.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "engine/engine.h"
#include "model/config.h"
#include "server/server_args.h"

namespace ds {

/// The model serve runs: its executor, its config, and (device backends) the KV pool size chosen
/// from --mem-fraction-static.
struct ServeModel {
  std::string device;  ///< "cpu" or "cuda"
  ModelConfig config;
  std::unique_ptr<ModelExecutor> executor;
  int64_t kv_tokens = 0;  ///< device backends: pool capacity in tokens; cpu: 0 (serve sizes it)
};

/// --device: "cuda"/"cpu" as given; empty (auto) -> cuda when this binary has the CUDA runner and
/// a GPU is usable, else cpu. Throws ArgsError naming --device for `cuda` without the runner or
/// without a usable GPU (the message gives the driver's reason).
std::string resolve_device(const ServerArgs& a);

/// Loads the model for `device` (from resolve_device). cpu: DeepseekV32 (refuses --load-format
/// dummy, naming the flag); cuda: the backend's loader (numerics official only: --numerics exact
/// is refused naming the flag). `context_length` is the serving context (the KV pool must hold one).
ServeModel load_serve_model(const ServerArgs& a, const std::string& device, const std::string& model_dir,
                            int context_length);

}  // namespace ds
