// GPU test + benchmark of the lightning-indexer logits and top-k (src/kernels/indexer.h) and the
// indexer-key cache store (src/kernels/mla_cache.h) against their CPU twins ds::cpu::index_scores
// / ds::cpu::topk_indices driven as in src/model/indexer.cpp (spec/model.md 5.2 step 10, 5.3),
// run on the device machine by tests/gpu/run_all.sh.
//
// Checks and tolerances (reasons):
// - index_cache_store: bytes and scales equal, slot -1 writes nothing (pure copies).
// - Logits (rows with n_keys > topk), FP32 path: normwise <= 1e-5 per case vs the twin. E4M3 x E4M3
//   products are exact in FP32; the 128-term dots and the 64-term head sum are FP32 in a different
//   order, ~1e-7 relative. A wrong key, page mapping, head weight or ReLU gives > 1e-2.
// - Tensor-core path (default at Hi 64, Di 128): normwise <= 1e-3. Products are still exact, but
//   Hopper's FP8 MMA accumulates with reduced precision (about 14 bits, DeepSeek-V3 report 3.3.2):
//   ~6e-5 relative per dot, amplified by the signed head sum (~8x). The top-k boundary band below
//   uses the same 1e-3.
// - Top-k, exact: idx equals the slots of ds::cpu::topk_indices applied to the GPU's own logits
//   (ties -> lower position, ascending), -1 past min(n, topk). This isolates the selection from
//   the logits' rounding.
// - Top-k vs the twin's own logits: every position in the symmetric difference of the two sets has
//   a twin logit within tol * max|logit| of the twin's k-th largest (boundary swaps caused by
//   rounding only; spec 5.3 expects a few).
// - Exact ties (keys drawn from 5 distinct vectors, so most logits tie bit for bit on both sides):
//   the selection equals the twin's exactly (lower positions win).
// - Rows with n_keys <= topk (incl. 0): all their slots in position order, then -1.
// - Signed zeros and all-equal scores (zero_ties_case, both logits paths): zero queries (every
//   score +-0), negative key scales (scores -0 next to +0), fewer positive scores than topk (the
//   rest filled from the +-0 tie by lowest position) and all-equal positive scores: the slots must
//   be exactly those of ds::cpu::topk_indices (ties -> lower position, -0 == +0); the FP32 path's
//   scores must equal the twin's bit for bit.
// - FP32 path, every case: logits bit-identical to the twin (same summation order and rounding
//   points, indexer.cu), checked as normwise 0.
// Shapes: tiny (Hi 4, Di 32, page 4, topk 8), full width (Hi 64, Di 128, page 64, topk 2048) at
// context 4k and 32k with decode batch 1/8/64 and a prefill chunk of 1024 rows (twin on every 16th).
// Speed: time per call, scored keys/s and the key bytes (132 B per key per row) in GB/s.
//
// Usage: gpu_indexer [--no-bench]. Prints CHECK/RESULT lines and a table; exit 0 iff all pass.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <set>

#include "common/numeric.h"
#include "gpu_test_util.h"
#include "kernels/cpu/act_quant.h"
#include "kernels/cpu/index_score.h"
#include "kernels/cpu/parallel.h"
#include "kernels/indexer.h"
#include "kernels/mla_cache.h"

