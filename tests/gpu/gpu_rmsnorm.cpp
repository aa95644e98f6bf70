// GPU test + benchmark of ds::cuda::add_rmsnorm_bf16 against its CPU twin ds::cpu::add_rmsnorm
// (official mode, bf16 = true; spec/model.md 4.2), run on the device machine by tests/gpu/run_all.sh.
//
// Correctness on random BF16 sub-layer outputs f, residuals r and weights w:
// - the new residual r = bf16(f + r) must equal the twin's bit for bit (one FP32 add, one RNE
//   rounding on both sides);
// - y: both sides do the same correctly rounded ops except the order of the sum of squares (GPU:
//   per thread, butterfly, 8 warps; CPU: dot_fixed), which moves 1/sqrt(.) by ~1e-7 relative. A
//   BF16 output can then round to the neighbouring value when the FP32 value sits within ~1e-7 of
//   a rounding midpoint (probability ~2e-7 / 2^-8 = 5e-5 per element), so: every element within 1
//   BF16 ulp (the real criterion) and normwise error <= 1e-3 (a 1-ulp flip is ~2^-8 of its element,
//   so a handful of flips in a short row reach ~1e-4: the first H200 run saw 8.0e-5 at 1 x 7168 with
//   4 flips; a wrong eps, a missing add or a wrong row gives >> 1e-3 and breaks the ulp bound).
// Output y is poisoned with NaN before the launch, so an unwritten element fails.
// Speed: bytes that must move (f, r read; r, y written; w) over the median CUDA-graph time, buffers
// rotated beyond 4x the L2; compared with the device-to-device copy of the same run.
//
// Usage: gpu_rmsnorm [--no-bench]. Prints CHECK/RESULT lines and a table; exit 0 iff all pass.
#include <cuda_runtime.h>

#include <cstring>
#include <random>

#include "common/numeric.h"
#include "gpu_test_util.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/rmsnorm.h"

