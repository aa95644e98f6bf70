// GPU test + benchmark of ds::cuda::act_quant_ue8m0 against its CPU twin ds::cpu::act_quant
// (spec/model.md 9.2), run on the device machine by tests/gpu/run_all.sh.
//
// Correctness: bit-exact. Both sides do the same exact or correctly rounded ops (exact max of |x|,
// one FP32 multiply by fl32(1/448), the exponent-bit UE8M0 rule, an exact multiply by 1/s, clamp,
// round-to-nearest-even E4M3), so every FP8 byte (the twin's float value re-encoded) and every
// scale must be equal. Inputs: per-group magnitudes spread over 2^-40..2^20 (scale exponents
// from -22 up), all-zero groups, E4M3 subnormals, values on E4M3 rounding midpoints (ties to
// even), values at +-448 * s and above (saturation); F32 and BF16 inputs. Outputs are poisoned
// before the launch. Speed: bytes read + written over the median CUDA-graph time, buffers
// rotated beyond 4x the L2, against the device-to-device copy of the same run.
//
// Usage: gpu_act_quant [--no-bench]. Prints CHECK/RESULT lines and a table; exit 0 iff all pass.
#include <cuda_runtime.h>

#include <cstring>
#include <random>

#include "common/numeric.h"
#include "gpu_test_util.h"
#include "kernels/act_quant.h"
#include "kernels/cpu/act_quant.h"

namespace {

using namespace ds::gputest;
using ds::cuda::QuantInType;

// Random activations with a different magnitude per 128-group and some special groups.
std::vector<float> make_x(int64_t rows, int64_t cols, bool bf16, std::mt19937_64& rng) {
  std::vector<float> x(size_t(rows * cols));
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::uniform_int_distribution<int> ex(-40, 20), kind(0, 9), code(0, 126);
  for (int64_t g = 0; g < rows * cols / 128; ++g) {
    float* p = &x[size_t(g * 128)];
    const int k = kind(rng);
    const float mag = std::ldexp(1.f, ex(rng));
    for (int i = 0; i < 128; ++i) {
      float v = u(rng) * mag;
      if (k == 0) v = 0.f;                                          // all-zero group: s = 2^-22
      if (k == 1 && i % 3 == 0) v = std::ldexp(1.f, -9 - i % 4);     // E4M3 subnormals at s = 1
      if (k == 2) {                                                  // midpoints between E4M3 codes
        const float a = ds::fp8_e4m3_to_f32(uint8_t(code(rng))), b = ds::fp8_e4m3_to_f32(uint8_t(code(rng) + 1));
        v = (i % 2 ? -1.f : 1.f) * (a + (b - a) * 0.5f) * mag;
      }
      if (k == 3 && i == 5) v = 448.f * mag;                         // exactly the top of the range
      if (k == 3 && i == 6) v = -449.f * mag;
      if (bf16) v = ds::round_bf16(v);
      p[i] = v;
    }
  }
  return x;
}

void correctness(int64_t rows, int64_t cols, bool bf16, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<float> x = make_x(rows, cols, bf16, rng);
  const int64_t groups = rows * cols / 128;
  std::vector<float> ref_q(x.size()), ref_s(static_cast<size_t>(groups));
  ds::cpu::act_quant(x.data(), rows, cols, ref_q.data(), ref_s.data());
  DevBuf<uint8_t> q(x.size());
  DevBuf<float> s(static_cast<size_t>(groups));
  q.poison();
  s.poison();
  if (bf16) {
    std::vector<uint16_t> xb(x.size());
    for (size_t i = 0; i < x.size(); ++i) xb[i] = ds::f32_to_bf16(x[i]);
    DevBuf<uint16_t> dx(xb);
    ds::cuda::act_quant_ue8m0(dx.p, QuantInType::BF16, rows, cols, q.p, s.p, nullptr);
    DS_CUDA_CHECK(cudaDeviceSynchronize());
  } else {
    DevBuf<float> dx(x);
    ds::cuda::act_quant_ue8m0(dx.p, QuantInType::F32, rows, cols, q.p, s.p, nullptr);
    DS_CUDA_CHECK(cudaDeviceSynchronize());
  }
  auto gq = q.download();
  auto gs = s.download();
  int64_t bad_q = 0, bad_s = 0;
  for (size_t i = 0; i < gq.size(); ++i) bad_q += gq[i] != ds::f32_to_fp8_e4m3(ref_q[i]);
  for (size_t i = 0; i < gs.size(); ++i) bad_s += std::memcmp(&gs[i], &ref_s[i], 4) != 0;
  char name[200];
  std::snprintf(name, sizeof name, "act_quant rows=%ld cols=%ld x=%s: bytes and scales equal (%ld, %ld differ)",
                long(rows), long(cols), bf16 ? "bf16" : "f32", long(bad_q), long(bad_s));
  check(bad_q == 0 && bad_s == 0, name);
}

PerfRow bench(int64_t rows, int64_t cols, double ceiling) {
  const size_t n = size_t(rows * cols);
  const int copies = copies_beyond_l2(n * 3);
  std::mt19937_64 rng(5);
  std::vector<uint16_t> h(n * copies);
  std::uniform_real_distribution<float> u(-3.f, 3.f);
  for (auto& b : h) b = ds::f32_to_bf16(u(rng));
  DevBuf<uint16_t> x(h);
  DevBuf<uint8_t> q(n * copies);
  DevBuf<float> s(n / 128 * copies);
  const double us = time_us(
      [&](cudaStream_t st, int c) {
        ds::cuda::act_quant_ue8m0(x.p + c * n, QuantInType::BF16, rows, cols, q.p + c * n, s.p + c * (n / 128), st);
      },
      copies);
  char shape[64];
  std::snprintf(shape, sizeof shape, "%ld x %ld bf16", long(rows), long(cols));
  return perf_row(shape, double(n) * 3 + double(n / 128) * 4, us, ceiling);
}

}  // namespace

int main(int argc, char** argv) try {
  const bool do_bench = !(argc > 1 && std::strcmp(argv[1], "--no-bench") == 0);
  correctness(1, 128, false, 1);
  correctness(3, 384, true, 2);
  correctness(2, 256, false, 3);
  // Full DeepSeek-V3.2 widths: hidden 7168, q_lora 1536, kv_lora 512, expert/dense widths.
  correctness(1, 7168, true, 11);
  correctness(16, 7168, true, 12);
  correctness(128, 7168, false, 13);
  correctness(64, 1536, true, 14);
  correctness(64, 512, false, 15);
  correctness(8, 18432, true, 16);
  correctness(4, 16384, false, 17);
  bool throws = false;
  try {
    ds::cuda::act_quant_ue8m0(nullptr, QuantInType::F32, 1, 100, nullptr, nullptr, nullptr);
  } catch (const std::invalid_argument&) {
    throws = true;
  }
  check(throws, "cols = 100 throws std::invalid_argument");
  if (do_bench) {
    const double ceiling = copy_gbps();
    std::vector<PerfRow> rows;
    for (int64_t t : {1, 16, 128, 1024, 8192}) rows.push_back(bench(t, 7168, ceiling));
    print_perf("act_quant_ue8m0 rows x cols", rows, ceiling);
  }
  std::printf("ACT_QUANT %s (%d failed checks)\n", g_fail ? "FAIL" : "PASS", g_fail);
  return g_fail ? 1 : 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "gpu_act_quant: %s\n", e.what());
  return 2;
}
