// GPU test + benchmark of ds::cuda::moe_route against its CPU twin ds::cpu::route (spec/model.md 6),
// run on the device machine by tests/gpu/run_all.sh.
//
// Correctness: expert ids must be identical (same order: ascending id) and weights within 1e-6
// absolute (weights are <= routed_scaling_factor = 2.5, so 1e-6 is ~2 FP32 ulp at 2.5: the two
// sides use the same ops in the same order, so the weights are expected bit-identical; the count
// of bit-identical weights is printed). The GPU sigmoid takes exp in double rounded to FP32, which
// equals glibc's correctly rounded expf; the test prints how many of the tested logits differ
// between the two (expected 0). Inputs: random logits (N(0, 2)) with random biases (the real
// noaux_tc case), logits and biases drawn from 3 values (massive ties: group ties -> lower group,
// expert ties -> lower id), no bias (group score = max), one group, norm_topk_prob = false, and a
// tiny config. Outputs are poisoned before the launch. Speed: bytes read + written over the median
// CUDA-graph time (a latency measure at these sizes), against the copy bandwidth of the same run.
//
// Usage: gpu_router [--no-bench]. Prints CHECK/RESULT lines and a table; exit 0 iff all pass.
#include <cuda_runtime.h>

#include <cstring>
#include <random>

#include "gpu_test_util.h"
#include "kernels/cpu/router.h"
#include "kernels/router.h"

namespace {

using namespace ds::gputest;

ds::cuda::RouterShape real_config() { return {256, 8, 4, 8, true, 2.5f}; }

void correctness(const char* label, int64_t tokens, ds::cuda::RouterShape p, int bias_kind, bool ties,
                 uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nz(0.f, 2.f);
  std::uniform_real_distribution<float> ub(-0.05f, 0.05f);
  std::uniform_int_distribution<int> three(-1, 1);
  std::vector<float> logits(size_t(tokens * p.n_experts)), bias(size_t(p.n_experts));
  for (auto& z : logits) z = ties ? float(three(rng)) : nz(rng);
  for (auto& b : bias) b = ties ? 0.25f * float(three(rng)) : ub(rng);
  const bool with_bias = bias_kind != 0;
  int64_t exp_diff = 0;
  for (float z : logits) exp_diff += float(std::exp(-double(z))) != std::exp(-z);
  ds::cpu::RouterParams cp{p.n_experts, p.n_group, p.topk_group, p.topk, p.norm_topk_prob, p.routed_scaling_factor};
  std::vector<int> ref_ids(size_t(tokens * p.topk));
  std::vector<float> ref_w(ref_ids.size());
  for (int64_t t = 0; t < tokens; ++t)
    ds::cpu::route(&logits[size_t(t * p.n_experts)], with_bias ? bias.data() : nullptr, cp, &ref_ids[size_t(t * p.topk)],
                   &ref_w[size_t(t * p.topk)]);
  DevBuf<float> dl(logits), db(bias), dw(ref_w.size());
  DevBuf<int32_t> di(ref_ids.size());
  dw.poison();
  di.poison();
  ds::cuda::moe_route(dl.p, with_bias ? db.p : nullptr, tokens, p, di.p, dw.p, nullptr);
  DS_CUDA_CHECK(cudaDeviceSynchronize());
  auto gi = di.download();
  auto gw = dw.download();
  int64_t bad_ids = 0, bad_w = 0, same_bits = 0;
  double max_dw = 0;
  for (size_t i = 0; i < gi.size(); ++i) {
    bad_ids += gi[i] != ref_ids[i];
    const double d = std::isfinite(gw[i]) ? std::fabs(double(gw[i]) - ref_w[i]) : INFINITY;
    max_dw = std::max(max_dw, d);
    bad_w += !(d <= 1e-6);
    same_bits += std::memcmp(&gw[i], &ref_w[i], 4) == 0;
  }
  char name[220];
  std::snprintf(name, sizeof name, "route %s tokens=%ld E=%d G=%d keep=%d k=%d: ids equal (%ld differ)", label,
                long(tokens), p.n_experts, p.n_group, p.topk_group, p.topk, long(bad_ids));
  check(bad_ids == 0, name);
  std::snprintf(name, sizeof name, "  weights max|d|=%.1e tol=1e-6 (%ld of %zu bit-identical; exp(double)!=expf: %ld)",
                max_dw, long(same_bits), gw.size(), long(exp_diff));
  check(bad_w == 0, name);
}

PerfRow bench(int64_t tokens, double ceiling) {
  const auto p = real_config();
  std::mt19937_64 rng(3);
  std::normal_distribution<float> nz(0.f, 2.f);
  std::vector<float> logits(size_t(tokens * p.n_experts)), bias(size_t(p.n_experts));
  for (auto& z : logits) z = nz(rng);
  for (auto& b : bias) b = nz(rng) * 0.01f;
  DevBuf<float> dl(logits), db(bias), dw(size_t(tokens * p.topk));
  DevBuf<int32_t> di(size_t(tokens * p.topk));
  const double us = time_us([&](cudaStream_t st, int) { ds::cuda::moe_route(dl.p, db.p, tokens, p, di.p, dw.p, st); }, 1);
  char shape[64];
  std::snprintf(shape, sizeof shape, "%ld tokens x 256 experts", long(tokens));
  return perf_row(shape, double(tokens) * (p.n_experts * 4 + p.topk * 8) + p.n_experts * 4, us, ceiling);
}

}  // namespace

int main(int argc, char** argv) try {
  const bool do_bench = !(argc > 1 && std::strcmp(argv[1], "--no-bench") == 0);
  // Full DeepSeek-V3.2 router: 256 experts, 8 groups keep 4, top-8, normalized, x 2.5.
  correctness("real", 1, real_config(), 1, false, 1);
  correctness("real", 1000, real_config(), 1, false, 2);
  correctness("ties", 500, real_config(), 1, true, 3);
  correctness("no-bias", 300, real_config(), 0, false, 4);
  correctness("no-bias ties", 300, real_config(), 0, true, 5);
  correctness("unnormalized", 200, {256, 8, 4, 8, false, 1.0f}, 1, false, 6);
  // Tiny configs: 16 experts in 4 groups keep 2, top-4; one group of 64, top-6; 1-expert groups.
  correctness("tiny", 77, {16, 4, 2, 4, true, 2.5f}, 1, false, 7);
  correctness("tiny ties", 77, {16, 4, 2, 4, true, 2.5f}, 1, true, 8);
  correctness("one group", 50, {64, 1, 1, 6, true, 1.0f}, 1, false, 9);
  correctness("groups of 1", 50, {8, 8, 3, 2, true, 1.0f}, 1, true, 10);
  bool throws = false;
  try {
    ds::cuda::moe_route(nullptr, nullptr, 1, {1024, 8, 4, 8, true, 1.f}, nullptr, nullptr, nullptr);
  } catch (const std::invalid_argument&) {
    throws = true;
  }
  check(throws, "1024 experts throws std::invalid_argument");
  if (do_bench) {
    const double ceiling = copy_gbps();
    std::vector<PerfRow> rows;
    for (int64_t t : {1, 16, 128, 1024, 8192}) rows.push_back(bench(t, ceiling));
    print_perf("moe_route", rows, ceiling);
  }
  std::printf("ROUTER %s (%d failed checks)\n", g_fail ? "FAIL" : "PASS", g_fail);
  return g_fail ? 1 : 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "gpu_router: %s\n", e.what());
  return 2;
}
