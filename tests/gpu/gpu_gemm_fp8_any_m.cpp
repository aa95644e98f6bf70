// GPU test + benchmark of ds::cuda::gemm_fp8 (official FP8 GEMM, any M, spec/model.md 9.2) against
// its CPU twin ds::cpu::gemm with GemmOptions{fp8_activations = true, bf16_output}, run on the
// device machine by tests/gpu/run_all.sh (never by ctest).
//
// Inputs: random E4M3 weight codes (no NaN codes), random positive 128x128 block scales, random
// BF16-valued activations with a per-row magnitude; the GPU quantizes them with act_quant_ue8m0
// (bit-identical to the twin's act_quant, tested by gpu_act_quant), the twin quantizes its own.
// Outputs are poisoned with NaN first, so an unwritten element fails. At large M the twin runs on
// sampled rows only (the twin is batch invariant, so its rows do not depend on the others).
//
// Tolerances (derived before the run):
//  - F32 output, normwise <= 1e-5. Every FP8 product is exact in FP32 on both sides; the twin adds
//    the 128 products of a block in FP32 (16 lanes + tree), the GPU in the tensor core's order. On
//    sm_90a `mma.sync.m16n8k32.e4m3` is not a native instruction: ptxas converts the E4M3 operands
//    to FP16 (exact) and runs FP16 HMMAs with FP32 accumulation plus FP32 adds (ncu SASS of the
//    first H200 run), so the block sums differ from the twin's only by FP32 reassociation:
//    ~sqrt(128) * 2^-24 relative per block, ~1e-7 normwise (measured 0.7e-7 .. 2.4e-7 on the first
//    run, all shapes). 1e-5 keeps a 40x margin and still fails any real bug: a wrong block scale
//    changes 1/kb of the blocks by >= 2x (>= 0.08 normwise at kb <= 128), a missing k32 step or an
//    A/B k mismatch gives ~0.5. (The earlier bound of 2e-3 assumed the ~14-bit FP8 accumulator of
//    DeepSeek-V3 report 3.3.2, which the emulated path does not have.)
//  - BF16 output, normwise <= 6e-3: each output rounds to BF16 on both sides, so where the F32
//    values differ an element flips by one BF16 ulp (<= 2^-7 relative) with probability ~ d / ulp
//    (~1e-4 at d ~ 2e-7); but at tiny N a single flip among 8 outputs is already 2^-8 / sqrt(8)
//    ~ 1.4e-3 normwise, hence 6e-3.
//  - Batch invariance (D27): sampled rows of an M-row run equal the M = 1 run of the same row bit
//    for bit (M = 1 uses the streaming kernel, M >= 100 the tiled one, M = 17..64 either, by N:
//    this checks both compute the
//    same bits). Determinism: two runs bit-identical.
// Speed: M <= 16 in GB/s of bytes that must move (weights + scales + xq + xs + y), weights rotated
// beyond 4x the L2, against the copy bandwidth of the same run; M >= 64 in TFLOP/s (2MNK) against
// spec/benchmarks.md's cuBLASLt FP8 (1352 TFLOP/s per-tensor, ~1100 block-scaled).
//
// Usage: gpu_gemm_fp8_any_m [--no-bench]. Prints CHECK/RESULT lines and a table; exit 0 iff all pass.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>

#include "common/numeric.h"
#include "gpu_test_util.h"
#include "kernels/act_quant.h"
#include "kernels/cpu/gemm.h"
#include "kernels/gemm_fp8.h"

