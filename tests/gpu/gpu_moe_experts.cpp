// GPU test + benchmark of ds::cuda::moe_experts (routed experts of one MoE layer, spec/model.md
// 6.7, official numerics) against a CPU twin composed like src/model/moe.cpp: per expert, the rows
// routed to it through ds::cpu::gemm with GemmOptions{true, true} for gate, up and down,
// h = bf16(g / (1 + exp(-g)) * u) in FP32, then out[t] = sum over ascending k of y_tk * wts[t, k]
// (F32, not rounded). Run on the device machine by tests/gpu/run_all.sh (never by ctest).
//
// Inputs: random FP8 expert weights with random block scales, BF16-valued activations, K distinct
// ascending expert ids per token (uniform, or skewed: every token on the same K experts, so one
// group spans many row tiles) and positive weights. At large T the twin runs on sampled tokens.
// Tolerance (derived before the run): normwise <= 2e-2 on out. The GPU's per-block FP8 sums differ
// from the twin's by the tensor-core accumulation (~3e-4 relative, see gpu_gemm_fp8_any_m) and its
// expf by <= 2 ulp, so a fraction p ~ 10% of the BF16 roundings of g and u (and then h, y_tk) flip
// by one ulp (<= 2^-7 relative): ~sqrt(p) * 2^-7 ~ 2.5e-3 per stage. The FP8 requantization of h
// amplifies a flip: it moves h's FP8 code by one step (~2^-3.5 relative) with probability ~ BF16
// ulp / FP8 ulp ~ 1/20, giving ~sqrt(0.1 / 20) * 0.09 ~ 6e-3 on h, carried linearly through down.
// Sum ~1e-2 worst; 2e-2 keeps margin while a routing or grouping bug (a wrong token, expert or
// weight) gives O(0.1..1).
// Batch invariance (D27): out rows of a T-token run equal the T = 1 run of the same token bit for
// bit (T = 1 uses the streaming GEMM kernel, T > 16 the tiled one).
// Shared expert (moe_experts' shared_expert: experts [0, E-1) routed, entry E-1 the shared one, run in
// the same grouped launches): out equals, bit for bit, the routed-only run plus (one F32 add, as
// moe.cpp's `y += shared`) the shared expert run alone as the only expert of every token with
// weight 1 (each grouped row is bit-identical to its row alone, so the fusion changes no bit).
// Speed: T <= 16 in GB/s of the touched expert weights (distinct experts x 3 matrices) per launch,
// with 8 routings rotated so the experts are not L2-resident; T >= 64 in TFLOP/s (2 * T*K * 3*I*D).
//
// Usage: gpu_moe_experts [--no-bench]. Prints CHECK/RESULT lines and a table; exit 0 iff all pass.
#include <cuda_runtime.h>

#include <cstring>
#include <random>
#include <set>

#include "common/numeric.h"
#include "gpu_test_util.h"
#include "kernels/act_quant.h"
#include "kernels/cpu/gemm.h"
#include "kernels/moe_experts.h"

#pragma GCC optimize("fp-contract=off")  // the twin's combine is a multiply then an add, like the kernel