namespace {

using namespace ds::gputest;

// FP8 quantization of one vector with a UE8M0 scale (act_quant's rule, any length).
float quantize(const float* x, int n, uint8_t* q) {
  float amax = 0.f;
  for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float s = ds::cpu::ue8m0_scale(amax);
  for (int i = 0; i < n; ++i) q[i] = ds::f32_to_fp8_e4m3(std::clamp(x[i] / s, -448.f, 448.f));
  return s;
}

struct IdxCase {
  std::string label;
  int Hi, Di, page_size, topk;
  std::vector<int32_t> n_keys;  // per row
  bool shared_table = false;    // all rows read one sequence (prefill chunk)
  bool ties = false;            // keys from 5 distinct vectors
  int cpu_every = 1;
};

struct IdxData {
  int64_t R, slots, max_pages, max_keys;
  std::vector<uint8_t> q, kbytes;
  std::vector<float> qf, w, kf, kscale;
  std::vector<int32_t> pages;
};

IdxData make_data(const IdxCase& c, std::mt19937_64& rng) {
  IdxData d;
  d.R = int64_t(c.n_keys.size());
  d.max_keys = std::max<int64_t>(1, *std::max_element(c.n_keys.begin(), c.n_keys.end()));
  d.max_pages = (d.max_keys + c.page_size - 1) / c.page_size;
  const int64_t pool = d.max_pages + 3;
  d.slots = pool * c.page_size;
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> x(size_t(c.Di));
  d.kbytes.resize(size_t(d.slots * c.Di));
  d.kf.resize(d.kbytes.size());
  d.kscale.resize(size_t(d.slots));
  std::vector<std::vector<float>> distinct(5, std::vector<float>(size_t(c.Di)));
  for (auto& v : distinct)
    for (auto& e : v) e = u(rng);
  for (int64_t s = 0; s < d.slots; ++s) {
    if (c.ties) x = distinct[size_t(rng() % 5)];
    else for (auto& e : x) e = u(rng) * (1.f + 3.f * float(rng() % 4));
    d.kscale[size_t(s)] = quantize(x.data(), c.Di, d.kbytes.data() + s * c.Di);
  }
  for (size_t i = 0; i < d.kbytes.size(); ++i) d.kf[i] = ds::fp8_e4m3_to_f32(d.kbytes[i]);
  d.q.resize(size_t(d.R * c.Hi * c.Di));
  d.qf.resize(d.q.size());
  d.w.resize(size_t(d.R * c.Hi));
  const float cst = 1.0f / std::sqrt(float(c.Hi)) / std::sqrt(float(c.Di));
  for (int64_t r = 0; r < d.R; ++r)
    for (int h = 0; h < c.Hi; ++h) {
      for (auto& e : x) e = u(rng);
      const float qs = quantize(x.data(), c.Di, d.q.data() + (r * c.Hi + h) * c.Di);
      d.w[size_t(r * c.Hi + h)] = u(rng) * cst * qs;
    }
  for (size_t i = 0; i < d.q.size(); ++i) d.qf[i] = ds::fp8_e4m3_to_f32(d.q[i]);
  d.pages.resize(size_t(d.R * d.max_pages));
  std::vector<int32_t> perm(static_cast<size_t>(pool));
  std::iota(perm.begin(), perm.end(), 0);
  for (int64_t r = 0; r < d.R; ++r) {
    if (r == 0 || !c.shared_table) std::shuffle(perm.begin(), perm.end(), rng);
    std::copy_n(perm.begin(), d.max_pages, d.pages.begin() + r * d.max_pages);
  }
  return d;
}

int64_t slot_of(const IdxData& d, const IdxCase& c, int64_t r, int64_t p) {
  return int64_t(d.pages[size_t(r * d.max_pages + p / c.page_size)]) * c.page_size + p % c.page_size;
}

struct DevIdx {
  DevBuf<uint8_t> q, k;
  DevBuf<float> w, ks;
  DevBuf<int32_t> pages, n;
  ds::cuda::IndexerArgs a;
  DevIdx(const IdxData& d, const IdxCase& c)
      : q(d.q), k(d.kbytes), w(d.w), ks(d.kscale), pages(d.pages), n(c.n_keys) {
    a.q = q.p, a.w = w.p, a.R = d.R, a.Hi = c.Hi, a.Di = c.Di, a.kcache = k.p, a.kscale = ks.p, a.pages = pages.p;
    a.max_pages = int(d.max_pages), a.page_size = c.page_size, a.n_keys = n.p;
  }
};

void index_case(const IdxCase& c, uint64_t seed) {
  std::mt19937_64 rng(seed);
  IdxData d = make_data(c, rng);
  DevIdx dv(d, c);
  const size_t wsb = ds::cuda::indexer_workspace_bytes(d.R, d.max_keys);
  DevBuf<uint8_t> ws(wsb);
  DevBuf<int32_t> idx(size_t(d.R * c.topk));
  // Twin scores on the checked rows that need scoring.
  std::vector<int64_t> rows;
  for (int64_t r = 0; r < d.R; ++r)
    if (c.n_keys[size_t(r)] > c.topk && (r % c.cpu_every == 0 || r == d.R - 1)) rows.push_back(r);
  std::vector<std::vector<float>> ref(rows.size());
  ds::cpu::parallel_for(int64_t(rows.size()), [&](int64_t i) {
    const int64_t r = rows[size_t(i)], n = c.n_keys[size_t(r)];
    ref[size_t(i)].resize(size_t(n));
    for (int64_t p0 = 0; p0 < n; p0 += c.page_size) {  // page runs are contiguous slots
      const int64_t s = slot_of(d, c, r, p0), len = std::min<int64_t>(c.page_size, n - p0);
      ds::cpu::index_scores(d.qf.data() + r * c.Hi * c.Di, d.w.data() + r * c.Hi, c.Hi, c.Di, d.kf.data() + s * c.Di,
                            d.kscale.data() + s, len, ref[size_t(i)].data() + p0);
    }
  });
  const bool tc = c.Hi == 64 && c.Di == 128;
  for (int path = tc ? 0 : 1; path < 2; ++path) {  // 0: FP8 tensor cores (default at 64 x 128), 1: FP32
    const std::string label = c.label + (path == 0 ? " [tc]" : " [fp32]");
    const double tol = path == 0 ? 1e-3 : 0.0;  // FP32 path: bit-identical to the twin
    dv.a.fp32_logits = path == 1;
    idx.poison();
    ds::cuda::indexer_topk(dv.a, c.topk, d.max_keys, ws.p, wsb, idx.p, nullptr);
    DS_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<int32_t> gidx = idx.download();
    std::vector<float> gsc(size_t(d.R * d.max_keys));
    DS_CUDA_CHECK(cudaMemcpy(gsc.data(), ws.p, gsc.size() * 4, cudaMemcpyDeviceToHost));
    std::vector<float> all_ref, all_got;
    bool boundary_ok = true, ties_ok = true;
    int64_t swaps = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
      const int64_t r = rows[i], n = c.n_keys[size_t(r)];
      all_ref.insert(all_ref.end(), ref[i].begin(), ref[i].end());
      all_got.insert(all_got.end(), gsc.begin() + r * d.max_keys, gsc.begin() + r * d.max_keys + n);
      std::vector<int32_t> cpu_sel = ds::cpu::topk_indices(ref[i].data(), n, c.topk);
        std::set<int64_t> gslots(gidx.begin() + r * c.topk, gidx.begin() + (r + 1) * c.topk);
      std::vector<float> sorted = ref[i];
      std::nth_element(sorted.begin(), sorted.begin() + (c.topk - 1), sorted.end(), std::greater<float>());
      const float kth = sorted[size_t(c.topk - 1)];
      float amax = 0.f;
      for (float v : ref[i]) amax = std::max(amax, std::fabs(v));
      std::set<int64_t> cslots;
      for (int32_t p : cpu_sel) cslots.insert(slot_of(d, c, r, p));
      for (int64_t p = 0; p < n; ++p) {
        const int64_t s = slot_of(d, c, r, p);
        if (gslots.count(s) != cslots.count(s)) {
          ++swaps;
          if (std::fabs(ref[i][size_t(p)] - kth) > float(tol) * amax) boundary_ok = false;
        }
      }
      if (c.ties) ties_ok = ties_ok && gslots == cslots;
    }
    if (!rows.empty()) {
      const double e = normwise(all_got, all_ref);
      std::printf("RESULT indexer %s logits normwise %.3g, %lld boundary swaps vs twin (%zu rows)\n", label.c_str(), e,
                  (long long)swaps, rows.size());
      check(e <= tol, "indexer " + label + " logits vs twin normwise <= " + (path == 0 ? "1e-3" : "0 (bit-identical)"));
      check(boundary_ok, "indexer " + label + " top-k differs from twin only near the k-th logit");
      if (c.ties) check(ties_ok, "indexer " + label + " exact ties: same set as twin (lower positions)");
    }
    // Exact top-k of the GPU's own logits, every row (incl. all-causal rows).
    bool exact = true;
    for (int64_t r = 0; r < d.R; ++r) {
      const int64_t n = c.n_keys[size_t(r)];
      std::vector<int32_t> want;
      if (n > c.topk) {
        want = ds::cpu::topk_indices(gsc.data() + r * d.max_keys, n, c.topk);
      } else {
        want.resize(size_t(n));
        std::iota(want.begin(), want.end(), 0);
      }
      for (int k = 0; k < c.topk; ++k) {
        const int64_t e = k < int64_t(want.size()) ? slot_of(d, c, r, want[size_t(k)]) : -1;
        exact = exact && gidx[size_t(r * c.topk + k)] == e;
      }
    }
    check(exact, "indexer " + label + " idx == slots of topk(GPU logits), ascending, -1 padded");
  }
}

