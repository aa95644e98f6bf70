// GPU test + benchmark of ds::cuda::gemm_fp8_small_m against its CPU twin ds::cpu::gemm (exact
// mode, D23), run on the device machine by tests/gpu/run_all.sh (never by ctest).
//
// Correctness: normwise error ||y_gpu - y_cpu|| / ||y_cpu|| on fresh random FP8 weights, random
// positive block scales and random activations, at tiny shapes (edge blocks, N not a multiple of
// the row tile, the generic path for K % 16 != 0) and full DeepSeek-V3.2 widths; the output is
// poisoned with NaN before every launch, so an unwritten element fails. Tolerance 1e-5: both sides
// add the same FP32 products in different orders (GPU: 16-term chunks, lanes, warps; CPU: 16
// lanes then a tree); for random-sign data the difference is ~sqrt(log K)*eps ~ 1e-7, so 1e-5 has
// 100x margin, while one missing 16-element chunk or a wrong scale block gives > 1e-3.
// Batch invariance: row 0 of an M = 16 run must equal the M = 1 run bit for bit.
// Speed: bytes that must move (weights + scales + x + y) over the median time of CUDA-graph
// replays, weights rotated over enough copies to exceed 4x the L2; compared with a device-to-device
// copy measured in the same run. Gate: M = 1 at full widths >= 50% of the copy bandwidth.
//
// Usage: gpu_gemm_fp8 [--no-bench]. Prints CHECK/RESULT lines and a table; exit 0 iff all pass.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/numeric.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cuda_check.h"
#include "kernels/gemm_fp8_small_m.h"

namespace {

using ds::cuda::ActType;

int g_fail = 0;
void check(bool ok, const std::string& what) {
  std::printf("CHECK %-60s %s\n", what.c_str(), ok ? "PASS" : "FAIL");
  if (!ok) ++g_fail;
}

template <class T>
struct DevBuf {
  T* p = nullptr;
  explicit DevBuf(size_t n) { DS_CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(T))); }
  ~DevBuf() { cudaFree(p); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
};

struct HostProblem {
  int64_t M, N, K;
  ActType xt;
  std::vector<uint8_t> w;      // [N, K] E4M3
  std::vector<float> s;        // [ceil(N/128), ceil(K/128)]
  std::vector<float> x;        // [M, K] values (BF16-representable when xt == BF16)
  std::vector<uint16_t> xbf;   // [M, K] BF16 bits when xt == BF16
};

HostProblem make_problem(int64_t M, int64_t N, int64_t K, ActType xt, uint64_t seed) {
  HostProblem p{M, N, K, xt, {}, {}, {}, {}};
  std::mt19937_64 rng(seed);
  p.w.resize(size_t(N * K));
  for (auto& b : p.w) {
    uint8_t v = uint8_t(rng());
    if ((v & 0x7f) == 0x7f) v ^= 0x01;  // E4M3 NaN codes are not weights
    b = v;
  }
  std::uniform_real_distribution<float> us(0.5f, 2.0f);
  p.s.resize(size_t(((N + 127) / 128) * ((K + 127) / 128)));
  for (auto& v : p.s) v = us(rng) / 448.0f;
  std::uniform_real_distribution<float> ux(-1.0f, 1.0f);
  p.x.resize(size_t(M * K));
  p.xbf.resize(p.x.size());
  for (size_t i = 0; i < p.x.size(); ++i) {
    float v = ux(rng);
    if (xt == ActType::BF16) {
      p.xbf[i] = ds::f32_to_bf16(v);
      v = ds::bf16_to_f32(p.xbf[i]);
    }
    p.x[i] = v;
  }
  return p;
}