namespace {

using namespace ds::gputest;

struct Weight {
  int64_t N, K;
  std::vector<uint8_t> w;
  std::vector<float> s;
};

Weight make_weight(int64_t N, int64_t K, std::mt19937_64& rng) {
  Weight W{N, K, std::vector<uint8_t>(size_t(N * K)), std::vector<float>(size_t((N + 127) / 128 * (K / 128)))};
  uint64_t st = rng() | 1;  // xorshift64 (the o projection has 1.2e8 codes)
  for (auto& b : W.w) {
    st ^= st << 13;
    st ^= st >> 7;
    st ^= st << 17;
    b = uint8_t(st >> 56);
    if ((b & 0x7f) == 0x7f) b = uint8_t(b - 1);  // E4M3 NaN codes -> 448
  }
  std::uniform_real_distribution<float> u(1.f, 2.f);
  std::uniform_int_distribution<int> ex(-10, -6);
  for (auto& v : W.s) v = std::ldexp(u(rng), ex(rng));
  return W;
}

std::vector<float> make_x(int64_t M, int64_t K, std::mt19937_64& rng) {
  std::vector<float> x(size_t(M * K));
  std::normal_distribution<float> nd(0.f, 1.f);
  std::uniform_int_distribution<int> ex(-3, 3);
  for (int64_t m = 0; m < M; ++m) {
    const float mag = std::ldexp(1.f, ex(rng));
    for (int64_t k = 0; k < K; ++k) x[size_t(m * K + k)] = ds::round_bf16(nd(rng) * mag);
  }
  return x;
}

std::vector<int64_t> sample_rows(int64_t M) {
  std::vector<int64_t> r;
  if (M <= 64) {
    for (int64_t m = 0; m < M; ++m) r.push_back(m);
    return r;
  }
  for (int64_t m : {int64_t(0), int64_t(1), int64_t(15), int64_t(16), int64_t(63), int64_t(64), M / 2, M - 1})
    if (m < M) r.push_back(m);
  for (int i = 1; i <= 16; ++i) r.push_back((M * i) / 17);
  std::sort(r.begin(), r.end());
  r.erase(std::unique(r.begin(), r.end()), r.end());
  return r;
}

void run_case(const char* name, int64_t M, int64_t N, int64_t K, bool bf16, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const Weight W = make_weight(N, K, rng);
  const std::vector<float> x = make_x(M, K, rng);
  const int64_t kb = K / 128;
  DevBuf<uint8_t> dw(W.w), xq(size_t(M * K));
  DevBuf<float> ds(W.s), dx(x), xs(size_t(M * kb)), y(size_t(M * N)), y2(size_t(M * N)), y1{size_t(N)};
  ds::cuda::Fp8WeightDev wd{dw.p, ds.p, N, K};
  ds::cuda::act_quant_ue8m0(dx.p, ds::cuda::QuantInType::F32, M, K, xq.p, xs.p, nullptr);
  y.poison();
  y2.poison();
  ds::cuda::gemm_fp8(xq.p, xs.p, M, wd, y.p, bf16, nullptr);
  ds::cuda::gemm_fp8(xq.p, xs.p, M, wd, y2.p, bf16, nullptr);
  DS_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> gy = y.download(), gy2 = y2.download();

  // CPU twin on the sampled rows.
  const std::vector<int64_t> rows = sample_rows(M);
  const int64_t S = int64_t(rows.size());
  std::vector<float> xsub(size_t(S * K)), ref(size_t(S * N)), got(size_t(S * N));
  for (int64_t i = 0; i < S; ++i) {
    std::memcpy(&xsub[size_t(i * K)], &x[size_t(rows[i] * K)], size_t(K) * 4);
    std::memcpy(&got[size_t(i * N)], &gy[size_t(rows[i] * N)], size_t(N) * 4);
  }
  ds::cpu::WeightView wv{ds::DType::F8_E4M3, N, K, W.w.data(), W.s.data()};
  ds::cpu::gemm(xsub.data(), S, wv, ref.data(), ds::cpu::GemmOptions{true, bf16});
  const double err = normwise(got, ref);
  int64_t equal = 0, over1 = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    equal += std::memcmp(&got[i], &ref[i], 4) == 0;
    if (bf16 && std::isfinite(got[i]) && bf16_ulps(got[i], ref[i]) > 1) ++over1;
  }
  const double tol = bf16 ? 6e-3 : 1e-5;
  char what[240];
  std::snprintf(what, sizeof what, "%s M=%ld N=%ld K=%ld %s: normwise %.2e <= %.0e (%ld rows)", name, long(M), long(N),
                long(K), bf16 ? "bf16" : "f32", err, tol, long(S));
  check(err <= tol, what);
  std::printf("RESULT gemm_fp8 %s M=%ld %s normwise %.3e equal %.1f%%%s\n", name, long(M), bf16 ? "bf16" : "f32", err,
              100.0 * double(equal) / double(got.size()),
              bf16 ? (" >1ulp " + std::to_string(over1)).c_str() : "");

