// The CUDA runner against the oracle fixtures on tiny-a (issue 8 "Correctness": whole-model logits
// against the oracle fixtures), run on the device machine by tests/gpu/run_all.sh. The fixtures are
// the CPU tests' (tests/fixtures/oracle/, made by scripts/reference/ on the GPU machine, docs/
// numerics.md "Oracle parity"): oracle B = DeepSeek's demo model.py with its FP8 numerics, oracle A =
// transformers in FP32.
//
// Checks, for the BF16 and the FP8 (656-byte) MLA cache, each prompt of the fixture as its own
// segment (every row's logits), and all prompts as one mixed-length batch:
//  - logits vs oracle B within sqrt(2) x ||B - A|| of that prompt. Derivation (the same bar as the
//    CPU engine's official mode in tests/model/test_oracle_official.cpp, set before any GPU run):
//    the runner computes the official mode with D23's FP32 attention scores and the absorbed form
//    in prefill (the documented deviations from the demo, ~4e-3 on the layer-0 attention output),
//    and every later FP8 quantizer amplifies such a difference (d -> sqrt(d q)) until the two
//    sides' FP8 rounding decisions are decorrelated: two computations with independent rounding
//    noise of the demo's own size are sqrt(2) x ||B - A|| apart. A wrong weight, layout, page or
//    mask gives unrelated logits (~sqrt(2) x ||B||, far above).
//  - the distance to oracle A is printed (RESULT): the official-vs-exact difference by design.
// Exact numerics (--numerics exact; src/cuda/cuda_model_exact.cpp), every prompt alone and as one
// mixed batch: logits vs oracle A (transformers FP32) within 1e-4 normwise, the bar of the CPU exact
// mode against the same fixture (tests/model/test_oracle_hf.cpp, docs/numerics.md; the CPU is at
// 5.9e-7): both are FP32 computations of the same network that differ only in summation order and
// libm, ~u sqrt(K) per op (derivation in gpu_model.cpp's header).
// Greedy continuations per D24 need the oracle's top-2 margin above 10 x the tolerance; at these
// decorrelated tolerances no step of tiny-a qualifies (the CPU test reports 0 strict steps too),
// so greedy is covered against the CPU official mode (gpu_model: 64 steps, argmax equal).
//
// Usage: gpu_oracle [REPO_ROOT] (default: the current directory, as run_all.sh runs it). Prints
// CHECK / RESULT lines and a table; exit 0 iff all pass.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "../model/test_oracle_common.h"
#include "cuda/cuda_model.h"
#include "cuda/device_weights.h"
#include "gpu_runner_util.h"
#include "gpu_test_util.h"
#include "tools/make_model.h"