// Signed-zero and all-equal score ties (see the header). Rows read their own 10 pages of 4 slots:
// row 0: zero queries -> every score +-0; row 1: positions 30..34 score > 0, the rest +-0; row 2:
// every key equal -> every score equal and > 0. Key scales alternate +1 / -1 on the non-positive
// keys, so +0 and -0 scores interleave. Expected: slots of ds::cpu::topk_indices(twin scores).
void zero_ties_case(int Hi, int Di, int topk) {
  const int page = 4, np = 10, n = 40, R = 3;
  const int64_t slots = int64_t(R) * np * page;
  std::vector<uint8_t> kb(size_t(slots * Di)), qb(size_t(R * Hi * Di));
  std::vector<float> ks(static_cast<size_t>(slots)), w(size_t(R * Hi), 0.5f);
  const uint8_t one = ds::f32_to_fp8_e4m3(1.f), minus = ds::f32_to_fp8_e4m3(-1.f);
  std::vector<int32_t> pages(size_t(R * np));
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < np; ++j) pages[size_t(r * np + j)] = r * np + j;
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < Hi * Di; ++i) qb[size_t(r * Hi * Di + i)] = r == 0 ? 0 : one;
    for (int p = 0; p < n; ++p) {
      const int64_t s = int64_t(pages[size_t(r * np + p / page)]) * page + p % page;
      const bool pos = r == 2 || (r == 1 && p >= 30 && p < 35);
      for (int d = 0; d < Di; ++d) kb[size_t(s * Di + d)] = pos ? one : minus;
      ks[size_t(s)] = pos || p % 2 == 0 ? 1.f : -1.f;
    }
  }
  std::vector<float> kf(kb.size()), qf(qb.size());
  for (size_t i = 0; i < kb.size(); ++i) kf[i] = ds::fp8_e4m3_to_f32(kb[i]);
  for (size_t i = 0; i < qb.size(); ++i) qf[i] = ds::fp8_e4m3_to_f32(qb[i]);
  std::vector<int32_t> nk(size_t(R), n);
  DevBuf<uint8_t> dq(qb), dk(kb);
  DevBuf<float> dw(w), dks(ks);
  DevBuf<int32_t> dp(pages), dn(nk), idx(size_t(R * topk));
  const size_t wsb = ds::cuda::indexer_workspace_bytes(R, n);
  DevBuf<uint8_t> ws(wsb);
  ds::cuda::IndexerArgs a;
  a.q = dq.p, a.w = dw.p, a.R = R, a.Hi = Hi, a.Di = Di, a.kcache = dk.p, a.kscale = dks.p, a.pages = dp.p;
  a.max_pages = np, a.page_size = page, a.n_keys = dn.p;
  const bool tc = Hi == 64 && Di == 128;
  for (int path = tc ? 0 : 1; path < 2; ++path) {
    a.fp32_logits = path == 1;
    idx.poison();
    ds::cuda::indexer_topk(a, topk, n, ws.p, wsb, idx.p, nullptr);
    DS_CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<int32_t> g = idx.download();
    std::vector<float> gsc(size_t(R * n));
    DS_CUDA_CHECK(cudaMemcpy(gsc.data(), ws.p, gsc.size() * 4, cudaMemcpyDeviceToHost));
    bool sel_ok = true, bits_ok = true, zeros_seen = true;
    for (int r = 0; r < R; ++r) {
      std::vector<float> ref(static_cast<size_t>(n));
      for (int p0 = 0; p0 < n; p0 += page) {
        const int64_t s = int64_t(pages[size_t(r * np + p0 / page)]) * page;
        ds::cpu::index_scores(qf.data() + int64_t(r) * Hi * Di, w.data() + r * Hi, Hi, Di, kf.data() + s * Di,
                              ks.data() + s, page, ref.data() + p0);
      }
      if (r == 1) zeros_seen = zeros_seen && std::signbit(ref[1]) && !std::signbit(ref[0]) && ref[1] == 0.f;
      const std::vector<int32_t> want = ds::cpu::topk_indices(ref.data(), n, topk);
      for (int k = 0; k < topk; ++k) {
        const int32_t p = want[size_t(k)];
        sel_ok = sel_ok && g[size_t(r * topk + k)] == pages[size_t(r * np + p / page)] * page + p % page;
      }
      if (path == 1) bits_ok = bits_ok && std::memcmp(gsc.data() + r * n, ref.data(), size_t(n) * 4) == 0;
    }
    const std::string label = "indexer zero/equal ties Hi=" + std::to_string(Hi) + " Di=" + std::to_string(Di) +
                              (path == 0 ? " [tc]" : " [fp32]");
    check(zeros_seen, label + ": the twin scores hold +0 and -0 (the case is what it says)");
    check(sel_ok, label + ": +-0 and all-equal ties -> lowest positions, as topk_indices");
    if (path == 1) check(bits_ok, label + ": scores bit-identical to the twin (signs of zero included)");
  }
}