  // Determinism and batch invariance.
  check(std::memcmp(gy.data(), gy2.data(), gy.size() * 4) == 0,
        std::string(name) + " M=" + std::to_string(M) + ": two runs bit-identical");
  if (M > 1) {
    bool same = true;
    for (int64_t r : {rows.front(), rows[rows.size() / 2], rows.back()}) {
      y1.poison();
      ds::cuda::gemm_fp8(xq.p + r * K, xs.p + r * kb, 1, wd, y1.p, bf16, nullptr);
      DS_CUDA_CHECK(cudaDeviceSynchronize());
      const std::vector<float> g1 = y1.download();
      same = same && std::memcmp(g1.data(), &gy[size_t(r * N)], size_t(N) * 4) == 0;
    }
    check(same, std::string(name) + " M=" + std::to_string(M) + ": rows equal their M=1 runs bit for bit");
  }
}

// Grouped form (gemm_fp8_grouped, as moe_experts uses it): groups of 0, 11 and 5 rows gathered
// from 7 activation rows, 2 projections per group, under several row hints: 4 (below the largest
// group: 8-row tiles, the 11-row group spans two), 16 (16-row tiles), 64 (streaming, 16-row tiles,
// up to 4 per group) and 100 (tiled kernel). Every grouped row must equal gemm_fp8 at M = 1 on its
// activation row and its group's weight bit for bit (outputs poisoned first: a skipped row fails).
void grouped_case(bool bf16, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int64_t N = 200, K = 1152, kb = K / 128, A = 7, rows = 16;
  const int G = 3, nproj = 2;
  const std::vector<int32_t> goff = {0, 0, 11, 16};
  std::vector<int32_t> arow(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) arow[size_t(r)] = int32_t((r * 5 + 3) % A);
  std::vector<std::unique_ptr<DevBuf<uint8_t>>> dw;
  std::vector<std::unique_ptr<DevBuf<float>>> dsc;
  std::vector<ds::cuda::Fp8WeightDev> wb;
  for (int i = 0; i < G * nproj; ++i) {
    const Weight W = make_weight(N, K, rng);
    dw.push_back(std::make_unique<DevBuf<uint8_t>>(W.w));
    dsc.push_back(std::make_unique<DevBuf<float>>(W.s));
    wb.push_back({dw.back()->p, dsc.back()->p, N, K});
  }
  const std::vector<float> x = make_x(A, K, rng);
  DevBuf<float> dx(x), xs(size_t(A * kb)), y0(size_t(rows * N)), y1(size_t(rows * N)), yr{size_t(N)};
  DevBuf<uint8_t> xq(size_t(A * K));
  DevBuf<int32_t> dgoff(goff), darow(arow);
  DevBuf<ds::cuda::Fp8WeightDev> dwb(wb);
  ds::cuda::act_quant_ue8m0(dx.p, ds::cuda::QuantInType::F32, A, K, xq.p, xs.p, nullptr);
  // Reference rows: gemm_fp8 at M = 1, [group row r][projection].
  std::vector<std::vector<float>> ref(size_t(rows * nproj));
  for (int g = 0; g < G; ++g)
    for (int32_t r = goff[size_t(g)]; r < goff[size_t(g) + 1]; ++r)
      for (int p = 0; p < nproj; ++p) {
        yr.poison();
        const int64_t a = arow[size_t(r)];
        ds::cuda::gemm_fp8(xq.p + a * K, xs.p + a * kb, 1, wb[size_t(g * nproj + p)], yr.p, bf16, nullptr);
        DS_CUDA_CHECK(cudaDeviceSynchronize());
        ref[size_t(r * nproj + p)] = yr.download();
      }
  for (int64_t hint : {4, 16, 64, 100}) {
    y0.poison();
    y1.poison();
    float* y[2] = {y0.p, y1.p};
    ds::cuda::gemm_fp8_grouped(xq.p, xs.p, darow.p, rows, dgoff.p, G, dwb.p, nproj, nproj, N, K, y, hint, bf16,
                               nullptr);
    DS_CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<float> g0 = y0.download(), g1 = y1.download();
    bool same = true;
    for (int64_t r = 0; r < rows; ++r)
      for (int p = 0; p < nproj; ++p)
        same = same && std::memcmp(&(p == 0 ? g0 : g1)[size_t(r * N)], ref[size_t(r * nproj + p)].data(),
                                   size_t(N) * 4) == 0;
    check(same, std::string("grouped 3 groups (0, 11, 5 rows) x 2 proj, row hint ") + std::to_string(hint) +
                    (bf16 ? " bf16" : " f32") + ": rows equal gemm_fp8 at M=1 bit for bit");
  }
}

