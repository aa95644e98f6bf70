// GPU test of the CUDA runner's small ops (src/kernels/elementwise.{h,cu}) against their CPU twins,
// at tiny and full DeepSeek-V3.2 widths (hidden 7168, q_lora 1536, kv_lora 512 + rope 64 row
// stride, index head 128, 64 index heads, moe_inter 2048). Run on the device machine by
// tests/gpu/run_all.sh.
//
// Expected agreement, from the kernels' construction (elementwise.h):
//  - bit-identical (0 differing elements): embed_gather, rmsnorm_f32 (dot_fixed's order, no FMA,
//    IEEE div/sqrt), layernorm_f32 (sequential sums), hadamard_rows (same butterflies), the FP8
//    round trip (same scale bits, RNE e4m3), add_to_bf16, round_to_bf16, bf16_to_f32, gather,
//    index_head_weights (left-to-right products);
//  - swiglu: CUDA expf differs from glibc's expf by <= 2 ulp, so before the BF16 rounding the
//    value differs by a few FP32 ulp; a BF16 output can flip to its neighbour when the FP32 value
//    sits that close to a rounding midpoint (rate ~1e-5 per element): every element within 1 BF16
//    ulp, and at most 1e-3 of the elements differing;
//  - dummy fills: deterministic (two runs equal), no FP8 NaN code (0x7f / 0xff), |u| < amp.
// Outputs are poisoned (NaN bytes) first, so an unwritten element fails.
// Speed: a few bandwidth lines against the device-to-device copy of the same run.
//
// Usage: gpu_elementwise [--no-bench]. Prints CHECK/RESULT lines; exit 0 iff all pass.
#include <cuda_runtime.h>

#include <cstring>
#include <memory>
#include <random>

#include "common/numeric.h"
#include "gpu_test_util.h"
#include "kernels/cpu/act_quant.h"
#include "kernels/cpu/hadamard.h"
#include "kernels/cpu/layernorm.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/elementwise.h"

namespace {

using namespace ds::gputest;

std::vector<float> rnd(size_t n, float lo, float hi, std::mt19937_64& g, bool bf16_values = true) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = bf16_values ? ds::round_bf16(u(g)) : u(g);
  return v;
}

int64_t count_diff(const std::vector<float>& a, const std::vector<float>& b) {
  int64_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += std::memcmp(&a[i], &b[i], 4) != 0;
  return n;
}

std::string shape(int64_t r, int64_t n) { return std::to_string(r) + " x " + std::to_string(n); }

void test_embed(int64_t V, int64_t D, int64_t R, std::mt19937_64& g) {
  std::vector<uint16_t> tab(size_t(V * D));
  for (auto& t : tab) t = ds::f32_to_bf16(std::uniform_real_distribution<float>(-1, 1)(g));
  std::vector<int32_t> ids(static_cast<size_t>(R));
  for (auto& i : ids) i = int32_t(g() % uint64_t(V));
  DevBuf<uint16_t> dt(tab), out(size_t(R * D));
  DevBuf<int32_t> di(ids);
  out.poison();
  ds::cuda::embed_gather(dt.p, true, di.p, R, D, out.p, nullptr);
  auto o = out.download();
  int64_t bad = 0;
  for (int64_t r = 0; r < R; ++r)
    for (int64_t d = 0; d < D; ++d) bad += o[size_t(r * D + d)] != tab[size_t(ids[size_t(r)] * D + d)];
  check(bad == 0, "embed_gather " + shape(R, D) + " bit-identical (" + std::to_string(bad) + " differ)");
}

void test_rmsnorm(int64_t R, int64_t n, int64_t ld, bool bf16, std::mt19937_64& g) {
  auto x = rnd(size_t(R * ld), -3.f, 3.f, g);
  auto w = rnd(size_t(n), 0.5f, 1.5f, g);
  std::vector<float> ref = x;
  for (int64_t r = 0; r < R; ++r) ds::cpu::rmsnorm(&x[size_t(r * ld)], w.data(), n, 1e-6f, &ref[size_t(r * ld)], bf16);
  DevBuf<float> dx(x), dw(w);
  ds::cuda::rmsnorm_f32(dx.p, ld, dw.p, R, n, 1e-6f, dx.p, ld, bf16, nullptr);  // in place, strided
  auto o = dx.download();
  const int64_t d = count_diff(o, ref);
  check(d == 0, "rmsnorm_f32 " + shape(R, n) + " ld " + std::to_string(ld) + (bf16 ? " bf16" : " f32") +
                    " bit-identical (" + std::to_string(d) + " differ)");
}

