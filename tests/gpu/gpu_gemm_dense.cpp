// GPU test + benchmark of ds::cuda::gemm_dense (BF16/F32 weight, FP32 arithmetic) against its CPU
// twin ds::cpu::gemm with a BF16/F32 WeightView and default options (FP32, D23), run on the device
// machine by tests/gpu/run_all.sh (never by ctest).
//
// Inputs: random weights (BF16 values or F32), random activations with a per-row magnitude. The
// output is poisoned with NaN first. At large M the twin runs on sampled rows only (it is batch
// invariant). Tolerances (derived before the run):
//  - F32 output, normwise <= 1e-5: both sides add the same K FP32 products in different orders
//    (GPU: FMA chains over 8-wide chunks per lane, then a lane butterfly; CPU: 16 lanes, a tree, no
//    FMA). For random-sign data the difference is ~sqrt(log K) * 2^-24 ~ 1e-7; 1e-5 keeps 100x
//    margin while a missing chunk or a wrong row gives > 1e-3.
//  - BF16 output, normwise <= 1e-3: an element flips by one BF16 ulp (<= 2^-7 relative) only where
//    the F32 values straddle a rounding midpoint (probability ~ 1e-7 / 4e-3 per element); 1e-3
//    would still hold with ~1% of elements flipped. The count of elements > 1 ulp is printed.
//  - Batch invariance (D27): sampled rows equal the M = 1 run of the same row bit for bit;
//    determinism: two runs bit-identical.
// Speed: bytes that must move over the median CUDA-graph time (weights rotated beyond 4x the L2)
// against the copy bandwidth of the same run (the lm_head at M = 1 must be bandwidth-bound), and
// TFLOP/s (2MNK) against spec/benchmarks.md's cuBLAS bf16 765 TFLOP/s (this kernel is CUDA-core).
//
// Usage: gpu_gemm_dense [--no-bench]. Prints CHECK/RESULT lines and a table; exit 0 iff all pass.
#include <cuda_runtime.h>

#include <cstring>
#include <random>

#include "common/numeric.h"
#include "gpu_test_util.h"
#include "kernels/cpu/gemm.h"
#include "kernels/gemm_dense.h"

namespace {

using namespace ds::gputest;

std::vector<int64_t> sample_rows(int64_t M) {
  std::vector<int64_t> r;
  if (M <= 16) {
    for (int64_t m = 0; m < M; ++m) r.push_back(m);
    return r;
  }
  for (int64_t m : {int64_t(0), int64_t(3), int64_t(4), M / 2, M - 1}) r.push_back(m);
  for (int i = 1; i <= 8; ++i) r.push_back((M * i) / 9);
  std::sort(r.begin(), r.end());
  r.erase(std::unique(r.begin(), r.end()), r.end());
  return r;
}

// Host weight: BF16 bits or F32 values in [-0.1, 0.1) (xorshift64: the lm_head has 0.9e9 values);
// `raw` is what is uploaded.
std::vector<uint8_t> make_weight(int64_t N, int64_t K, bool bf16, uint64_t seed) {
  std::vector<uint8_t> raw(size_t(N * K) * (bf16 ? 2 : 4));
  uint64_t st = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int64_t i = 0; i < N * K; ++i) {
    st ^= st << 13;
    st ^= st >> 7;
    st ^= st << 17;
    const float v = (float(uint32_t(st >> 40)) * (1.0f / 16777216.0f) - 0.5f) * 0.2f;
    if (bf16) {
      const uint16_t b = ds::f32_to_bf16(v);
      std::memcpy(&raw[size_t(i) * 2], &b, 2);
    } else {
      std::memcpy(&raw[size_t(i) * 4], &v, 4);
    }
  }
  return raw;
}

void run_case(const char* name, int64_t M, int64_t N, int64_t K, bool wbf16, bool obf16, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::vector<uint8_t> raw = make_weight(N, K, wbf16, seed);
  std::vector<float> x(size_t(M * K));
  std::normal_distribution<float> nd(0.f, 1.f);
  std::uniform_int_distribution<int> ex(-2, 2);
  for (int64_t m = 0; m < M; ++m) {
    const float mag = std::ldexp(1.f, ex(rng));
    for (int64_t k = 0; k < K; ++k) x[size_t(m * K + k)] = ds::round_bf16(nd(rng) * mag);
  }
  DevBuf<uint8_t> dw(raw);
  DevBuf<float> dx(x), y(size_t(M * N)), y2(size_t(M * N)), y1{size_t(N)};
  const ds::cuda::DenseWeightDev wd{dw.p, wbf16, N, K};
  y.poison();
  y2.poison();
  ds::cuda::gemm_dense(dx.p, M, wd, y.p, obf16, nullptr);
  ds::cuda::gemm_dense(dx.p, M, wd, y2.p, obf16, nullptr);
  DS_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> gy = y.download(), gy2 = y2.download();
  const std::vector<int64_t> rows = sample_rows(M);
  const int64_t S = int64_t(rows.size());
  std::vector<float> xsub(size_t(S * K)), ref(size_t(S * N)), got(size_t(S * N));
  for (int64_t i = 0; i < S; ++i) {
    std::memcpy(&xsub[size_t(i * K)], &x[size_t(rows[i] * K)], size_t(K) * 4);
    std::memcpy(&got[size_t(i * N)], &gy[size_t(rows[i] * N)], size_t(N) * 4);
  }
  const ds::cpu::WeightView wv{wbf16 ? ds::DType::BF16 : ds::DType::F32, N, K, raw.data(), nullptr};
  ds::cpu::gemm(xsub.data(), S, wv, ref.data(), ds::cpu::GemmOptions{false, obf16});
  const double err = normwise(got, ref);
  int64_t over1 = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (obf16 && std::isfinite(got[i]) && bf16_ulps(got[i], ref[i]) > 1) ++over1;
  const double tol = obf16 ? 1e-3 : 1e-5;
  char what[240];
  std::snprintf(what, sizeof what, "%s M=%ld N=%ld K=%ld w=%s out=%s: normwise %.2e <= %.0e", name, long(M), long(N),
                long(K), wbf16 ? "bf16" : "f32", obf16 ? "bf16" : "f32", err, tol);
  check(err <= tol, what);
  std::printf("RESULT gemm_dense %s M=%ld normwise %.3e%s\n", name, long(M), err,
              obf16 ? (" >1ulp " + std::to_string(over1)).c_str() : "");
  check(std::memcmp(gy.data(), gy2.data(), gy.size() * 4) == 0,
        std::string(name) + " M=" + std::to_string(M) + ": two runs bit-identical");
  if (M > 1) {
    bool same = true;
    for (int64_t r : {rows.front(), rows[rows.size() / 2], rows.back()}) {
      y1.poison();
      ds::cuda::gemm_dense(dx.p + r * K, 1, wd, y1.p, obf16, nullptr);
      DS_CUDA_CHECK(cudaDeviceSynchronize());
      const std::vector<float> g1 = y1.download();
      same = same && std::memcmp(g1.data(), &gy[size_t(r * N)], size_t(N) * 4) == 0;
    }
    check(same, std::string(name) + " M=" + std::to_string(M) + ": rows equal their M=1 runs bit for bit");
  }
}

