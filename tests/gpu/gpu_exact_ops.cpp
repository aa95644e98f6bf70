// GPU test of the exact-numerics kernels (src/kernels/exact_ops.{h,cu}) and of indexer_topk_scored
// (src/kernels/indexer.h) against their CPU twins, at tiny-a and full DeepSeek-V3.2 shapes. Run on
// the device machine by tests/gpu/run_all.sh.
//
// Expected agreement, derived from the arithmetic before the run (u = 2^-24, FP32 unit roundoff):
//  - bit-identical: embed_gather_f32, scatter_rows_f32 / gather_rows_f32 (copies; a negative slot
//    writes nothing), the residual of add_rmsnorm_f32 (one IEEE add per element on both sides),
//    gemm_fp8_f32's rows against an M = 1 call of the same rows (batch invariance, D27);
//  - reassociation only (both sides FP32, different summation order and FMA contraction): a dot of
//    length K summed in two different orders differs by about u * sqrt(K) relative to the
//    result for inputs of random sign (rounding errors of ~sqrt(K) partial sums, each <= u times
//    a partial sum of size ~|result|, adding up as a random walk), and by at most ~K u in the
//    worst case (Higham 3.1). Bars, normwise ||gpu - cpu|| / ||cpu||: gemm_fp8_f32 (K <= 7168:
//    u sqrt(K) = 5e-6) 2e-5; add_rmsnorm_f32's output (one reassociated sum of n squares feeding a
//    sqrt: relative u sqrt(n) / 2 on every element) 1e-5; indexer scores (dots of Di <= 128, then
//    Hi <= 64 ReLU-weighted terms: u (sqrt(Di) + sqrt(Hi)) = 1.2e-6 per score) 1e-5; sparse MLA
//    attention (score dots of 576, expf within 2 ulp, softmax sums of <= 2048 terms, output sums
//    of <= 2048 terms: ~u (sqrt(576) * |logit| + sqrt(2048)) with |logit| <= ~10 -> ~2e-5) 1e-4;
//    moe_combine_f32 (K <= 8 products + 1 add, FMA vs separate rounding: ~2 u) 1e-6.
//  - top-k selections: equal to the CPU's wherever the CPU's boundary gap (k-th minus (k+1)-th
//    score) exceeds 1e-4 x the row's max |score| (far above the 1e-5 score bar); a row under that
//    gap is reported as a near tie, not failed.
// Outputs are poisoned first, so an unwritten element fails.
//
// Usage: gpu_exact_ops. Prints CHECK lines; exit 0 iff all pass.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>

#include "common/numeric.h"
#include "gpu_test_util.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/index_score.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/exact_ops.h"
#include "kernels/indexer.h"

namespace {

using namespace ds::gputest;

std::vector<float> rnd(size_t n, float lo, float hi, std::mt19937_64& g) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(g);
  return v;
}

bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3g", v);
  return b;
}

void test_gemm(int64_t M, int64_t N, int64_t K, std::mt19937_64& g) {
  std::vector<uint8_t> wq(size_t(N * K));
  for (auto& b : wq) b = ds::f32_to_fp8_e4m3(std::uniform_real_distribution<float>(-448, 448)(g));
  const int64_t sb = ((N + 127) / 128) * ((K + 127) / 128);
  std::vector<float> sc = rnd(size_t(sb), 1e-4f, 4e-3f, g), x = rnd(size_t(M * K), -2, 2, g);
  ds::cpu::WeightView wv{ds::DType::F8_E4M3, N, K, wq.data(), sc.data()};
  std::vector<float> ref(size_t(M * N));
  ds::cpu::gemm(x.data(), M, wv, ref.data(), ds::cpu::GemmOptions{false, false});
  DevBuf<uint8_t> dw(wq);
  DevBuf<float> dsc(sc), dx(x), dy(size_t(M * N)), d1{static_cast<size_t>(N)};
  dy.poison();
  const ds::cuda::Fp8WeightDev w{dw.p, dsc.p, N, K};
  ds::cuda::gemm_fp8_f32(dx.p, M, w, dy.p, nullptr);
  const std::vector<float> y = dy.download();
  const double e = normwise(y, ref);
  const std::string sh = std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K);
  check(e <= 2e-5, "gemm_fp8_f32 " + sh + " normwise " + fmt(e) + " <= 2e-5");
  bool inv = true;
  for (int64_t m = 0; m < M; m += std::max<int64_t>(1, M / 5)) {
    ds::cuda::gemm_fp8_f32(dx.p + m * K, 1, w, d1.p, nullptr);
    const std::vector<float> r1 = d1.download();
    inv = inv && std::memcmp(r1.data(), y.data() + m * N, size_t(N) * 4) == 0;
  }
  check(inv, "gemm_fp8_f32 " + sh + " rows bit-identical to M = 1 calls (batch invariance)");
}

