// CUDA graphs for decode batches and sampling on the GPU (issue 8; docs/cuda.md "CUDA graphs",
// "Sampling on the GPU"), on the `tiny-a` preset (made here with make_model, or argv[1]). Run by
// tests/gpu/run_all.sh on the device machine (needs collect_libs.sh's lib/, like gpu_model: this
// driver links the CPU engine's sampler).
//
// Checks:
//  - graphs: a CudaModel with --cuda-graph-bs 1,2,4,8 and a 64-position graph context captures
//    exactly those sizes; for batches of 1, 3 (replayed padded to 4) and 8 sequences, 16 decode steps
//    each run eagerly (use_graphs(false)) and then replayed (the replay rewrites the same KV slots with
//    the same values when it is right): the logits must be BIT-identical (memcmp; every kernel is
//    deterministic and batch invariant, D27, so no tolerance applies), every replay counted once, a
//    prefill plan never replays; forward_sample's greedy ids on the graph equal the argmax (lowest
//    index) of the replayed logits.
//  - sampler: sample_rows vs the CPU's ds::sample_token on the same logits with the same uniform:
//    u = SamplerRng(seed).next_double() (splitmix64, 53 bits) on both sides, the CPU drawing it inside
//    sample_token and the GPU getting it as SampleRowParams::u. Rows: tiny-a's vocabulary and the
//    full 129280, random logits (N(0, 3^2)-like) and tied logits (values on a 0.5 grid, so top-k and
//    top-p cut inside tie groups), NaN entries; params greedy, temperature only, top-k, top-p, min-p and
//    all combined. Equal ids required (the GPU sums in another order: a choice can differ only when u
//    or top_p is within ~1e-15 of a boundary, not hit by these 64-bit draws in practice).
//  - timing (RESULT lines): host time per decode step, eager vs graph, batch 1 and 8 (incl. the
//    logits copy) on tiny-a.
//
// Usage: gpu_graphs [model_dir]. Prints CHECK lines; exit 0 iff all pass.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "cuda/cuda_model.h"
#include "cuda/device_weights.h"
#include "gpu_runner_util.h"
#include "gpu_test_util.h"
#include "kernels/sampling.h"
#include "model/sampler.h"
#include "tools/make_model.h"