void bench_row(const char* name, int64_t M, int64_t N, int64_t K, bool wbf16, double ceiling) {
  const size_t wbytes = size_t(N * K) * (wbf16 ? 2 : 4);
  const int copies = copies_beyond_l2(wbytes);
  DevBuf<uint8_t> dw(wbytes * copies);
  DS_CUDA_CHECK(cudaMemset(dw.p, 0x3c, wbytes * copies));  // small finite values either way
  DevBuf<float> x(size_t(M * K)), y(size_t(M * N));
  DS_CUDA_CHECK(cudaMemset(x.p, 0, size_t(M * K) * 4));
  const double us = time_us(
      [&](cudaStream_t st, int c) {
        const ds::cuda::DenseWeightDev wd{dw.p + size_t(c) * wbytes, wbf16, N, K};
        ds::cuda::gemm_dense(x.p, M, wd, y.p, false, st);
      },
      copies);
  const double bytes = double(wbytes) + double(M * K * 4) + double(M * N * 4);
  const double gbps = bytes / (us * 1e-6) / 1e9, tf = 2.0 * double(M) * double(N) * double(K) / (us * 1e-6) / 1e12;
  std::printf("| %s %ld x %ld x %ld %s | %.2f | %.0f | %.0f%% | %.2f | %.1f%% |\n", name, long(M), long(N), long(K),
              wbf16 ? "bf16" : "f32", us, gbps, 100 * gbps / ceiling, tf, 100 * tf / 765);
}

}  // namespace

int main(int argc, char** argv) try {
  const bool do_bench = !(argc > 1 && std::strcmp(argv[1], "--no-bench") == 0);
  uint64_t seed = 1;
  // Tiny: the scalar path (K % 8 != 0), partial warps (N % 4, M % 4), both dtypes and roundings.
  for (bool wb : {true, false})
    for (bool ob : {false, true}) {
      run_case("tiny", 1, 4, 8, wb, ob, seed++);
      run_case("tiny", 3, 5, 13, wb, ob, seed++);
      run_case("tiny", 7, 33, 100, wb, ob, seed++);
      run_case("tiny", 6, 70, 264, wb, ob, seed++);
    }
  // Full widths: lm_head (BF16 129280 x 7168), router (256 x 7168), indexer weights_proj (64 x 7168).
  for (int64_t M : {1, 4, 16, 64, 512}) run_case("lm_head", M, 129280, 7168, true, false, seed++);
  for (int64_t M : {1, 16, 4096}) run_case("router_f32", M, 256, 7168, false, false, seed++);
  for (int64_t M : {1, 64, 4096}) run_case("router_bf16", M, 256, 7168, true, false, seed++);
  for (int64_t M : {1, 512}) run_case("weights_proj", M, 64, 7168, true, true, seed++);
  bool threw = false;
  try {
    ds::cuda::gemm_dense(nullptr, 1, ds::cuda::DenseWeightDev{}, nullptr, false, nullptr);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  check(threw, "empty weight throws std::invalid_argument");
  if (do_bench) {
    const double ceiling = copy_gbps();
    std::printf("RESULT copy_d2d_GBps %.0f GB/s (1 GiB cudaMemcpyAsync, read + write bytes)\n", ceiling);
    std::printf("\n| gemm_dense M x N x K w | time us | GB/s | of copy bw | TFLOP/s | of 765 (cuBLAS bf16) |\n"
                "|---|---|---|---|---|---|\n");
    for (int64_t M : {1, 4, 16, 64}) bench_row("lm_head", M, 129280, 7168, true, ceiling);
    for (int64_t M : {1, 64, 4096}) bench_row("router", M, 256, 7168, false, ceiling);
    for (int64_t M : {1, 64}) bench_row("weights_proj", M, 64, 7168, true, ceiling);
    std::printf("\n");
  }
  std::printf("GEMM_DENSE %s (%d failed checks)\n", g_fail ? "FAIL" : "PASS", g_fail);
  return g_fail ? 1 : 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "gpu_gemm_dense: %s\n", e.what());
  return 2;
}