void test_embed_rmsnorm(int64_t V, int64_t D, int64_t R, std::mt19937_64& g) {
  std::vector<uint16_t> tab(size_t(V * D));
  for (auto& t : tab) t = ds::f32_to_bf16(std::uniform_real_distribution<float>(-1, 1)(g));
  std::vector<int32_t> ids(static_cast<size_t>(R));
  for (auto& i : ids) i = int32_t(g() % uint64_t(V));
  DevBuf<uint16_t> dt(tab);
  DevBuf<int32_t> di(ids);
  DevBuf<float> out(size_t(R * D));
  out.poison();
  ds::cuda::embed_gather_f32(dt.p, true, di.p, R, D, out.p, nullptr);
  std::vector<float> ref(size_t(R * D));
  for (int64_t r = 0; r < R; ++r)
    for (int64_t d = 0; d < D; ++d) ref[size_t(r * D + d)] = ds::bf16_to_f32(tab[size_t(ids[size_t(r)] * D + d)]);
  const std::vector<float> emb = out.download();
  check(bit_equal(emb, ref), "embed_gather_f32 " + std::to_string(R) + "x" + std::to_string(D) + " bit-identical");
  // add_rmsnorm_f32: resid = embedding, f random; then again without f.
  std::vector<uint16_t> wb(static_cast<size_t>(D));
  std::vector<float> wf(static_cast<size_t>(D));
  for (int64_t i = 0; i < D; ++i) wb[size_t(i)] = ds::f32_to_bf16(std::uniform_real_distribution<float>(0.5f, 1.5f)(g)),
                                  wf[size_t(i)] = ds::bf16_to_f32(wb[size_t(i)]);
  const std::vector<float> f = rnd(size_t(R * D), -3, 3, g);
  DevBuf<uint16_t> dwb(wb);
  DevBuf<float> df(f), dy(size_t(R * D));
  for (bool with_f : {true, false}) {
    std::vector<float> r_ref = emb, y_ref(size_t(R * D));
    for (int64_t r = 0; r < R; ++r)
      ds::cpu::add_rmsnorm(with_f ? f.data() + r * D : nullptr, r_ref.data() + r * D, wf.data(), D, 1e-6f,
                           y_ref.data() + r * D, false);
    DevBuf<float> dr(emb);
    dy.poison();
    ds::cuda::add_rmsnorm_f32(with_f ? df.p : nullptr, dr.p, dwb.p, R, D, 1e-6f, dy.p, nullptr);
    const std::string sh = std::to_string(R) + "x" + std::to_string(D) + (with_f ? " +f" : " no f");
    check(bit_equal(dr.download(), r_ref), "add_rmsnorm_f32 " + sh + " residual bit-identical");
    const double e = normwise(dy.download(), y_ref);
    check(e <= 1e-5, "add_rmsnorm_f32 " + sh + " output normwise " + fmt(e) + " <= 1e-5");
  }
}

