// CUDA runner entry points and its registration as the "cuda" device backend (cuda_executor.h).
#include "cuda/cuda_executor.h"

#include <cuda_runtime_api.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>

#include "cuda/cuda_model.h"
#include "kernels/cuda_check.h"

namespace ds::cuda {

int device_count(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    if (why) *why = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
    cudaGetLastError();  // clear the error so later runtime calls do not report it
    return 0;
  }
  if (n == 0 && why) *why = "no CUDA device";
  return n;
}

KvCacheDtype parse_kv_cache_dtype(const std::string& s) {
  if (s == "auto" || s == "bf16" || s == "bfloat16" || s.empty()) return KvCacheDtype::BF16;
  if (s == "fp8_e4m3") return KvCacheDtype::FP8;
  throw std::invalid_argument("--kv-cache-dtype " + s + ": not supported (auto, bf16, bfloat16, fp8_e4m3)");
}

namespace {

class CudaExecutor final : public ModelExecutor {
 public:
  explicit CudaExecutor(std::shared_ptr<CudaModel> m) : model_(std::move(m)) {
    if (!model_) throw std::invalid_argument("make_cuda_executor: model is null");
  }
  void init_kv(int page_size, int64_t num_pages) override { model_->init_kv_pool(page_size, num_pages); }
  Logits forward(const BatchPlan& plan) override { return model_->forward(plan); }
  int vocab_size() const override { return model_->config().vocab_size; }
  bool can_sample() const override { return true; }
  std::vector<int> cuda_graph_sizes() const override { return model_->graph_sizes(); }
  uint64_t cuda_graph_replays() const override { return model_->graph_replays(); }
  std::vector<int32_t> forward_sample(const BatchPlan& plan, const std::vector<SampleRow>& rows) override {
    std::vector<SampleRowParams> sp(rows.size());
    for (size_t i = 0; i < rows.size(); ++i)
      sp[i] = SampleRowParams{rows[i].temperature, rows[i].top_p, rows[i].top_k, rows[i].min_p, rows[i].u};
    return model_->forward_sample(plan, sp);
  }

 private:
  std::shared_ptr<CudaModel> model_;
};

const bool registered = register_device_backend(DeviceBackend{"cuda", device_count, load_device_runner});

}  // namespace

std::unique_ptr<ModelExecutor> make_cuda_executor(std::shared_ptr<CudaModel> model) {
  return std::make_unique<CudaExecutor>(std::move(model));
}

DeviceRunner load_device_runner(const DeviceRunnerOptions& o) {
  (void)registered;
  std::string why;
  if (device_count(&why) < 1) throw std::runtime_error("--device cuda: no CUDA device is usable (" + why + ")");
  const KvCacheDtype kv = parse_kv_cache_dtype(o.kv_cache_dtype);
  const Numerics numerics = parse_numerics(o.numerics);
  const bool exact = numerics == Numerics::Exact;
  if (exact && o.kv_cache_dtype != "auto" && !o.kv_cache_dtype.empty())
    throw std::invalid_argument("--kv-cache-dtype " + o.kv_cache_dtype +
                                ": --numerics exact keeps the KV cache in FP32 (leave --kv-cache-dtype at auto)");
  const double frac = o.mem_fraction_static > 0 ? o.mem_fraction_static : kDefaultMemFraction;
  if (frac <= 0 || frac >= 1)
    throw std::invalid_argument("--mem-fraction-static " + std::to_string(frac) + ": must be in (0, 1)");
  DS_CUDA_CHECK(cudaSetDevice(0));
  cudaDeviceProp prop{};
  DS_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  spdlog::info("device: {} ({} SMs, {:.1f} GiB), weights {}", prop.name, prop.multiProcessorCount,
               prop.totalGlobalMem / double(1 << 30), o.dummy_weights ? "dummy (--load-format dummy)" : o.model_dir);
  std::unique_ptr<DeviceWeights> w = o.dummy_weights ? DeviceWeights::dummy(o.model_dir, 1, numerics)
                                                    : DeviceWeights::load(o.model_dir, numerics);
  const WeightBytes expect = expected_weight_bytes(w->config(), numerics);
  spdlog::info("weights resident: {} bytes ({:.3f} GB); checkpoint (FP8) {} bytes; expected on device {} bytes ({})",
               w->resident_bytes(), w->resident_bytes() / 1e9, w->checkpoint_bytes(), expect.device,
               w->resident_bytes() == expect.device ? "equal" : "DIFFERENT");
  auto model = std::make_shared<CudaModel>(std::move(w), kv);
  CudaGraphOptions go;  // captured when the engine creates the KV pool (init_kv)
  go.disable = o.disable_cuda_graph;
  go.max_bs = o.cuda_graph_max_bs;
  go.bs = parse_cuda_graph_bs(o.cuda_graph_bs);
  go.max_context = std::max(o.context_length, 1);
  model->set_graph_options(go);
  if (exact) spdlog::info("numerics exact: FP32 weights products, activations and KV cache; every step eager (no CUDA graphs)");
  size_t free_b = 0, total_b = 0;
  DS_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  const int64_t per_token = model->kv_bytes_per_token();
  const int64_t budget = int64_t(double(total_b) * frac) - int64_t(total_b - free_b);
  const int64_t ps = o.page_size;
  int64_t pages = budget > 0 ? budget / (per_token * ps) : 0;
  pages = std::min<int64_t>(pages, ((int64_t(1) << 31) - 1) / ps);
  if (o.max_total_tokens > 0) {
    const int64_t want = o.max_total_tokens / ps;
    if (want > pages)
      throw std::runtime_error("--max-total-tokens " + std::to_string(o.max_total_tokens) + ": needs " +
                               std::to_string(want * ps * per_token) + " bytes of KV but --mem-fraction-static " +
                               std::to_string(frac) + " leaves " + std::to_string(std::max<int64_t>(budget, 0)));
    pages = want;
  }
  const int64_t need = (int64_t(o.context_length) + ps) / ps;
  if (pages < std::max<int64_t>(need, 1))
    throw std::runtime_error("--mem-fraction-static " + std::to_string(frac) + ": the KV budget (" +
                             std::to_string(std::max<int64_t>(budget, 0)) + " bytes after weights) holds " +
                             std::to_string(pages) + " pages, less than one context of " +
                             std::to_string(o.context_length) + " tokens (raise it or lower --context-length)");
  spdlog::info("KV pool (device): {} pages x {} tokens = {} tokens, {} bytes/token ({} cache), {:.2f} GiB; "
               "--mem-fraction-static {}", pages, ps, pages * ps, per_token,
               exact ? "f32, --numerics exact" : kv == KvCacheDtype::FP8 ? "fp8_e4m3 656-byte layout" : "bf16",
               pages * ps * per_token / double(1 << 30),
               frac);
  DeviceRunner r;
  r.config = model->config();
  r.kv_tokens = pages * ps;
  r.executor = make_cuda_executor(std::move(model));
  return r;
}

}  // namespace ds::cuda