namespace {

using namespace ds::gputest;

// E experts' FP8 weights on host and device: gate/up [E][I][D], down [E][D][I], scales per matrix.
struct Experts {
  int E;
  int64_t D, I;
  std::vector<uint8_t> w[3];
  std::vector<float> s[3];
  uint8_t* dw[3] = {nullptr, nullptr, nullptr};
  float* ds[3] = {nullptr, nullptr, nullptr};
  ds::cuda::ExpertDev* dexp = nullptr;
  int64_t rows(int p) const { return p == 2 ? D : I; }
  int64_t cols(int p) const { return p == 2 ? I : D; }
  size_t mat_bytes() const { return size_t(D * I); }
  size_t scale_count(int p) const { return size_t((rows(p) + 127) / 128 * (cols(p) / 128)); }
  ds::cpu::WeightView view(int e, int p) const {
    return {ds::DType::F8_E4M3, rows(p), cols(p), w[p].data() + size_t(e) * mat_bytes(),
            s[p].data() + size_t(e) * scale_count(p)};
  }
  Experts(int E_, int64_t D_, int64_t I_, uint64_t seed) : E(E_), D(D_), I(I_) {
    uint64_t st = seed * 0x9E3779B97F4A7C15ull + 7;
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> u(1.f, 2.f);
    std::uniform_int_distribution<int> ex(-9, -6);
    for (int p = 0; p < 3; ++p) {
      w[p].resize(size_t(E) * mat_bytes());
      for (size_t i = 0; i < w[p].size(); i += 8) {  // xorshift64, 8 codes per step (11 GB at full size)
        st ^= st << 13;
        st ^= st >> 7;
        st ^= st << 17;
        for (int j = 0; j < 8 && i + j < w[p].size(); ++j) {
          uint8_t b = uint8_t(st >> (8 * j));
          if ((b & 0x7f) == 0x7f) b = uint8_t(b - 1);  // no NaN codes
          w[p][i + j] = b;
        }
      }
      s[p].resize(size_t(E) * scale_count(p));
      for (auto& v : s[p]) v = std::ldexp(u(rng), ex(rng));
      DS_CUDA_CHECK(cudaMalloc(&dw[p], w[p].size()));
      DS_CUDA_CHECK(cudaMemcpy(dw[p], w[p].data(), w[p].size(), cudaMemcpyHostToDevice));
      DS_CUDA_CHECK(cudaMalloc(&ds[p], s[p].size() * 4));
      DS_CUDA_CHECK(cudaMemcpy(ds[p], s[p].data(), s[p].size() * 4, cudaMemcpyHostToDevice));
    }
    std::vector<ds::cuda::ExpertDev> h(static_cast<size_t>(E));
    for (int e = 0; e < E; ++e) {
      ds::cuda::Fp8WeightDev* m[3] = {&h[size_t(e)].gate, &h[size_t(e)].up, &h[size_t(e)].down};
      for (int p = 0; p < 3; ++p)
        *m[p] = {dw[p] + size_t(e) * mat_bytes(), ds[p] + size_t(e) * scale_count(p), rows(p), cols(p)};
    }
    DS_CUDA_CHECK(cudaMalloc(&dexp, sizeof(ds::cuda::ExpertDev) * size_t(E)));
    DS_CUDA_CHECK(cudaMemcpy(dexp, h.data(), sizeof(ds::cuda::ExpertDev) * size_t(E), cudaMemcpyHostToDevice));
  }
  ~Experts() {
    for (int p = 0; p < 3; ++p) {
      cudaFree(dw[p]);
      cudaFree(ds[p]);
    }
    cudaFree(dexp);
  }
  Experts(const Experts&) = delete;
  Experts& operator=(const Experts&) = delete;
};

// K distinct ascending ids per token (skewed: experts 0..K-1 for everyone) and positive weights.
void make_routing(int64_t T, int K, int E, bool skewed, std::mt19937_64& rng, std::vector<int32_t>& ids,
                  std::vector<float>& wts) {
  ids.resize(size_t(T * K));
  wts.resize(size_t(T * K));
  std::uniform_int_distribution<int> pick(0, E - 1);
  std::uniform_real_distribution<float> wd(0.05f, 0.6f);
  for (int64_t t = 0; t < T; ++t) {
    std::set<int> s;
    while (int(s.size()) < K) s.insert(skewed ? int(s.size()) : pick(rng));
    int k = 0;
    for (int e : s) {
      ids[size_t(t * K + k)] = e;
      wts[size_t(t * K + k)] = wd(rng);
      ++k;
    }
  }
}

// The CPU twin on the listed tokens: out_ref[i, :] for token toks[i].
std::vector<float> twin(const Experts& X, const std::vector<float>& x, const std::vector<int32_t>& ids,
                        const std::vector<float>& wts, int K, const std::vector<int64_t>& toks) {
  const int64_t D = X.D, I = X.I, S = int64_t(toks.size());
  std::vector<float> ye(size_t(S * K * D));
  for (int e = 0; e < X.E; ++e) {
    std::vector<int64_t> slots;  // i * K + k
    for (int64_t i = 0; i < S; ++i)
      for (int k = 0; k < K; ++k)
        if (ids[size_t(toks[size_t(i)] * K + k)] == e) slots.push_back(i * K + k);
    if (slots.empty()) continue;
    const int64_t n = int64_t(slots.size());
    std::vector<float> xe(size_t(n * D)), g(size_t(n * I)), u(size_t(n * I)), y(size_t(n * D));
    for (int64_t j = 0; j < n; ++j)
      std::memcpy(&xe[size_t(j * D)], &x[size_t(toks[size_t(slots[j] / K)] * D)], size_t(D) * 4);
    ds::cpu::gemm(xe.data(), n, X.view(e, 0), g.data(), ds::cpu::GemmOptions{true, true});
    ds::cpu::gemm(xe.data(), n, X.view(e, 1), u.data(), ds::cpu::GemmOptions{true, true});
    for (size_t i = 0; i < g.size(); ++i) {
      const float z = g[i];
      g[i] = ds::round_bf16(z / (1.0f + std::exp(-z)) * u[i]);
    }
    ds::cpu::gemm(g.data(), n, X.view(e, 2), y.data(), ds::cpu::GemmOptions{true, true});
    for (int64_t j = 0; j < n; ++j) std::memcpy(&ye[size_t(slots[j] * D)], &y[size_t(j * D)], size_t(D) * 4);
  }
  std::vector<float> out(size_t(S * D));
  for (int64_t i = 0; i < S; ++i)
    for (int64_t d = 0; d < D; ++d) {
      float acc = 0.f;
      for (int k = 0; k < K; ++k) {
        const float p = ye[size_t((i * K + k) * D + d)] * wts[size_t(toks[size_t(i)] * K + k)];
        acc = acc + p;
      }
      out[size_t(i * D + d)] = acc;
    }
  return out;
}

// Runs moe_experts on device buffers (E routed experts, default all of X; shared: X's entry E is the
// shared expert); returns out [T, D].
std::vector<float> run_gpu(const Experts& X, const float* dx, int64_t T, const int32_t* dids, const float* dwts,
                           int K, int E = -1, bool shared = false) {
  if (E < 0) E = X.E;
  const size_t wsb = ds::cuda::moe_workspace_bytes(T, K, X.D, X.I, shared);
  DevBuf<uint8_t> ws(wsb);
  DevBuf<float> out(size_t(T * X.D));
  ws.poison();
  out.poison();
  ds::cuda::moe_experts(dx, T, dids, dwts, K, X.dexp, E, X.D, X.I, out.p, ws.p, wsb, nullptr, shared);
  DS_CUDA_CHECK(cudaDeviceSynchronize());
  return out.download();
}

void run_case(const char* name, const Experts& X, int64_t T, int K, bool skewed, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int64_t D = X.D;
  std::vector<float> x(size_t(T * D));
  std::normal_distribution<float> nd(0.f, 1.f);
  for (auto& v : x) v = ds::round_bf16(nd(rng));
  std::vector<int32_t> ids;
  std::vector<float> wts;
  make_routing(T, K, X.E, skewed, rng, ids, wts);
  DevBuf<float> dx(x), dwts(wts);
  DevBuf<int32_t> dids(ids);
  const std::vector<float> gout = run_gpu(X, dx.p, T, dids.p, dwts.p, K);
  const std::vector<float> gout2 = run_gpu(X, dx.p, T, dids.p, dwts.p, K);
  std::vector<int64_t> toks;
  if (T <= 16) {
    for (int64_t t = 0; t < T; ++t) toks.push_back(t);
  } else {
    for (int i = 0; i < 12; ++i) toks.push_back((T * i) / 12);
    toks.push_back(T - 1);
  }
  const std::vector<float> ref = twin(X, x, ids, wts, K, toks);
  std::vector<float> got(ref.size());
  for (size_t i = 0; i < toks.size(); ++i)
    std::memcpy(&got[i * size_t(D)], &gout[size_t(toks[i] * D)], size_t(D) * 4);
  const double err = normwise(got, ref);
  char what[240];
  std::snprintf(what, sizeof what, "%s T=%ld E=%d K=%d D=%ld I=%ld%s: normwise %.2e <= 2e-2 (%zu tokens)", name,
                long(T), X.E, K, long(D), long(X.I), skewed ? " skewed" : "", err, toks.size());
  check(err <= 2e-2, what);
  std::printf("RESULT moe_experts %s T=%ld%s normwise %.3e\n", name, long(T), skewed ? " skewed" : "", err);
  check(std::memcmp(gout.data(), gout2.data(), gout.size() * 4) == 0,
        std::string(name) + " T=" + std::to_string(T) + ": two runs bit-identical");
  if (T > 1) {
    bool same = true;
    for (int64_t t : {toks.front(), toks[toks.size() / 2], toks.back()}) {
      const std::vector<float> o1 = run_gpu(X, dx.p + t * D, 1, dids.p + t * K, dwts.p + t * K, K);
      same = same && std::memcmp(o1.data(), &gout[size_t(t * D)], size_t(D) * 4) == 0;
    }
    check(same, std::string(name) + " T=" + std::to_string(T) + ": tokens equal their T=1 runs bit for bit");
  }
  if (X.E > K + 1) {  // shared expert fused: experts [0, E-1) routed, E-1 shared
    std::vector<int32_t> ids2, sid(size_t(T), X.E - 1);
    std::vector<float> wts2, one(size_t(T), 1.f);
    make_routing(T, K, X.E - 1, skewed, rng, ids2, wts2);
    DevBuf<int32_t> dids2(ids2), dsid(sid);
    DevBuf<float> dwts2(wts2), done(one);
    const std::vector<float> fused = run_gpu(X, dx.p, T, dids2.p, dwts2.p, K, X.E - 1, true);
    const std::vector<float> routed = run_gpu(X, dx.p, T, dids2.p, dwts2.p, K, X.E - 1, false);
    const std::vector<float> alone = run_gpu(X, dx.p, T, dsid.p, done.p, 1, X.E, false);
    int64_t diff = 0;
    for (size_t i = 0; i < fused.size(); ++i) diff += !(fused[i] == routed[i] + alone[i]);
    check(diff == 0, std::string(name) + " T=" + std::to_string(T) + ": shared expert fused == routed + shared alone (" +
                         std::to_string(diff) + " of " + std::to_string(fused.size()) + " differ)");
  }
}

void bench_row(const Experts& X, int64_t T, int K, double ceiling) {
  const int copies = 8;
  std::mt19937_64 rng(1234 + T);
  std::vector<int32_t> ids_all, ids;
  std::vector<float> wts_all, wts;
  size_t touched = 0;
  for (int c = 0; c < copies; ++c) {
    make_routing(T, K, X.E, false, rng, ids, wts);
    touched += std::set<int32_t>(ids.begin(), ids.end()).size();
    ids_all.insert(ids_all.end(), ids.begin(), ids.end());
    wts_all.insert(wts_all.end(), wts.begin(), wts.end());
  }
  DevBuf<int32_t> dids(ids_all);
  DevBuf<float> dwts(wts_all), x(size_t(T * X.D)), out(size_t(T * X.D));
  DS_CUDA_CHECK(cudaMemset(x.p, 0, size_t(T * X.D) * 4));
  const size_t wsb = ds::cuda::moe_workspace_bytes(T, K, X.D, X.I);
  DevBuf<uint8_t> ws(wsb);
  const double us = time_us(
      [&](cudaStream_t st, int c) {
        ds::cuda::moe_experts(x.p, T, dids.p + size_t(c) * T * K, dwts.p + size_t(c) * T * K, K, X.dexp, X.E, X.D,
                              X.I, out.p, ws.p, wsb, st);
      },
      copies);
  const double wbytes = double(touched) / copies * 3.0 * double(X.mat_bytes());
  const double gbps = wbytes / (us * 1e-6) / 1e9;
  const double tf = 2.0 * double(T * K) * 3.0 * double(X.D * X.I) / (us * 1e-6) / 1e12;
  std::printf("| T=%ld E=%d top-%d D=%ld I=%ld | %.1f | %.1f | %.0f | %.0f%% | %.1f |\n", long(T), X.E, K, long(X.D),
              long(X.I), us, double(touched) / copies, gbps, 100 * gbps / ceiling, tf);
}

}  // namespace