struct Bench {
  std::string shape;
  double us, gbps, tflops;
};

Bench bench(int64_t M, int64_t N, int64_t K) {
  std::mt19937_64 rng(99);
  const int64_t kb = K / 128;
  const size_t wbytes = size_t(N * K), sbytes = size_t((N + 127) / 128 * kb) * 4;
  const int copies = M <= 16 ? copies_beyond_l2(wbytes) : 1;
  const Weight W = make_weight(N, K, rng);
  std::vector<uint8_t> wall(wbytes * copies);
  for (int c = 0; c < copies; ++c) std::memcpy(&wall[c * wbytes], W.w.data(), wbytes);
  DevBuf<uint8_t> dw(wall), xq(size_t(M * K));
  DevBuf<float> ds(W.s), xs(size_t(M * kb)), y(size_t(M * N));
  DS_CUDA_CHECK(cudaMemset(xq.p, 0x38, size_t(M * K)));  // 1.0 in E4M3
  std::vector<float> ones(size_t(M * kb), 1.f);
  xs.upload(ones);
  const double us = time_us(
      [&](cudaStream_t st, int c) {
        ds::cuda::Fp8WeightDev wd{dw.p + size_t(c) * wbytes, ds.p, N, K};
        ds::cuda::gemm_fp8(xq.p, xs.p, M, wd, y.p, true, st);
      },
      copies);
  const double bytes = double(wbytes + sbytes) + double(M * K) + double(M * kb * 4) + double(M * N * 4);
  char shape[80];
  std::snprintf(shape, sizeof shape, "%ld x %ld x %ld", long(M), long(N), long(K));
  return {shape, us, bytes / (us * 1e-6) / 1e9, 2.0 * double(M) * double(N) * double(K) / (us * 1e-6) / 1e12};
}