void test_layernorm(int64_t R, int64_t n, std::mt19937_64& g) {
  auto x = rnd(size_t(R * n), -2.f, 4.f, g);
  auto w = rnd(size_t(n), 0.5f, 1.5f, g), b = rnd(size_t(n), -0.5f, 0.5f, g);
  std::vector<float> ref(x.size());
  for (int64_t r = 0; r < R; ++r) ds::cpu::layernorm(&x[size_t(r * n)], w.data(), b.data(), n, 1e-6f, &ref[size_t(r * n)], true);
  DevBuf<float> dx(x), dw(w), db(b), dy(x.size());
  dy.poison();
  ds::cuda::layernorm_f32(dx.p, dw.p, db.p, R, n, 1e-6f, dy.p, true, nullptr);
  const int64_t d = count_diff(dy.download(), ref);
  check(d == 0, "layernorm_f32 " + shape(R, n) + " bit-identical (" + std::to_string(d) + " differ)");
}

void test_hadamard(int64_t R, int n, std::mt19937_64& g) {
  auto x = rnd(size_t(R * n), -2.f, 2.f, g);
  std::vector<float> ref = x;
  const float sc = 1.0f / std::sqrt(float(n));
  for (int64_t r = 0; r < R; ++r) {
    ds::cpu::hadamard_transform(&ref[size_t(r * n)], n, sc);
    for (int i = 0; i < n; ++i) ref[size_t(r * n + i)] = ds::round_bf16(ref[size_t(r * n + i)]);
  }
  DevBuf<float> dx(x);
  ds::cuda::hadamard_rows(dx.p, R, n, sc, true, nullptr);
  const int64_t d = count_diff(dx.download(), ref);
  check(d == 0, "hadamard_rows " + shape(R, n) + " + bf16 bit-identical (" + std::to_string(d) + " differ)");
}

void test_round_trip(int64_t R, int64_t cols, int64_t ld, std::mt19937_64& g) {
  auto x = rnd(size_t(R * ld), -20.f, 20.f, g);
  for (size_t i = 0; i < x.size(); i += 97) x[i] *= 1e-6f;  // small groups and subnormal FP8 codes
  std::vector<float> ref = x;
  for (int64_t r = 0; r < R; ++r) ds::cpu::fp8_round_trip(&ref[size_t(r * ld)], 1, cols);
  DevBuf<float> dx(x);
  ds::cuda::fp8_round_trip(dx.p, ld, R, cols, nullptr);
  const int64_t d = count_diff(dx.download(), ref);
  check(d == 0, "fp8_round_trip " + shape(R, cols) + " ld " + std::to_string(ld) + " bit-identical (" +
                    std::to_string(d) + " differ)");
}

void test_swiglu(int64_t n, std::mt19937_64& g) {
  auto gg = rnd(size_t(n), -8.f, 8.f, g), u = rnd(size_t(n), -4.f, 4.f, g);
  std::vector<float> ref(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float z = gg[size_t(i)];
    ref[size_t(i)] = ds::round_bf16(z / (1.0f + std::exp(-z)) * u[size_t(i)]);
  }
  DevBuf<float> dg(gg), du(u), dh(static_cast<size_t>(n));
  dh.poison();
  ds::cuda::swiglu(dg.p, du.p, n, dh.p, true, nullptr);
  auto o = dh.download();
  int64_t diff = 0, worst = 0;
  bool finite = true;
  for (int64_t i = 0; i < n; ++i) {
    finite = finite && std::isfinite(o[size_t(i)]);
    if (!finite) break;
    const int64_t ul = bf16_ulps(o[size_t(i)], ref[size_t(i)]);
    diff += ul != 0;
    worst = std::max(worst, ul);
  }
  check(finite && worst <= 1 && diff * 1000 <= n, "swiglu n=" + std::to_string(n) + " <= 1 BF16 ulp (" +
                                                      std::to_string(diff) + " differ, worst " + std::to_string(worst) + ")");
}