double normwise(const std::vector<float>& a, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    double d = double(a[i]) - ref[i];
    num += d * d;
    den += double(ref[i]) * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

// Runs the GPU kernel on `rows` rows of x (starting at row 0) and returns y[rows, N].
std::vector<float> run_gpu(const HostProblem& p, int64_t rows, bool bf16_out) {
  DevBuf<uint8_t> w(p.w.size());
  DevBuf<float> s(p.s.size()), y(size_t(rows * p.N));
  const size_t xbytes = size_t(rows * p.K) * (p.xt == ActType::BF16 ? 2 : 4);
  DevBuf<uint8_t> x(xbytes);
  DS_CUDA_CHECK(cudaMemcpy(w.p, p.w.data(), p.w.size(), cudaMemcpyHostToDevice));
  DS_CUDA_CHECK(cudaMemcpy(s.p, p.s.data(), p.s.size() * 4, cudaMemcpyHostToDevice));
  const void* xs = p.xt == ActType::BF16 ? static_cast<const void*>(p.xbf.data()) : p.x.data();
  DS_CUDA_CHECK(cudaMemcpy(x.p, xs, xbytes, cudaMemcpyHostToDevice));
  DS_CUDA_CHECK(cudaMemset(y.p, 0xff, size_t(rows * p.N) * 4));  // poison: NaN
  ds::cuda::gemm_fp8_small_m(x.p, p.xt, rows, {w.p, s.p, p.N, p.K}, y.p, bf16_out, nullptr);
  DS_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<float> out(size_t(rows * p.N));
  DS_CUDA_CHECK(cudaMemcpy(out.data(), y.p, out.size() * 4, cudaMemcpyDeviceToHost));
  return out;
}

std::vector<float> run_cpu(const HostProblem& p, bool bf16_out) {
  ds::cpu::WeightView wv{ds::DType::F8_E4M3, p.N, p.K, p.w.data(), p.s.data()};
  std::vector<float> y(size_t(p.M * p.N));
  ds::cpu::GemmOptions opt;
  opt.bf16_output = bf16_out;
  ds::cpu::gemm(p.x.data(), p.M, wv, y.data(), opt);
  return y;
}

void correctness(int64_t M, int64_t N, int64_t K, ActType xt, bool bf16_out, uint64_t seed) {
  HostProblem p = make_problem(M, N, K, xt, seed);
  std::vector<float> ref = run_cpu(p, bf16_out);
  std::vector<float> got = run_gpu(p, M, bf16_out);
  double err = normwise(got, ref);
  // BF16 outputs: each side rounds its own FP32 sum; a sum that differs in the last FP32 bits can
  // round to the neighbouring BF16 value (2^-8 relative), rarely: 1e-3 normwise bounds that.
  const double tol = bf16_out ? 1e-3 : 1e-5;
  char name[160];
  std::snprintf(name, sizeof name, "gemm M=%ld N=%ld K=%ld x=%s%s err=%.2e tol=%.0e", long(M), long(N),
                long(K), xt == ActType::BF16 ? "bf16" : "f32", bf16_out ? " y=bf16" : "", err, tol);
  check(err <= tol, name);
  if (M > 1) {  // row 0 alone must give the same bits
    std::vector<float> one = run_gpu(p, 1, bf16_out);
    check(std::memcmp(one.data(), got.data(), size_t(N) * 4) == 0,
          "  row 0 bit-identical at M=1 and M=" + std::to_string(M));
  }
}

double median_graph_us(const std::vector<cudaGraphExec_t>& execs, int launches_per_graph, int reps) {
  cudaEvent_t a, b;
  DS_CUDA_CHECK(cudaEventCreate(&a));
  DS_CUDA_CHECK(cudaEventCreate(&b));
  for (auto g : execs) DS_CUDA_CHECK(cudaGraphLaunch(g, nullptr));
  std::vector<float> t;
  for (int i = 0; i < reps; ++i) {
    DS_CUDA_CHECK(cudaEventRecord(a));
    DS_CUDA_CHECK(cudaGraphLaunch(execs[i % execs.size()], nullptr));
    DS_CUDA_CHECK(cudaEventRecord(b));
    DS_CUDA_CHECK(cudaEventSynchronize(b));
    float ms;
    DS_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms * 1000.0f / launches_per_graph);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

double copy_gbps() {
  const size_t bytes = 1ull << 30;
  DevBuf<uint8_t> a(bytes), b(bytes);
  DS_CUDA_CHECK(cudaMemset(a.p, 0x5a, bytes));
  cudaEvent_t e0, e1;
  DS_CUDA_CHECK(cudaEventCreate(&e0));
  DS_CUDA_CHECK(cudaEventCreate(&e1));
  std::vector<float> t;
  for (int i = 0; i < 12; ++i) {
    DS_CUDA_CHECK(cudaEventRecord(e0));
    DS_CUDA_CHECK(cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice));
    DS_CUDA_CHECK(cudaEventRecord(e1));
    DS_CUDA_CHECK(cudaEventSynchronize(e1));
    float ms;
    DS_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
    if (i >= 2) t.push_back(ms);
  }
  std::sort(t.begin(), t.end());
  return 2.0 * bytes / (t[t.size() / 2] * 1e-3) / 1e9;
}

struct BenchRow {
  long M, N, K;
  double us, gbps, frac;
};

BenchRow bench(int64_t M, int64_t N, int64_t K, double ceiling) {
  const size_t wbytes = size_t(N * K), sbytes = size_t(((N + 127) / 128) * ((K + 127) / 128)) * 4;
  int device = 0, l2 = 0;
  DS_CUDA_CHECK(cudaGetDevice(&device));
  DS_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device));
  const int copies = int(std::max<size_t>(2, (size_t(4) * l2 + wbytes - 1) / wbytes));
  DevBuf<uint8_t> w(wbytes * copies);
  DevBuf<float> s(sbytes / 4 * copies), y(size_t(M * N));
  DevBuf<uint16_t> x(size_t(M * K));
  // Random bytes (not zeros, METHOD.md): copy one host pattern into every copy.
  HostProblem p = make_problem(M, std::min<int64_t>(N, 256), K, ActType::BF16, 99);
  for (int c = 0; c < copies; ++c)
    for (int64_t r = 0; r < N; r += 256)
      DS_CUDA_CHECK(cudaMemcpy(w.p + c * wbytes + r * K, p.w.data(), size_t(std::min<int64_t>(256, N - r) * K),
                               cudaMemcpyHostToDevice));
  std::vector<float> hs(sbytes / 4 * copies, 1.0f / 448);
  DS_CUDA_CHECK(cudaMemcpy(s.p, hs.data(), hs.size() * 4, cudaMemcpyHostToDevice));
  DS_CUDA_CHECK(cudaMemcpy(x.p, p.xbf.data(), size_t(M * K) * 2, cudaMemcpyHostToDevice));

  cudaStream_t st;
  DS_CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  const int per_graph = 20;
  std::vector<cudaGraphExec_t> execs;
  for (int g = 0; g < 2; ++g) {
    cudaGraph_t graph;
    DS_CUDA_CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
    for (int i = 0; i < per_graph; ++i) {
      const int c = (g * per_graph + i) % copies;
      ds::cuda::gemm_fp8_small_m(x.p, ActType::BF16, M,
                                 {w.p + c * wbytes, s.p + c * (sbytes / 4), N, K}, y.p, false, st);
    }
    DS_CUDA_CHECK(cudaStreamEndCapture(st, &graph));
    cudaGraphExec_t ex;
    DS_CUDA_CHECK(cudaGraphInstantiate(&ex, graph, 0));
    DS_CUDA_CHECK(cudaGraphDestroy(graph));
    execs.push_back(ex);
  }
  const double us = median_graph_us(execs, per_graph, 30);
  for (auto e : execs) cudaGraphExecDestroy(e);
  cudaStreamDestroy(st);
  const double bytes = double(wbytes + sbytes) + double(M * K) * 2 + double(M * N) * 4;
  const double gbps = bytes / (us * 1e-6) / 1e9;
  return {long(M), long(N), long(K), us, gbps, gbps / ceiling};
}

}  // namespace