void store_check() {
  std::mt19937_64 rng(7);
  const int64_t R = 100, slots = 128;
  const int Di = 128;
  std::vector<uint8_t> kq(size_t(R * Di));
  for (auto& b : kq) b = uint8_t(rng() % 0x7f);
  std::vector<float> ks(static_cast<size_t>(R));
  for (auto& s : ks) s = std::ldexp(1.0f, int(rng() % 20) - 10);
  std::vector<int32_t> sl(static_cast<size_t>(R));
  std::vector<int32_t> perm(static_cast<size_t>(slots));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  std::copy_n(perm.begin(), R, sl.begin());
  sl[3] = -1;
  DevBuf<uint8_t> d_kq(kq), d_kc(size_t(slots * Di));
  DevBuf<float> d_ks(ks), d_sc(static_cast<size_t>(slots));
  DevBuf<int32_t> d_sl(sl);
  d_kc.poison();
  d_sc.poison();
  ds::cuda::index_cache_store(d_kq.p, d_ks.p, R, Di, d_sl.p, d_kc.p, d_sc.p, nullptr);
  DS_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<uint8_t> kc = d_kc.download();
  std::vector<float> sc = d_sc.download();
  bool ok = true, skip = true;
  for (int64_t r = 0; r < R; ++r) {
    if (sl[size_t(r)] < 0) continue;
    ok = ok && std::memcmp(kc.data() + int64_t(sl[size_t(r)]) * Di, kq.data() + r * Di, Di) == 0 &&
         sc[size_t(sl[size_t(r)])] == ks[size_t(r)];
  }
  for (int i = 0; i < Di; ++i) skip = skip && kc[size_t(int64_t(perm[3]) * Di + i)] == 0xff;
  check(ok, "index_cache_store bytes and scales equal");
  check(skip, "index_cache_store slot -1 writes nothing");
}