void test_scatter_gather(std::mt19937_64& g) {
  const int64_t n = 37, W = 576, slots = 100;
  const std::vector<float> src = rnd(size_t(n * W), -1, 1, g);
  std::vector<int32_t> dst_rows(static_cast<size_t>(slots));
  std::iota(dst_rows.begin(), dst_rows.end(), 0);
  std::shuffle(dst_rows.begin(), dst_rows.end(), g);
  dst_rows.resize(size_t(n));
  dst_rows[5] = -1;  // padding row: no write
  std::vector<float> ref(size_t(slots * W), 7.0f);
  for (int64_t i = 0; i < n; ++i)
    if (dst_rows[size_t(i)] >= 0) std::copy_n(src.data() + i * W, W, ref.data() + dst_rows[size_t(i)] * W);
  DevBuf<float> dsrc(src), dd(ref.size());
  DevBuf<int32_t> dr(dst_rows);
  dd.upload(std::vector<float>(ref.size(), 7.0f));
  ds::cuda::scatter_rows_f32(dsrc.p, W, n, W, dr.p, dd.p, nullptr);
  check(bit_equal(dd.download(), ref), "scatter_rows_f32 37 rows x 576 into 100 slots (one slot -1) bit-identical");
  std::vector<int32_t> rows = {3, 3, 0, 36, 17};
  std::vector<float> gref;
  for (int32_t r : rows) gref.insert(gref.end(), src.begin() + r * W, src.begin() + (r + 1) * W);
  DevBuf<int32_t> dgr(rows);
  DevBuf<float> dg(gref.size());
  dg.poison();
  ds::cuda::gather_rows_f32(dsrc.p, W, dgr.p, int64_t(rows.size()), W, dg.p, nullptr);
  check(bit_equal(dg.download(), gref), "gather_rows_f32 5 rows x 576 bit-identical");
}

// Paged indexer: R rows of one sequence at the given positions, page table = a shuffled page list.
void test_indexer(int Hi, int Di, int topk, int page, const std::vector<int>& positions, std::mt19937_64& g) {
  const int64_t R = int64_t(positions.size());
  const int max_pos = *std::max_element(positions.begin(), positions.end());
  const int np = max_pos / page + 1, pool = np + 3;
  std::vector<int32_t> pt(static_cast<size_t>(pool));
  std::iota(pt.begin(), pt.end(), 0);
  std::shuffle(pt.begin(), pt.end(), g);
  pt.resize(size_t(np));
  const int64_t slots = int64_t(pool) * page, max_keys = int64_t(np) * page;
  const std::vector<float> kc = rnd(size_t(slots * Di), -1, 1, g), q = rnd(size_t(R * Hi * Di), -1, 1, g),
                           w = rnd(size_t(R * Hi), -0.5f, 1, g);
  std::vector<int32_t> pages_rows, n_keys;
  for (int64_t r = 0; r < R; ++r) {
    pages_rows.insert(pages_rows.end(), pt.begin(), pt.end());
    n_keys.push_back(positions[size_t(r)] + 1);
  }
  DevBuf<float> dq(q), dw(w), dk(kc), dsc(size_t(R * max_keys));
  DevBuf<int32_t> dp(pages_rows), dn(n_keys), didx(size_t(R * topk));
  dsc.poison();
  didx.poison();
  ds::cuda::index_scores_f32(dq.p, dw.p, R, Hi, Di, dk.p, dp.p, np, page, dn.p, topk, max_keys, dsc.p, nullptr);
  ds::cuda::IndexerArgs a;
  a.R = R, a.pages = dp.p, a.max_pages = np, a.page_size = page, a.n_keys = dn.p;
  ds::cuda::indexer_topk_scored(a, topk, max_keys, dsc.p, didx.p, nullptr);
  const std::vector<float> sc = dsc.download();
  const std::vector<int32_t> idx = didx.download();
  std::vector<float> gs, cs;
  int sets_equal = 0, near_ties = 0, bad = 0;
  const std::vector<float> ones(static_cast<size_t>(max_keys), 1.0f);
  for (int64_t r = 0; r < R; ++r) {
    const int n = n_keys[size_t(r)];
    auto slot = [&](int p) { return int32_t(pt[size_t(p / page)] * page + p % page); };
    std::vector<int32_t> want;
    float gap = INFINITY, amax = 0;
    if (n <= topk) {
      for (int p = 0; p < n; ++p) want.push_back(slot(p));
    } else {
      std::vector<float> keys(size_t(n) * Di), ref(static_cast<size_t>(n));
      for (int p = 0; p < n; ++p) std::copy_n(kc.data() + int64_t(slot(p)) * Di, Di, keys.data() + int64_t(p) * Di);
      ds::cpu::index_scores(q.data() + r * Hi * Di, w.data() + r * Hi, Hi, Di, keys.data(), ones.data(), n, ref.data());
      cs.insert(cs.end(), ref.begin(), ref.end());
      gs.insert(gs.end(), sc.begin() + r * max_keys, sc.begin() + r * max_keys + n);
      for (int32_t p : ds::cpu::topk_indices(ref.data(), n, topk)) want.push_back(slot(p));
      std::vector<float> s = ref;
      std::sort(s.begin(), s.end(), std::greater<float>());
      for (float v : ref) amax = std::max(amax, std::fabs(v));
      gap = (s[size_t(topk - 1)] - s[size_t(topk)]) / std::max(amax, 1e-30f);
    }
    const int m = std::min(n, topk);
    bool eq = true;
    for (int k = 0; k < topk; ++k) eq = eq && idx[size_t(r * topk + k)] == (k < m ? want[size_t(k)] : -1);
    if (eq) ++sets_equal;
    else if (gap <= 1e-4f) ++near_ties;
    else ++bad;
  }
  const std::string sh = "Hi " + std::to_string(Hi) + " Di " + std::to_string(Di) + " topk " + std::to_string(topk);
  if (!cs.empty()) {
    const double e = normwise(gs, cs);
    check(e <= 1e-5, "index_scores_f32 " + sh + " scores normwise " + fmt(e) + " <= 1e-5");
  }
  check(bad == 0, "indexer_topk_scored " + sh + ": " + std::to_string(sets_equal) + "/" + std::to_string(R) +
                      " rows equal, " + std::to_string(near_ties) + " near ties, " + std::to_string(bad) + " wrong");
}