int main(int argc, char** argv) try {
  const bool do_bench = !(argc > 1 && std::strcmp(argv[1], "--no-bench") == 0);
  // Tiny shapes: partial scale blocks in N and K, N not a multiple of the 4-row tile, M tiles
  // 1/2/4/8/16 with unused rows, the generic path (K % 16 != 0), BF16 outputs.
  correctness(1, 64, 128, ActType::F32, false, 1);
  correctness(3, 200, 272, ActType::BF16, false, 2);
  correctness(2, 130, 384, ActType::F32, false, 3);
  correctness(5, 257, 640, ActType::BF16, false, 4);
  correctness(16, 131, 1040, ActType::F32, false, 5);
  correctness(11, 72, 200, ActType::BF16, false, 6);   // generic path
  correctness(7, 300, 512, ActType::F32, true, 7);
  correctness(2, 37, 4224, ActType::BF16, false, 8);   // 8 warps along K, 37 rows
  correctness(9, 45, 1536, ActType::F32, false, 9);    // 1 warp along K, 32-row blocks, partial
  // Full DeepSeek-V3.2 widths: o_proj, fused q_a/kv_a, dense gate/up, q_b.
  correctness(1, 7168, 16384, ActType::BF16, false, 11);
  correctness(16, 2112, 7168, ActType::BF16, false, 12);
  correctness(7, 18432, 7168, ActType::F32, false, 13);
  correctness(4, 24576, 1536, ActType::BF16, false, 14);
  bool bad_m_throws = false;
  try {
    ds::cuda::gemm_fp8_small_m(nullptr, ActType::F32, 17, {}, nullptr, false, nullptr);
  } catch (const std::invalid_argument&) {
    bad_m_throws = true;
  }
  check(bad_m_throws, "M = 17 throws std::invalid_argument");

  if (do_bench) {
    const double ceiling = copy_gbps();
    std::printf("RESULT copy_d2d_GBps %.0f GB/s (1 GiB cudaMemcpyAsync, read + write bytes)\n", ceiling);
    std::vector<BenchRow> rows;
    const int64_t shapes[][2] = {{7168, 16384}, {2112, 7168}, {18432, 7168}, {24576, 1536}, {7168, 18432}};
    for (auto& sh : shapes)
      for (int64_t M : {1, 4, 8, 16}) rows.push_back(bench(M, sh[0], sh[1], ceiling));
    std::printf("\n| M | N | K | time us | GB/s | of copy bw |\n|---|---|---|---|---|---|\n");
    for (auto& r : rows)
      std::printf("| %ld | %ld | %ld | %.2f | %.0f | %.0f%% |\n", r.M, r.N, r.K, r.us, r.gbps, 100 * r.frac);
    std::printf("\n");
    for (auto& r : rows)
      if (r.M == 1) {
        char name[120];
        std::snprintf(name, sizeof name, "M=1 N=%ld K=%ld reaches >= 50%% of copy bandwidth (%.0f%%)", r.N, r.K,
                      100 * r.frac);
        check(r.frac >= 0.5, name);
      }
  }
  std::printf("GEMM_FP8 %s (%d failed checks)\n", g_fail ? "FAIL" : "PASS", g_fail);
  return g_fail ? 1 : 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "gpu_gemm_fp8: %s\n", e.what());
  return 2;
}