IdxCase full(const std::string& label, std::vector<int32_t> n, int every = 1, bool shared = false) {
  return IdxCase{label, 64, 128, 64, 2048, std::move(n), shared, false, every};
}

std::vector<int32_t> decode_n(int B, int ctx) {
  std::vector<int32_t> n(static_cast<size_t>(B));
  for (int b = 0; b < B; ++b) n[size_t(b)] = ctx - (b * 37) % 500;
  return n;
}

std::vector<int32_t> prefill_n(int rows, int ctx) {
  std::vector<int32_t> n(static_cast<size_t>(rows));
  for (int i = 0; i < rows; ++i) n[size_t(i)] = ctx - rows + 1 + i;
  return n;
}

void bench() {
  std::printf("\n| indexer case | time us | keys/s (G) | key GB/s (132 B/key/row) | TFLOP/s (2*64*128/key) |\n"
              "|---|---|---|---|---|\n");
  struct B { std::string name; std::vector<int32_t> n; bool shared; };
  std::vector<B> cases = {{"decode 1 row, ctx 32k", decode_n(1, 32768), false},
                          {"decode 8 rows, ctx 32k", decode_n(8, 32768), false},
                          {"decode 64 rows, ctx 32k", decode_n(64, 32768), false},
                          {"decode 64 rows, ctx 4k", decode_n(64, 4096), false},
                          {"prefill 1024 rows, ctx 4k", prefill_n(1024, 4096), true}};
  for (auto& b : cases) {
    IdxCase c = full(b.name, b.n, 1, b.shared);
    std::mt19937_64 rng(5);
    IdxData d = make_data(c, rng);
    DevIdx dv(d, c);
    const size_t wsb = ds::cuda::indexer_workspace_bytes(d.R, d.max_keys);
    DevBuf<uint8_t> ws(wsb);
    DevBuf<int32_t> idx(size_t(d.R * c.topk));
    double keys = 0;
    for (int32_t n : c.n_keys) keys += n;
    for (bool fp32 : {false, true}) {
      dv.a.fp32_logits = fp32;
      ds::cuda::indexer_topk(dv.a, c.topk, d.max_keys, ws.p, wsb, idx.p, nullptr);  // eager (smem attribute)
      DS_CUDA_CHECK(cudaDeviceSynchronize());
      const double us = time_us(
          [&](cudaStream_t st, int) { ds::cuda::indexer_topk(dv.a, c.topk, d.max_keys, ws.p, wsb, idx.p, st); }, 1);
      std::printf("| %s%s | %.1f | %.1f | %.0f | %.1f |\n", b.name.c_str(), fp32 ? " (fp32 path)" : " (tc)", us,
                  keys / us * 1e-3, keys * 132 / us * 1e-3, keys * 2 * 64 * 128 / us * 1e-6);
    }
  }
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  const bool no_bench = argc > 1 && std::strcmp(argv[1], "--no-bench") == 0;
  try {
    store_check();
    index_case({"tiny Hi=4 Di=32 page 4 topk 8", 4, 32, 4, 8, {0, 3, 8, 9, 17, 40}, false, false, 1}, 1);
    index_case({"tiny ties Hi=4 Di=32 page 4 topk 8", 4, 32, 4, 8, {9, 30, 64, 100}, false, true, 1}, 2);
    zero_ties_case(4, 32, 8);
    zero_ties_case(64, 128, 16);
    index_case({"ties Hi=64 Di=128 page 64 topk 2048", 64, 128, 64, 2048, {4096, 3000}, false, true, 1}, 3);
    index_case(full("ctx 4k decode 1", decode_n(1, 4096)), 10);
    index_case(full("ctx 4k decode 8 (+ rows at 2048/2049)", [] {
                 auto n = decode_n(8, 4096);
                 n[6] = 2048, n[7] = 2049;
                 return n;
               }()), 11);
    index_case(full("ctx 32k decode 8", decode_n(8, 32768)), 12);
    index_case(full("ctx 32k decode 64", decode_n(64, 32768), 4), 13);
    index_case(full("ctx 4k prefill 1024 rows", prefill_n(1024, 4096), 16, true), 14);
    if (!no_bench) bench();
  } catch (const std::exception& e) {
    std::printf("CHECK %-72s FAIL\nerror: %s\n", "exception", e.what());
    return 1;
  }
  std::printf("RESULT %s\n", g_fail ? "FAIL" : "PASS");
  return g_fail ? 1 : 0;
}