void test_small(int64_t n, std::mt19937_64& g) {
  auto a = rnd(size_t(n), -3.f, 3.f, g, false), b = rnd(size_t(n), -3.f, 3.f, g, false);
  DevBuf<float> da(a), db(b);
  DevBuf<uint16_t> o(static_cast<size_t>(n));
  o.poison();
  ds::cuda::add_to_bf16(da.p, db.p, n, o.p, nullptr);
  auto ob = o.download();
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) bad += ob[size_t(i)] != ds::f32_to_bf16(a[size_t(i)] + b[size_t(i)]);
  check(bad == 0, "add_to_bf16 n=" + std::to_string(n) + " bit-identical (" + std::to_string(bad) + " differ)");
  ds::cuda::add_to_bf16(da.p, nullptr, n, o.p, nullptr);
  ob = o.download();
  bad = 0;
  for (int64_t i = 0; i < n; ++i) bad += ob[size_t(i)] != ds::f32_to_bf16(a[size_t(i)]);
  check(bad == 0, "add_to_bf16 (no b) n=" + std::to_string(n) + " bit-identical");
  DevBuf<float> back(static_cast<size_t>(n));
  back.poison();
  ds::cuda::bf16_to_f32(o.p, n, back.p, nullptr);
  auto bk = back.download();
  bad = 0;
  for (int64_t i = 0; i < n; ++i) bad += bk[size_t(i)] != ds::round_bf16(a[size_t(i)]);
  check(bad == 0, "bf16_to_f32 n=" + std::to_string(n) + " exact");
  ds::cuda::round_to_bf16(da.p, n, nullptr);
  auto ra = da.download();
  check(count_diff(ra, bk) == 0, "round_to_bf16 n=" + std::to_string(n) + " == bf16(x)");
  // gather rows 3, 0, 3 of a [n/64, 64] BF16 matrix
  const int64_t D = 64;
  std::vector<int32_t> rows = {3, 0, 3};
  DevBuf<int32_t> dr(rows);
  DevBuf<float> gy(rows.size() * D);
  gy.poison();
  ds::cuda::gather_bf16_rows_f32(o.p, dr.p, int64_t(rows.size()), D, gy.p, nullptr);
  auto gv = gy.download();
  bad = 0;
  for (size_t r = 0; r < rows.size(); ++r)
    for (int64_t d = 0; d < D; ++d) bad += gv[r * D + d] != bk[size_t(rows[r] * D + d)];
  check(bad == 0, "gather_bf16_rows_f32 3 x 64 exact");
  // index head weights: w * (1/sqrt(64)) * q_scale * (1/sqrt(128)), left to right
  auto qs = rnd(size_t(n), 0.01f, 4.f, g, false);
  DevBuf<float> dq(qs), dwj(static_cast<size_t>(n));
  ds::cuda::index_head_weights(db.p, dq.p, n, 0.125f, 1.0f / std::sqrt(128.f), dwj.p, nullptr);
  auto wj = dwj.download();
  bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float r = b[size_t(i)] * 0.125f * qs[size_t(i)] * (1.0f / std::sqrt(128.f));
    bad += std::memcmp(&r, &wj[size_t(i)], 4) != 0;
  }
  check(bad == 0, "index_head_weights n=" + std::to_string(n) + " bit-identical");
}