namespace {

using namespace ds::gputest;
constexpr int kPage = 16;

std::vector<int32_t> tokens_of(const nlohmann::json& j) { return j.get<std::vector<int32_t>>(); }

/// One segment of `toks` from position 0, every row's logits, on fresh pages from *next_page.
ds::Segment fresh_segment(const std::vector<int32_t>& toks, int32_t* next_page) {
  const int n = int((toks.size() + kPage - 1) / kPage);
  const ds::Segment s = seg(toks, 0, pages(*next_page, n), true);
  *next_page += n;
  return s;
}

std::vector<std::string> g_table, g_table_exact;
constexpr double kExactBar = 1e-4;

void compare_exact(const std::string& what, const float* got, const std::vector<float>& a) {
  const double ea = oracle::normwise(got, a.data(), a.size());
  char buf[400];
  std::snprintf(buf, sizeof buf, "exact %s: vs oracle A %.3e <= %.0e", what.c_str(), ea, kExactBar);
  check(ea <= kExactBar, buf);
  std::snprintf(buf, sizeof buf, "| exact %s | %.2e | %.0e | %s |", what.c_str(), ea, kExactBar,
                ea <= kExactBar ? "PASS" : "FAIL");
  g_table_exact.push_back(buf);
}

void compare(const std::string& what, const float* got, const std::vector<float>& b, const std::vector<float>& a,
             double bar) {
  const double eb = oracle::normwise(got, b.data(), b.size()), ea = oracle::normwise(got, a.data(), a.size());
  char buf[400];
  std::snprintf(buf, sizeof buf, "%s: vs oracle B %.3e <= %.3e (sqrt 2 x ||B - A||)", what.c_str(), eb, bar);
  check(eb <= bar, buf);
  std::printf("RESULT %s: vs oracle B %.3e, vs oracle A (transformers FP32) %.3e\n", what.c_str(), eb, ea);
  std::snprintf(buf, sizeof buf, "| %s | %.2e | %.2e | %.2e | %s |", what.c_str(), eb, bar, ea,
                eb <= bar ? "PASS" : "FAIL");
  g_table.push_back(buf);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string root = argc > 1 ? argv[1] : ".";
    const oracle::Fixture fb = oracle::load_fixture_at(root + "/tests/fixtures/oracle/oracle_official_tiny-a");
    const oracle::Fixture fa = oracle::load_fixture_at(root + "/tests/fixtures/oracle/oracle_hf_tiny-a");
    const auto& prompts = fb.meta["prompts"];
    check(prompts.size() == fa.meta["prompts"].size() && !prompts.empty(), "both fixtures hold the same prompts");
    std::vector<std::vector<float>> B, A;
    std::vector<double> bars;
    int64_t pages = 0;
    for (size_t i = 0; i < prompts.size(); ++i) {
      check(tokens_of(prompts[i]["tokens"]) == tokens_of(fa.meta["prompts"][i]["tokens"]),
            "prompt " + std::to_string(i) + " has the same tokens in both fixtures");
      B.push_back(fb.array("p" + std::to_string(i) + ".logits"));
      A.push_back(fa.array("p" + std::to_string(i) + ".logits"));
      bars.push_back(std::sqrt(2.0) * oracle::normwise(B.back().data(), A.back().data(), A.back().size()));
      pages += 2 * ((int64_t(prompts[i]["tokens"].size()) + kPage - 1) / kPage);
    }
    const std::string dir = (std::filesystem::temp_directory_path() / "ds_gpu_oracle_tiny_a").string();
    ds::make_model("tiny-a", dir);
    for (auto kv : {ds::cuda::KvCacheDtype::BF16, ds::cuda::KvCacheDtype::FP8}) {
      const std::string tag = kv == ds::cuda::KvCacheDtype::BF16 ? "kv-bf16" : "kv-fp8";
      ds::cuda::CudaModel gpu(ds::cuda::DeviceWeights::load(dir), kv);
      gpu.init_kv_pool(kPage, pages + 1);
      int32_t next_page = 0;
      for (size_t i = 0; i < prompts.size(); ++i) {
        ds::BatchPlan plan;
        plan.segments.push_back(fresh_segment(tokens_of(prompts[i]["tokens"]), &next_page));
        const ds::Logits l = gpu.forward(plan);
        if (l.data.size() != B[i].size()) throw std::runtime_error("logits size differs from the fixture's");
        compare(tag + " prompt " + std::to_string(i) + " (" + std::to_string(prompts[i]["tokens"].size()) + " tokens)",
                l.data.data(), B[i], A[i], bars[i]);
      }
      ds::BatchPlan batch;  // every prompt as one segment of one plan
      for (size_t i = 0; i < prompts.size(); ++i)
        batch.segments.push_back(fresh_segment(tokens_of(prompts[i]["tokens"]), &next_page));
      const ds::Logits l = gpu.forward(batch);
      size_t off = 0;
      for (size_t i = 0; i < prompts.size(); ++i) {
        if (off + B[i].size() > l.data.size()) throw std::runtime_error("batched logits are too short");
        compare(tag + " mixed batch, segment " + std::to_string(i), l.data.data() + off, B[i], A[i], bars[i]);
        off += B[i].size();
      }
    }
    {  // exact numerics vs oracle A
      ds::cuda::CudaModel gpu(ds::cuda::DeviceWeights::load(dir, ds::Numerics::Exact), ds::cuda::KvCacheDtype::BF16);
      gpu.init_kv_pool(kPage, pages + 1);
      int32_t next_page = 0;
      for (size_t i = 0; i < prompts.size(); ++i) {
        ds::BatchPlan plan;
        plan.segments.push_back(fresh_segment(tokens_of(prompts[i]["tokens"]), &next_page));
        const ds::Logits l = gpu.forward(plan);
        if (l.data.size() != A[i].size()) throw std::runtime_error("exact logits size differs from the fixture's");
        compare_exact("prompt " + std::to_string(i) + " (" + std::to_string(prompts[i]["tokens"].size()) + " tokens)",
                      l.data.data(), A[i]);
      }
      ds::BatchPlan batch;
      for (size_t i = 0; i < prompts.size(); ++i)
        batch.segments.push_back(fresh_segment(tokens_of(prompts[i]["tokens"]), &next_page));
      const ds::Logits l = gpu.forward(batch);
      size_t off = 0;
      for (size_t i = 0; i < prompts.size(); ++i) {
        if (off + A[i].size() > l.data.size()) throw std::runtime_error("exact batched logits are too short");
        compare_exact("mixed batch, segment " + std::to_string(i), l.data.data() + off, A[i]);
        off += A[i].size();
      }
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  } catch (const std::exception& e) {
    std::printf("CHECK %-72s FAIL\nerror: %s\n", "gpu_oracle ran to the end", e.what());
    return 1;
  }
  std::printf("\n| run | vs oracle B | bar | vs oracle A | result |\n|---|---|---|---|---|\n");
  for (const auto& r : g_table) std::printf("%s\n", r.c_str());
  std::printf("\n| run (--numerics exact) | vs oracle A | bar | result |\n|---|---|---|---|\n");
  for (const auto& r : g_table_exact) std::printf("%s\n", r.c_str());
  std::printf("%s\n", g_fail ? "FAILED" : "ALL PASS");
  return g_fail ? 1 : 0;
}