// The grouped launches moe_experts issues at decode: T tokens x top-8 of 256 experts (distinct per
// token, uniform), rows grouped by expert in ascending (t, k); gate + up of the touched experts as
// one nproj = 2 launch (N = I = 2048, K = D = 7168, rows gathered through a_rows), or down (nproj =
// 1, N = 7168, K = 2048, rows already grouped). GB/s of the bytes that must move: the touched
// experts' weights and scales, the activations and the outputs; the touched weights are rotated
// over copies (distinct buffers per copy) beyond 4x the L2, so they come from DRAM.
// shared: one more group (the shared expert, moe_experts' shared_expert) with one row per token.
Bench bench_grouped(int64_t T, int nproj, int64_t N, int64_t K, bool shared) {
  constexpr int ER = 256, topk = 8;
  const int E = ER + (shared ? 1 : 0);
  const int64_t kb = K / 128, TK = T * topk + (shared ? T : 0);
  std::mt19937_64 rng(7 + uint64_t(T));
  std::vector<std::vector<int>> ids(static_cast<size_t>(T));
  std::vector<int> perm(ER);  // routed experts only (same routing with and without the shared one)
  for (auto& v : ids) {
    for (int e = 0; e < ER; ++e) perm[size_t(e)] = e;
    std::shuffle(perm.begin(), perm.end(), rng);
    v.assign(perm.begin(), perm.begin() + topk);
  }
  std::vector<int32_t> goff(E + 1, 0), a_rows;
  std::vector<int> slot(E, -1);  // rank of a touched expert
  int touched = 0;
  for (int e = 0; e < E; ++e) {
    for (int64_t t = 0; t < T; ++t)
      for (int k = 0; k < topk; ++k)
        if (ids[size_t(t)][size_t(k)] == e) a_rows.push_back(int32_t(t));
    if (e == ER)  // the shared expert: every token
      for (int64_t t = 0; t < T; ++t) a_rows.push_back(int32_t(t));
    goff[size_t(e) + 1] = int32_t(a_rows.size());
    if (goff[size_t(e) + 1] > goff[size_t(e)]) slot[size_t(e)] = touched++;
  }
  const size_t wbytes = size_t(N * K), sbytes = size_t((N + 127) / 128 * kb) * 4;
  const size_t per_copy = size_t(touched) * size_t(nproj) * wbytes;
  const int copies = copies_beyond_l2(per_copy);
  DevBuf<uint8_t> dw(per_copy * size_t(copies)), xq(size_t(TK * K));
  DS_CUDA_CHECK(cudaMemset(dw.p, 0x38, dw.n));  // 1.0 in E4M3: the speed does not depend on the codes
  DS_CUDA_CHECK(cudaMemset(xq.p, 0x38, xq.n));
  DevBuf<float> ds(std::vector<float>(sbytes / 4, 1.f)), xs(std::vector<float>(size_t(TK * kb), 1.f));
  DevBuf<float> y0(size_t(TK * N)), y1(size_t(TK * N));
  DevBuf<int32_t> dgoff(goff), drows(a_rows);
  std::vector<ds::cuda::Fp8WeightDev> wb(size_t(copies) * E * nproj);
  for (int c = 0; c < copies; ++c)
    for (int e = 0; e < E; ++e)
      for (int p = 0; p < nproj; ++p) {
        const size_t m = size_t(c) * touched * nproj + size_t(std::max(slot[size_t(e)], 0)) * nproj + size_t(p);
        wb[(size_t(c) * E + size_t(e)) * nproj + size_t(p)] = {dw.p + m * wbytes, ds.p, N, K};
      }
  DevBuf<ds::cuda::Fp8WeightDev> dwb(wb);
  float* y[2] = {y0.p, y1.p};
  const bool gather = nproj == 2;  // gate/up gather token rows; down reads the grouped rows
  const double us = time_us(
      [&](cudaStream_t st, int c) {
        ds::cuda::gemm_fp8_grouped(xq.p, xs.p, gather ? drows.p : nullptr, TK, dgoff.p, E,
                                   dwb.p + size_t(c) * E * nproj, nproj, nproj, N, K, y, T, true, st);
      },
      copies);
  const int64_t arows = gather ? T : TK;
  const double bytes = double(touched) * nproj * double(wbytes + sbytes) + double(arows * K) +
                       double(arows * kb * 4) + double(TK * N * 4) * nproj;
  char shape[120];
  std::snprintf(shape, sizeof shape, "T=%ld top-%d/%d%s: %d experts x %d x %ld x %ld", long(T), topk, ER,
                shared ? " + shared" : "", touched, nproj, long(N), long(K));
  return {shape, us, bytes / (us * 1e-6) / 1e9, 2.0 * double(TK) * nproj * double(N) * double(K) / (us * 1e-6) / 1e12};
}

}  // namespace