int main(int argc, char** argv) try {
  const bool do_bench = !(argc > 1 && std::strcmp(argv[1], "--no-bench") == 0);
  uint64_t seed = 1;
  {
    const Experts tiny(8, 256, 128, 101);
    run_case("tiny", tiny, 1, 2, false, seed++);
    run_case("tiny", tiny, 5, 2, false, seed++);
    run_case("tiny", tiny, 40, 3, false, seed++);
    run_case("tiny", tiny, 100, 2, true, seed++);
    const Experts tiny2(16, 384, 256, 102);
    run_case("tiny2", tiny2, 3, 4, false, seed++);
    run_case("tiny2", tiny2, 70, 4, false, seed++);
  }
  // Full DeepSeek-V3.2 widths: hidden 7168, moe_inter 2048, 256 experts, top-8.
  const Experts full(256, 7168, 2048, 103);
  for (int64_t T : {1, 4, 16, 64, 512}) run_case("full", full, T, 8, false, seed++);
  run_case("full", full, 200, 8, true, seed++);
  bool threw = false;
  try {
    ds::cuda::moe_experts(nullptr, 1, nullptr, nullptr, 8, nullptr, 256, 7168, 2048, nullptr, nullptr, 0, nullptr);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  check(threw, "null pointers throw std::invalid_argument");
  if (do_bench) {
    const double ceiling = copy_gbps();
    std::printf("RESULT copy_d2d_GBps %.0f GB/s (1 GiB cudaMemcpyAsync, read + write bytes)\n", ceiling);
    std::printf("\n| moe_experts shape | time us | experts touched | GB/s of touched weights | of copy bw | TFLOP/s |\n"
                "|---|---|---|---|---|---|\n");
    for (int64_t T : {1, 4, 16, 64, 512, 4096}) bench_row(full, T, 8, ceiling);
    std::printf("\n");
  }
  std::printf("MOE_EXPERTS %s (%d failed checks)\n", g_fail ? "FAIL" : "PASS", g_fail);
  return g_fail ? 1 : 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "gpu_moe_experts: %s\n", e.what());
  return 2;
}