namespace {

using namespace ds::gputest;

std::vector<uint16_t> random_bf16(size_t n, float lo, float hi, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<uint16_t> v(n);
  for (auto& b : v) b = ds::f32_to_bf16(u(rng));
  return v;
}

void correctness(int64_t rows, int64_t n, bool with_f, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const float eps = 1e-6f;
  auto f = random_bf16(size_t(rows * n), -4.f, 4.f, rng);
  auto r = random_bf16(size_t(rows * n), -8.f, 8.f, rng);
  auto w = random_bf16(size_t(n), 0.25f, 2.f, rng);
  // CPU twin, row by row on the float values.
  const size_t nn = static_cast<size_t>(n);
  std::vector<float> wf(nn), fr(nn), rr(nn), yr(nn);
  for (int64_t i = 0; i < n; ++i) wf[i] = ds::bf16_to_f32(w[i]);
  std::vector<float> ref_y(size_t(rows * n)), ref_r(size_t(rows * n));
  for (int64_t t = 0; t < rows; ++t) {
    for (int64_t i = 0; i < n; ++i) {
      fr[i] = ds::bf16_to_f32(f[t * n + i]);
      rr[i] = ds::bf16_to_f32(r[t * n + i]);
    }
    ds::cpu::add_rmsnorm(with_f ? fr.data() : nullptr, rr.data(), wf.data(), n, eps, yr.data(), true);
    std::memcpy(&ref_y[t * n], yr.data(), size_t(n) * 4);
    std::memcpy(&ref_r[t * n], rr.data(), size_t(n) * 4);
  }
  DevBuf<uint16_t> df(f), dr(r), dw(w), dy(size_t(rows * n));
  dy.poison();
  ds::cuda::add_rmsnorm_bf16(with_f ? df.p : nullptr, dr.p, dw.p, rows, n, eps, dy.p, nullptr);
  DS_CUDA_CHECK(cudaDeviceSynchronize());
  auto gy = dy.download(), gr = dr.download();
  std::vector<float> y(gy.size());
  int64_t r_diff = 0, max_ulps = 0, y_diff = 0;
  for (size_t i = 0; i < gy.size(); ++i) {
    y[i] = ds::bf16_to_f32(gy[i]);
    if (ds::bf16_to_f32(gr[i]) != ref_r[i]) ++r_diff;
    int64_t d = std::isfinite(y[i]) ? bf16_ulps(y[i], ref_y[i]) : 1 << 20;
    max_ulps = std::max(max_ulps, d);
    y_diff += d != 0;
  }
  const double err = normwise(y, ref_y);
  char name[200];
  std::snprintf(name, sizeof name, "add_rmsnorm rows=%ld n=%ld f=%s: residual bit-exact (%ld differ)", long(rows),
                long(n), with_f ? "yes" : "null", long(r_diff));
  check(r_diff == 0, name);
  std::snprintf(name, sizeof name, "  y err=%.2e tol=1e-3, max %ld bf16 ulp (tol 1), %ld of %ld differ", err,
                long(max_ulps), long(y_diff), long(rows * n));
  check(err <= 1e-3 && max_ulps <= 1, name);
}

PerfRow bench(int64_t rows, int64_t n, double ceiling) {
  const size_t per = size_t(rows * n) * 2 * 3;  // f, r, y per copy
  const int copies = copies_beyond_l2(per);
  std::mt19937_64 rng(7);
  auto host = random_bf16(size_t(rows * n) * copies, -2.f, 2.f, rng);
  DevBuf<uint16_t> f(host), r(host), y(host.size());
  DevBuf<uint16_t> w(random_bf16(size_t(n), 0.5f, 1.5f, rng));
  const double us = time_us(
      [&](cudaStream_t st, int c) {
        const size_t o = size_t(c) * size_t(rows * n);
        ds::cuda::add_rmsnorm_bf16(f.p + o, r.p + o, w.p, rows, n, 1e-6f, y.p + o, st);
      },
      copies);
  char shape[64];
  std::snprintf(shape, sizeof shape, "%ld x %ld", long(rows), long(n));
  return perf_row(shape, double(rows * n) * 2 * 4 + double(n) * 2, us, ceiling);
}

}  // namespace

int main(int argc, char** argv) try {
  const bool do_bench = !(argc > 1 && std::strcmp(argv[1], "--no-bench") == 0);
  // Tiny: vector path, scalar path (n % 8 != 0), n below one vector per thread, f == null.
  correctness(1, 64, true, 1);
  correctness(3, 200, true, 2);
  correctness(2, 100, true, 3);
  correctness(4, 512, false, 4);
  correctness(5, 7, true, 5);
  // Full DeepSeek-V3.2 widths: hidden 7168 (attn/ffn/final norm), q_lora 1536 and kv_lora 512 norms.
  correctness(1, 7168, true, 11);
  correctness(16, 7168, true, 12);
  correctness(128, 7168, false, 13);
  correctness(16, 1536, false, 14);
  correctness(16, 512, false, 15);
  bool throws = false;
  try {
    ds::cuda::add_rmsnorm_bf16(nullptr, nullptr, nullptr, 1, 0, 1e-6f, nullptr, nullptr);
  } catch (const std::invalid_argument&) {
    throws = true;
  }
  check(throws, "n = 0 throws std::invalid_argument");
  if (do_bench) {
    const double ceiling = copy_gbps();
    std::vector<PerfRow> rows;
    for (int64_t t : {1, 16, 128, 1024, 8192}) rows.push_back(bench(t, 7168, ceiling));
    print_perf("add_rmsnorm_bf16 rows x n", rows, ceiling);
  }
  std::printf("RMSNORM %s (%d failed checks)\n", g_fail ? "FAIL" : "PASS", g_fail);
  return g_fail ? 1 : 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "gpu_rmsnorm: %s\n", e.what());
  return 2;
}
