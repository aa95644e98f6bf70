// Device selection and model loading for `deepserve serve` (serve_device.h).
#include "server/serve_device.h"

#include <spdlog/spdlog.h>

#include "engine/device_backend.h"
#include "model/deepseek_v32.h"

namespace ds {

std::string resolve_device(const ServerArgs& a) {
  const DeviceBackend* cuda = find_device_backend("cuda");
  std::string why = "this deepserve was built without CUDA";
  const int n = cuda ? cuda->device_count(&why) : 0;
  if (a.device == "cpu") return "cpu";
  if (a.device == "cuda") {
    if (!cuda) throw ArgsError("--device cuda: not available; this deepserve was built without the CUDA runner (use --device cpu)");
    if (n < 1) throw ArgsError("--device cuda: no usable GPU (" + why + "); use --device cpu");
    return "cuda";
  }
  if (n > 0) return "cuda";
  spdlog::info("--device auto: cpu ({})", why);
  return "cpu";
}

ServeModel load_serve_model(const ServerArgs& a, const std::string& device, const std::string& model_dir,
                            int context_length) {
  ServeModel m;
  m.device = device;
  if (device == "cpu") {
    if (a.load_format == "dummy")
      throw ArgsError("--load-format dummy: only with --device cuda (the CPU backend reads the checkpoint)");
    spdlog::info("loading {} on cpu (numerics {})", model_dir, a.numerics);
    std::shared_ptr<DeepseekV32> model = DeepseekV32::load(model_dir, parse_numerics(a.numerics));
    m.config = model->config();
    m.executor = make_deepseek_executor(std::move(model));
    return m;
  }
  if (a.numerics == "exact" && a.kv_cache_dtype != "auto" && !a.kv_cache_dtype.empty())
    throw ArgsError("--kv-cache-dtype " + a.kv_cache_dtype +
                    ": --numerics exact keeps the KV cache in FP32 on --device cuda (leave --kv-cache-dtype at auto)");
  const DeviceBackend* b = find_device_backend(device);
  if (!b) throw ArgsError("--device " + device + ": not available in this build");
  DeviceRunnerOptions o;
  o.model_dir = model_dir;
  o.dummy_weights = a.load_format == "dummy";
  o.mem_fraction_static = a.mem_fraction_static;
  o.kv_cache_dtype = a.kv_cache_dtype;
  o.page_size = a.page_size;
  o.max_total_tokens = a.max_total_tokens;
  o.context_length = context_length;
  o.cuda_graph_max_bs = a.cuda_graph_max_bs;
  o.cuda_graph_bs = a.cuda_graph_bs;
  o.disable_cuda_graph = a.disable_cuda_graph;
  o.numerics = a.numerics;
  spdlog::info("loading {} on {} (numerics {}, load format {})", model_dir, device, a.numerics, a.load_format);
  DeviceRunner r = b->load(o);
  m.config = r.config;
  m.executor = std::move(r.executor);
  m.kv_tokens = r.kv_tokens;
  return m;
}

}  // namespace ds