int main(int argc, char** argv) try {
  const bool do_bench = !(argc > 1 && std::strcmp(argv[1], "--no-bench") == 0);
  // Tiny shapes: partial N tiles (N % 8 != 0, N % 64 != 0), partial row tiles, 1..9 K blocks
  // (uneven K groups), both kernels.
  uint64_t seed = 1;
  for (bool bf16 : {false, true}) {
    run_case("tiny", 1, 8, 128, bf16, seed++);
    run_case("tiny", 5, 20, 256, bf16, seed++);
    run_case("tiny", 16, 130, 640, bf16, seed++);
    run_case("tiny", 17, 72, 384, bf16, seed++);
    run_case("tiny", 33, 130, 1152, bf16, seed++);
    run_case("tiny", 100, 200, 2048, bf16, seed++);
    // Enough columns for the streaming kernel's 16-column warps (NT = 2), with a last warp whose
    // second 8-column tile is partial (8196 % 16 = 4); M = 3 and 9 use the <= 8-row and 16-row forms.
    run_case("ragged", 3, 8196, 1536, bf16, seed++);
    run_case("ragged", 9, 8196, 1536, bf16, seed++);
    grouped_case(bf16, seed++);
  }
  // Full DeepSeek-V3.2 widths: q_b; q_a + kv_a fused as the runner launches them (N = 1536 + 576,
  // one weight); kv_a alone (576 = kv_lora + rope); o; an expert's gate/up and down (the runner
  // launches the shared expert inside the routed experts' grouped launches, moe_experts'
  // shared_expert). `runner`: launched as such by the CUDA runner, so it counts for issue 8's M = 1
  // minimum (kv_a and the expert shapes alone are kept for comparison).
  struct Shape {
    const char* name;
    int64_t N, K;
    bool runner;
  };
  const Shape shapes[] = {{"q_b", 24576, 1536, true},         {"q_a+kv_a", 2112, 7168, true},
                          {"kv_a", 576, 7168, false},         {"o", 7168, 16384, true},
                          {"expert_gate", 2048, 7168, false}, {"expert_down", 7168, 2048, false}};
  for (const Shape& s : shapes)
    for (int64_t M : {1, 4, 16, 64, 512, 4096}) run_case(s.name, M, s.N, s.K, M == 16 || M == 512, seed++);
  bool threw = false;
  try {
    ds::cuda::Fp8WeightDev bad{reinterpret_cast<const uint8_t*>(16), reinterpret_cast<const float*>(16), 8, 100};
    ds::cuda::gemm_fp8(reinterpret_cast<const uint8_t*>(16), reinterpret_cast<const float*>(16), 1, bad,
                       reinterpret_cast<float*>(16), false, nullptr);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  check(threw, "K = 100 throws std::invalid_argument");
  if (do_bench) {
    const double ceiling = copy_gbps();
    std::printf("RESULT copy_d2d_GBps %.0f GB/s (1 GiB cudaMemcpyAsync, read + write bytes)\n", ceiling);
    std::printf("\n| gemm_fp8 M x N x K | time us | GB/s | of copy bw | TFLOP/s | of 1352 (cuBLASLt FP8) |\n"
                "|---|---|---|---|---|---|\n");
    double min_m1 = 1e9;
    std::string min_m1_shape;
    auto row = [&](const std::string& name, const Bench& b, bool counts) {
      std::printf("| %s %s | %.2f | %.0f | %.0f%% | %.1f | %.0f%% |\n", name.c_str(), b.shape.c_str(), b.us, b.gbps,
                  100 * b.gbps / ceiling, b.tflops, 100 * b.tflops / 1352);
      if (counts && b.gbps / ceiling < min_m1) {
        min_m1 = b.gbps / ceiling;
        min_m1_shape = name;
      }
    };
    for (const Shape& s : shapes)
      for (int64_t M : {1, 4, 8, 16, 64, 512, 4096})
        row(std::string(s.name) + (s.runner ? "" : " (not launched alone)"), bench(M, s.N, s.K), M == 1 && s.runner);
    // Routed experts at decode: one grouped launch for gate + up, one for down (moe_experts).
    // The runner fuses the shared expert into these launches (one more group of T rows).
    for (int64_t T : {1, 8}) {
      row("grouped gate+up", bench_grouped(T, 2, 2048, 7168, true), T == 1);
      row("grouped down", bench_grouped(T, 1, 7168, 2048, true), T == 1);
    }
    row("grouped gate+up, routed only", bench_grouped(1, 2, 2048, 7168, false), false);
    row("grouped down, routed only", bench_grouped(1, 1, 7168, 2048, false), false);
    std::printf("\n");
    // Issue 8's minimum (>= 50% of measured bandwidth at M = 1 on full-width shapes), over the
    // launches the runner really makes at one token (q_b, q_a+kv_a, o, the grouped experts with
    // the shared one at T = 1); reported, not a CHECK: a speed line must not turn the correctness table
    // red on a noisy machine.
    std::printf("PERF gemm_fp8 M=1 lowest fraction of copy bw over the runner's launches: %.0f%% (%s); issue 8 "
                "minimum 50%%: %s\n",
                100 * min_m1, min_m1_shape.c_str(), min_m1 >= 0.5 ? "met" : "NOT met");
  }
  std::printf("GEMM_FP8_ANY_M %s (%d failed checks)\n", g_fail ? "FAIL" : "PASS", g_fail);
  return g_fail ? 1 : 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "gpu_gemm_fp8_any_m: %s\n", e.what());
  return 2;
}