void test_attention(int64_t R, int H, int C, int dr, int max_n, std::mt19937_64& g) {
  const int64_t slots = 3 * int64_t(max_n), W = C + dr;
  const std::vector<float> cache = rnd(size_t(slots * W), -1, 1, g), ql = rnd(size_t(R * H * C), -0.3f, 0.3f, g),
                           qp = rnd(size_t(R * H * dr), -0.3f, 0.3f, g);
  std::vector<float> lat(size_t(slots * C)), kpe(size_t(slots * dr));
  for (int64_t s = 0; s < slots; ++s) {
    std::copy_n(cache.data() + s * W, C, lat.data() + s * C);
    std::copy_n(cache.data() + s * W + C, dr, kpe.data() + s * dr);
  }
  std::vector<int32_t> idx(size_t(R * max_n), -1), n(static_cast<size_t>(R));
  std::vector<float> ref(size_t(R * H * C), 0.f);
  const float scale = 1.0f / std::sqrt(float(C + dr));
  for (int64_t r = 0; r < R; ++r) {
    n[size_t(r)] = r == 1 ? 0 : int32_t(1 + g() % uint64_t(max_n));  // row 1: no keys -> zeros
    if (r == 0) n[0] = max_n;
    std::vector<int32_t> all(static_cast<size_t>(slots));
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), g);
    std::sort(all.begin(), all.begin() + n[size_t(r)]);
    std::copy_n(all.begin(), n[size_t(r)], idx.begin() + r * max_n);
    if (n[size_t(r)] > 0)
      ds::cpu::mqa_attention(ql.data() + r * H * C, qp.data() + r * H * dr, H, C, dr, lat.data(), kpe.data(),
                             idx.data() + r * max_n, n[size_t(r)], scale, ref.data() + r * H * C);
  }
  DevBuf<float> dc(cache), dql(ql), dqp(qp), dout(ref.size());
  DevBuf<int32_t> di(idx), dn(n);
  dout.poison();
  ds::cuda::mla_attention_f32(dql.p, dqp.p, R, H, C, dr, dc.p, di.p, dn.p, max_n, scale, dout.p, nullptr);
  const std::vector<float> out = dout.download();
  const double e = normwise(out, ref);
  bool zero = true;
  for (int64_t i = 0; i < int64_t(H) * C; ++i) zero = zero && out[size_t(H * C + i)] == 0.f;
  const std::string sh = std::to_string(R) + " rows, H " + std::to_string(H) + ", C " + std::to_string(C) + " + " +
                         std::to_string(dr) + ", max_n " + std::to_string(max_n);
  check(e <= 1e-4, "mla_attention_f32 " + sh + " normwise " + fmt(e) + " <= 1e-4");
  check(zero, "mla_attention_f32 " + sh + " row with n = 0 is zero");
}