void test_fills() {
  const int64_t n = 1 << 20;
  DevBuf<uint8_t> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
  ds::cuda::fill_random_fp8(a.p, n, 42, nullptr);
  ds::cuda::fill_random_fp8(b.p, n, 42, nullptr);
  auto ha = a.download(), hb = b.download();
  int64_t nan = 0, big = 0;
  for (uint8_t v : ha) {
    nan += (v & 0x7f) == 0x7f;
    big += std::fabs(ds::fp8_e4m3_to_f32(v)) > 300.f;
  }
  check(ha == hb && nan == 0 && big > n / 10, "fill_random_fp8 deterministic, no NaN codes, spans the range (" +
                                                 std::to_string(big) + " |q| > 300)");
  DevBuf<uint16_t> c(static_cast<size_t>(n));
  ds::cuda::fill_random_bf16(c.p, n, 3, 0.05f, nullptr);
  auto hc = c.download();
  double mx = 0, mean = 0;
  for (uint16_t v : hc) {
    mx = std::max(mx, double(std::fabs(ds::bf16_to_f32(v))));
    mean += ds::bf16_to_f32(v);
  }
  // u in [-1, 1) times 0.05, rounded to BF16: at most bf16(0.05) = 0.050048828 (first H200 run: the
  // bound 0.05 forgot the rounding).
  check(mx <= double(ds::round_bf16(0.05f)) && mx > 0.04 && std::fabs(mean / n) < 1e-3,
        "fill_random_bf16 within bf16(amp 0.05), mean ~0");
  DevBuf<float> f(size_t(1000));
  ds::cuda::fill_random_f32(f.p, 1000, 0, 0.f, 0.25f, nullptr);
  auto hf = f.download();
  check(std::all_of(hf.begin(), hf.end(), [](float v) { return v == 0.25f; }), "fill_random_f32 amp 0 = constant");
}

}  // namespace

int main(int argc, char** argv) {
  const bool bench = !(argc > 1 && std::string(argv[1]) == "--no-bench");
  std::mt19937_64 g(20261129);
  try {
    test_embed(1000, 256, 7, g);
    test_embed(4096, 7168, 64, g);
    for (bool bf : {true, false}) {
      test_rmsnorm(5, 128, 128, bf, g);
      test_rmsnorm(3, 100, 100, bf, g);     // dot_fixed tail (100 = 6 x 16 + 4)
      test_rmsnorm(64, 1536, 1536, bf, g);  // q_a_norm
      test_rmsnorm(64, 512, 576, bf, g);    // kv_a_norm inside the [C + dr] row
    }
    test_layernorm(9, 128, g);
    test_layernorm(1024, 128, g);
    test_hadamard(9, 128, g);
    test_hadamard(64 * 64, 128, g);  // 64 query rows x 64 index heads
    test_hadamard(3, 16, g);
    test_round_trip(3, 128, 192, g);
    test_round_trip(256, 512, 576, g);
    test_swiglu(1000, g);
    test_swiglu(64 * 2048 * 8, g);
    test_small(4096, g);
    test_small(128 * 7168, g);
    test_fills();
    DS_CUDA_CHECK(cudaDeviceSynchronize());
    if (bench) {
      const double ceil = copy_gbps();
      std::vector<PerfRow> rows;
      for (int64_t R : {1, 128, 8192}) {
        const int64_t D = 7168, n = R * D;
        const int copies = copies_beyond_l2(size_t(n) * 6);
        std::vector<std::unique_ptr<DevBuf<float>>> a;
        std::vector<std::unique_ptr<DevBuf<uint16_t>>> o;
        for (int c = 0; c < copies; ++c) {
          a.push_back(std::make_unique<DevBuf<float>>(size_t(n)));
          o.push_back(std::make_unique<DevBuf<uint16_t>>(size_t(n)));
          DS_CUDA_CHECK(cudaMemset(a.back()->p, 0, size_t(n) * 4));
        }
        const double us = time_us([&](cudaStream_t st, int c) { ds::cuda::add_to_bf16(a[c]->p, nullptr, n, o[c]->p, st); },
                                  copies);
        rows.push_back(perf_row("add_to_bf16 " + shape(R, D), double(n) * 6, us, ceil));
        const int64_t L = 576;
        const double us2 = time_us([&](cudaStream_t st, int c) {
          ds::cuda::rmsnorm_f32(a[c]->p, L, a[c]->p, std::min<int64_t>(R, n / L), 512, 1e-6f, a[c]->p, L, true, st);
        }, copies);
        rows.push_back(perf_row("rmsnorm_f32 kv_a " + shape(std::min<int64_t>(R, n / L), 512), double(R) * 512 * 8, us2, ceil));
      }
      print_perf("op", rows, ceil);
    }
  } catch (const std::exception& e) {
    std::printf("CHECK %-72s FAIL\nerror: %s\n", "gpu_elementwise ran to the end", e.what());
    return 1;
  }
  std::printf("%s\n", g_fail ? "FAILED" : "ALL PASS");
  return g_fail ? 1 : 0;
}