namespace {

using namespace ds::gputest;
constexpr int kPage = 16;


int32_t argmax_lowest(const float* x, int n) { return int32_t(std::max_element(x, x + n) - x); }

struct Seq {
  std::vector<int32_t> toks;
  std::vector<int32_t> pt;
};

ds::BatchPlan decode_plan(const std::vector<Seq>& seqs) {
  ds::BatchPlan p;
  for (const Seq& s : seqs) {
    ds::Segment g;
    g.start_pos = int(s.toks.size()) - 1;
    g.tokens = {s.toks.back()};
    g.page_table = s.pt;
    p.segments.push_back(g);
  }
  return p;
}

void graphs_check(ds::cuda::CudaModel& gpu, int B) {
  const int V = gpu.config().vocab_size;
  std::vector<Seq> seqs(static_cast<size_t>(B));
  ds::BatchPlan pre;
  for (int i = 0; i < B; ++i) {
    seqs[size_t(i)].toks = prompt(5 + 3 * i, V, uint32_t(100 + i));
    for (int j = 0; j < 4; ++j) seqs[size_t(i)].pt.push_back(4 * i + j);
    ds::Segment g;
    g.tokens = seqs[size_t(i)].toks;
    g.page_table = seqs[size_t(i)].pt;
    pre.segments.push_back(g);
  }
  const uint64_t r0 = gpu.graph_replays();
  ds::Logits lp = gpu.forward(pre);
  check(gpu.graph_replays() == r0, "batch " + std::to_string(B) + ": a prefill plan runs eagerly (no replay)");
  for (int i = 0; i < B; ++i) seqs[size_t(i)].toks.push_back(argmax_lowest(lp.last(i), V));
  int identical = 0, counted = 0, sampled_ok = 0;
  for (int step = 0; step < 16; ++step) {
    const ds::BatchPlan p = decode_plan(seqs);
    gpu.use_graphs(false);
    const uint64_t before = gpu.graph_replays();
    ds::Logits e = gpu.forward(p);
    const bool eager_no_replay = gpu.graph_replays() == before;
    gpu.use_graphs(true);
    ds::Logits g = gpu.forward(p);
    counted += eager_no_replay && gpu.graph_replays() == before + 1;
    identical += e.data.size() == g.data.size() &&
                 std::memcmp(e.data.data(), g.data.data(), e.data.size() * sizeof(float)) == 0 &&
                 e.row_begin == g.row_begin;
    std::vector<ds::cuda::SampleRowParams> sp(static_cast<size_t>(B));
    for (auto& r : sp) r.temperature = 0.0f;
    const std::vector<int32_t> ids = gpu.forward_sample(p, sp);
    bool ok = int(ids.size()) == B;
    for (int i = 0; ok && i < B; ++i) ok = ids[size_t(i)] == argmax_lowest(g.last(i), V);
    sampled_ok += ok;
    for (int i = 0; i < B; ++i) seqs[size_t(i)].toks.push_back(argmax_lowest(e.last(i), V));
  }
  const std::string b = "batch " + std::to_string(B) + (B == 3 ? " (graph 4)" : "");
  check(identical == 16, b + ": graph logits bit-identical to eager over 16 decode steps (" +
                             std::to_string(identical) + "/16)");
  check(counted == 16, b + ": one replay counted per graph step, none eager (" + std::to_string(counted) + "/16)");
  check(sampled_ok == 16, b + ": forward_sample greedy ids == argmax of replayed logits (" +
                              std::to_string(sampled_ok) + "/16)");
}

void timing(ds::cuda::CudaModel& gpu, int B) {
  const int V = gpu.config().vocab_size;
  std::vector<Seq> seqs(static_cast<size_t>(B));
  for (int i = 0; i < B; ++i) {
    seqs[size_t(i)].toks = prompt(9, V, uint32_t(300 + i));
    for (int j = 0; j < 4; ++j) seqs[size_t(i)].pt.push_back(32 + 4 * i + j);
  }
  const ds::BatchPlan p = decode_plan(seqs);  // rewrites position 8 each time (timing only)
  double ms[2] = {0, 0};
  for (int mode = 0; mode < 2; ++mode) {
    gpu.use_graphs(mode == 1);
    for (int w = 0; w < 5; ++w) gpu.forward(p);
    const int n = 100;
    const auto t0 = std::chrono::steady_clock::now();
    for (int it = 0; it < n; ++it) gpu.forward(p);
    ms[mode] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / n;
  }
  gpu.use_graphs(true);
  std::printf("RESULT decode step batch %d (tiny-a, host time incl. logits copy): eager %.3f ms, graph %.3f ms (%.2fx)\n",
              B, ms[0], ms[1], ms[0] / ms[1]);
}

struct Case {
  const char* name;
  ds::SamplingParams p;
};

void sampler_check(int V, bool ties, const char* what) {
  std::vector<Case> cases;
  auto mk = [](float t, int k, float tp, float mp) {
    ds::SamplingParams s;
    s.temperature = t, s.top_k = k, s.top_p = tp, s.min_p = mp;
    return s;
  };
  cases.push_back({"greedy", mk(0.0f, -1, 1.0f, 0.0f)});
  cases.push_back({"temperature 1", mk(1.0f, -1, 1.0f, 0.0f)});
  cases.push_back({"t 0.7 top-k 50", mk(0.7f, 50, 1.0f, 0.0f)});
  cases.push_back({"t 1 top-k 1", mk(1.0f, 1, 1.0f, 0.0f)});
  cases.push_back({"t 1 top-p 0.9", mk(1.0f, -1, 0.9f, 0.0f)});
  cases.push_back({"t 0.6 top-p 0.5", mk(0.6f, -1, 0.5f, 0.0f)});
  cases.push_back({"t 1.2 min-p 0.1", mk(1.2f, -1, 1.0f, 0.1f)});
  cases.push_back({"t 0.8 top-k 40 top-p 0.95 min-p 0.05", mk(0.8f, 40, 0.95f, 0.05f)});
  const int rows_per_case = 16;
  const int R = int(cases.size()) * rows_per_case;
  std::vector<float> logits(size_t(R) * size_t(V));
  uint64_t x = 0x1234567ull + uint64_t(V) + (ties ? 99 : 0);
  for (size_t i = 0; i < logits.size(); ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const double u1 = double((x >> 11) + 1) * 0x1.0p-53;
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const double u2 = double(x >> 11) * 0x1.0p-53;
    double v = 3.0 * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    if (ties) v = std::round(v * 2.0) / 2.0;
    logits[i] = float(v);
  }
  logits[5] = NAN;  // a NaN entry (probability 0 on both sides)
  std::vector<ds::cuda::SampleRowParams> sp(static_cast<size_t>(R));
  std::vector<int32_t> want(static_cast<size_t>(R));
  for (int r = 0; r < R; ++r) {
    const ds::SamplingParams& p = cases[size_t(r / rows_per_case)].p;
    const uint64_t seed = 1000 + uint64_t(r);
    ds::SamplerRng cpu_rng(seed);
    want[size_t(r)] = ds::sample_token(logits.data() + size_t(r) * size_t(V), V, p, cpu_rng);
    ds::SamplerRng gpu_rng(seed);
    auto& q = sp[size_t(r)];
    q.temperature = p.temperature, q.top_k = p.top_k, q.top_p = p.top_p, q.min_p = p.min_p;
    q.u = p.temperature >= 1e-6f ? gpu_rng.next_double() : 0.0;
  }
  float* d_l = nullptr;
  ds::cuda::SampleRowParams* d_p = nullptr;
  int32_t* d_ids = nullptr;
  cudaMalloc(&d_l, logits.size() * 4);
  cudaMalloc(&d_p, sp.size() * sizeof(sp[0]));
  cudaMalloc(&d_ids, size_t(R) * 4);
  cudaMemcpy(d_l, logits.data(), logits.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(d_p, sp.data(), sp.size() * sizeof(sp[0]), cudaMemcpyHostToDevice);
  ds::cuda::sample_rows(d_l, R, V, d_p, d_ids, nullptr);
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  cudaEventRecord(e0);
  ds::cuda::sample_rows(d_l, R, V, d_p, d_ids, nullptr);
  cudaEventRecord(e1);
  cudaEventSynchronize(e1);
  float kms = 0;
  cudaEventElapsedTime(&kms, e0, e1);
  std::vector<int32_t> got(static_cast<size_t>(R));
  cudaMemcpy(got.data(), d_ids, size_t(R) * 4, cudaMemcpyDeviceToHost);
  cudaFree(d_l);
  cudaFree(d_p);
  cudaFree(d_ids);
  for (size_t c = 0; c < cases.size(); ++c) {
    int eq = 0;
    for (int r = 0; r < rows_per_case; ++r) {
      const size_t i = c * size_t(rows_per_case) + size_t(r);
      eq += got[i] == want[i];
      if (got[i] != want[i] && eq + 1 == r + 1)
        std::printf("  first mismatch row %zu: gpu %d cpu %d\n", i, got[i], want[i]);
    }
    check(eq == rows_per_case, std::string("sampler ") + what + " " + cases[c].name + ": GPU id == CPU id (" +
                                   std::to_string(eq) + "/" + std::to_string(rows_per_case) + ")");
  }
  std::printf("RESULT sample_rows %s: %d rows in %.3f ms (mixed params)\n", what, R, kms);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string dir;
    if (argc > 1) {
      dir = argv[1];
    } else {
      dir = (std::filesystem::temp_directory_path() / "ds_gpu_graphs_tiny_a").string();
      ds::make_model("tiny-a", dir);
    }
    {
      ds::cuda::CudaModel gpu(ds::cuda::DeviceWeights::load(dir), ds::cuda::KvCacheDtype::BF16);
      ds::cuda::CudaGraphOptions o;
      o.bs = {8, 1, 4, 2};
      o.max_context = 64;
      gpu.set_graph_options(o);
      gpu.init_kv_pool(kPage, 96);
      check(gpu.graph_sizes() == std::vector<int>({1, 2, 4, 8}), "captured graph sizes == --cuda-graph-bs 1,2,4,8");
      for (int B : {1, 3, 8}) graphs_check(gpu, B);
      for (int B : {1, 8}) timing(gpu, B);
      const int V = gpu.config().vocab_size;
      sampler_check(V, false, ("vocab " + std::to_string(V)).c_str());
      sampler_check(V, true, ("vocab " + std::to_string(V) + " tied").c_str());
    }
    sampler_check(129280, false, "vocab 129280");
    sampler_check(129280, true, "vocab 129280 tied");
    const std::vector<int> dflt = ds::cuda::cuda_graph_batch_sizes(ds::cuda::CudaGraphOptions{}, 256);
    check(dflt.size() == 36 && dflt.front() == 1 && dflt[4] == 12 && dflt[5] == 16 && dflt.back() == 256,
          "default sizes at max-bs 256: 1,2,4,8,12,16..256 step 8 (36 sizes)");
  } catch (const std::exception& e) {
    std::printf("CHECK %-72s FAIL\nerror: %s\n", "gpu_graphs ran to the end", e.what());
    return 1;
  }
  std::printf("%s\n", g_fail ? "FAILED" : "ALL PASS");
  return g_fail ? 1 : 0;
}