void test_combine(int64_t R, int K, int64_t D, std::mt19937_64& g) {
  const std::vector<float> ye = rnd(size_t(R * K * D), -1, 1, g), wts = rnd(size_t(R * K), 0, 2.5f, g),
                           ysh = rnd(size_t(R * D), -1, 1, g);
  DevBuf<float> dye(ye), dw(wts), dsh(ysh), dout(size_t(R * D));
  for (bool shared : {true, false}) {
    std::vector<float> ref(size_t(R * D));
    for (int64_t r = 0; r < R; ++r)
      for (int64_t d = 0; d < D; ++d) {
        float acc = 0.f;
        for (int k = 0; k < K; ++k) acc += ye[size_t((r * K + k) * D + d)] * wts[size_t(r * K + k)];
        if (shared) acc += ysh[size_t(r * D + d)];
        ref[size_t(r * D + d)] = acc;
      }
    dout.poison();
    ds::cuda::moe_combine_f32(dye.p, dw.p, shared ? dsh.p : nullptr, R, K, D, dout.p, nullptr);
    const double e = normwise(dout.download(), ref);
    check(e <= 1e-6, "moe_combine_f32 " + std::to_string(R) + "x" + std::to_string(K) + "x" + std::to_string(D) +
                         (shared ? " +shared" : "") + " normwise " + fmt(e) + " <= 1e-6");
  }
}

}  // namespace

int main() {
  std::mt19937_64 g(20261130);
  try {
    // tiny-a-like and full-width shapes (q_b 1536 -> 128 x 192 heads, o 16384 -> 7168, kv_a 576 x 7168).
    test_gemm(1, 300, 256, g);
    test_gemm(17, 300, 256, g);
    test_gemm(40, 200, 200, g);   // K % 16 != 0: the generic small-M kernel
    test_gemm(100, 576, 7168, g);
    test_gemm(33, 7168, 2048, g);
    test_embed_rmsnorm(1024, 256, 9, g);
    test_embed_rmsnorm(4096, 7168, 33, g);
    test_embed_rmsnorm(64, 100, 3, g);  // width not a multiple of the block
    test_scatter_gather(g);
    test_indexer(4, 128, 16, 16, {3, 15, 16, 17, 39, 40, 63}, g);       // tiny-a: 4 x 128, index_topk 16
    test_indexer(64, 128, 2048, 64, {100, 2047, 2048, 2500, 5000}, g);  // full width
    test_attention(5, 4, 128, 32, 16, g);
    test_attention(4, 128, 512, 64, 2048, g);
    test_combine(7, 3, 256, g);
    test_combine(64, 8, 7168, g);
    DS_CUDA_CHECK(cudaDeviceSynchronize());
  } catch (const std::exception& e) {
    std::printf("CHECK %-72s FAIL\nerror: %s\n", "gpu_exact_ops ran to the end", e.what());
    return 1;
  }
  std::printf("%s\n", g_fail ? "FAILED" : "ALL PASS");
  return g_fail ? 1 : 0;
}
