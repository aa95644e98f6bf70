// `serve --device`: device resolution and model loading through the device-backend registry
// (src/server/serve_device.h, src/engine/device_backend.h). Test binaries do not link the CUDA
// runner, so the registry starts empty ("a build without CUDA"); the tests then register a fake
// "cuda" backend to check what serve hands it.
#include <gtest/gtest.h>

#include <string>

#include "engine/device_backend.h"
#include "server/serve_device.h"

namespace {

std::string refusal(const std::function<void()>& f) {
  try {
    f();
  } catch (const ds::ArgsError& e) {
    return e.what();
  }
  return "(accepted)";
}

class FakeExecutor final : public ds::ModelExecutor {
 public:
  void init_kv(int, int64_t) override {}
  ds::Logits forward(const ds::BatchPlan&) override { return {}; }
  int vocab_size() const override { return 7; }
};

ds::ServerArgs args(const std::string& device) {
  ds::ServerArgs a;
  a.device = device;
  return a;
}

// Runs first (gtest keeps file order): nothing is registered yet.
TEST(ServeDevice, WithoutCudaRunnerAutoIsCpuAndCudaIsRefused) {
  ASSERT_EQ(ds::find_device_backend("cuda"), nullptr);
  EXPECT_EQ(ds::resolve_device(args("")), "cpu");
  EXPECT_EQ(ds::resolve_device(args("cpu")), "cpu");
  EXPECT_EQ(refusal([] { ds::resolve_device(args("cuda")); }),
            "--device cuda: not available; this deepserve was built without the CUDA runner (use --device cpu)");
}

TEST(ServeDevice, CpuRefusesDummyWeights) {
  ds::ServerArgs a = args("cpu");
  a.load_format = "dummy";
  EXPECT_EQ(refusal([&] { ds::load_serve_model(a, "cpu", "/nonexistent", 16); }),
            "--load-format dummy: only with --device cuda (the CPU backend reads the checkpoint)");
}

TEST(ServeDevice, FakeCudaBackend) {
  static int gpus = 0;
  static ds::DeviceRunnerOptions seen;
  ds::register_device_backend(ds::DeviceBackend{
      "cuda",
      [](std::string* why) {
        if (gpus == 0 && why) *why = "cudaErrorNoDevice: no CUDA-capable device is detected";
        return gpus;
      },
      [](const ds::DeviceRunnerOptions& o) {
        seen = o;
        ds::DeviceRunner r;
        r.executor = std::make_unique<FakeExecutor>();
        r.config.vocab_size = 7;
        r.kv_tokens = 4096;
        return r;
      }});
  // Built with the runner but no GPU: auto falls back to cpu, an explicit cuda is refused with the reason.
  EXPECT_EQ(ds::resolve_device(args("")), "cpu");
  EXPECT_EQ(refusal([] { ds::resolve_device(args("cuda")); }),
            "--device cuda: no usable GPU (cudaErrorNoDevice: no CUDA-capable device is detected); use --device cpu");
  gpus = 1;
  EXPECT_EQ(ds::resolve_device(args("")), "cuda");
  EXPECT_EQ(ds::resolve_device(args("cuda")), "cuda");
  EXPECT_EQ(ds::resolve_device(args("cpu")), "cpu");

  ds::ServerArgs a = args("cuda");
  a.load_format = "dummy";
  a.mem_fraction_static = 0.5;
  a.kv_cache_dtype = "fp8_e4m3";
  a.page_size = 32;
  a.max_total_tokens = 8192;
  ds::ServeModel m = ds::load_serve_model(a, "cuda", "/models/x", 1000);
  EXPECT_EQ(m.device, "cuda");
  EXPECT_EQ(m.kv_tokens, 4096);
  EXPECT_EQ(m.config.vocab_size, 7);
  ASSERT_NE(m.executor, nullptr);
  EXPECT_EQ(m.executor->vocab_size(), 7);
  EXPECT_EQ(seen.model_dir, "/models/x");
  EXPECT_TRUE(seen.dummy_weights);
  EXPECT_EQ(seen.mem_fraction_static, 0.5);
  EXPECT_EQ(seen.kv_cache_dtype, "fp8_e4m3");
  EXPECT_EQ(seen.page_size, 32);
  EXPECT_EQ(seen.max_total_tokens, 8192);
  EXPECT_EQ(seen.context_length, 1000);

  EXPECT_EQ(seen.numerics, "official");

  // --numerics exact reaches the backend; its KV cache is FP32, so an explicit cache dtype is refused.
  a.numerics = "exact";
  EXPECT_EQ(refusal([&] { ds::load_serve_model(a, "cuda", "/models/x", 1000); }),
            "--kv-cache-dtype fp8_e4m3: --numerics exact keeps the KV cache in FP32 on --device cuda (leave "
            "--kv-cache-dtype at auto)");
  a.kv_cache_dtype = "bf16";
  EXPECT_EQ(refusal([&] { ds::load_serve_model(a, "cuda", "/models/x", 1000); }),
            "--kv-cache-dtype bf16: --numerics exact keeps the KV cache in FP32 on --device cuda (leave "
            "--kv-cache-dtype at auto)");
  a.kv_cache_dtype = "auto";
  seen = ds::DeviceRunnerOptions{};
  ds::ServeModel me = ds::load_serve_model(a, "cuda", "/models/x", 1000);
  EXPECT_EQ(me.device, "cuda");
  EXPECT_EQ(seen.numerics, "exact");
  EXPECT_EQ(seen.kv_cache_dtype, "auto");
  EXPECT_EQ(seen.model_dir, "/models/x");
}

}  // namespace
