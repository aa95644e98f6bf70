// GPU test + benchmark of the MLA cache store, sparse absorbed MLA attention and the absorption
// products (src/kernels/mla_cache.h, mla_attention.h; spec/model.md 4.3 steps 6-7, 4.7, 5.4, 8.1)
// against their CPU twins, run on the device machine by tests/gpu/run_all.sh.
//
// Checks and tolerances (reasons):
// - mla_cache_store BF16: BF16-valued rows come back bit for bit (RNE of a BF16 value is itself).
// - mla_cache_store FP8: latent bytes and scales equal ds::cpu::act_quant of the latent bit for bit
//   (same formula, every step exact or correctly rounded), k_pe equal to its BF16 rounding.
// - Official-mode claim: latents that are already an FP8 round trip with UE8M0 scales
//   (ds::cpu::fp8_round_trip, spec 4.3 step 6) dequantize from the 656-byte record to the same
//   floats bit for bit (the new scale s' <= s is a power of two and x / s' is e4m3 times 2^k <= 448).
// - A negative slot writes nothing (poisoned cache bytes unchanged).
// - mla_sparse_attention vs ds::cpu::mqa_attention: normwise <= 2e-5 per case. Both are FP32
//   with exact BF16 x BF16 products; they differ only in summation order (576-term dots, online vs
//   two-pass softmax, expf vs std::exp <= 2 ulp), giving ~1e-7 relative on logits of size <= ~10,
//   so ~1e-6 on o. A wrong key, mask, scale or head gives > 1e-2.
// - The same keys through the FP8 and the BF16 cache give bit-identical o_lat (lossless record).
// - Full-width shapes run the tensor-core path (BF16 mma, exact products, FP32 accumulation, P as
//   hi + lo BF16: ~2^-17 relative per weight) and the FP32 path; both must meet the 2e-5 bound.
//   Rows of 5000 / 2049 keys cover the kernel's refill of its staged slot indices (2048 at a time).
// - mla_absorb_q / mla_absorb_out vs the loops of ds::mla_attend: unrounded normwise <= 1e-5 (FP32
//   sums of 128 / 512 terms in another order, with or without FMA contraction: expected ~1e-6
//   relative, 2^-24 * sqrt(n / 2)); BF16-rounded outputs within 1 BF16 ulp
//   per element (an FP32 difference near a rounding midpoint) and normwise <= 1e-4; q_pe_out exact;
//   also through strided views of one kv_b-shaped [H, dn + dv, C] buffer (AbsorbWeightDev::head_stride).
// Shapes: tiny (H = 4 / 20: partial head groups, C = 128 / 256, dr = 64 / 16: records that are not
// 16-byte multiples), full width H = 128, C = 512, dr = 64 with decode batch 1/8/64 over top-k 2048
// of 32768 slots and prefill 1024 rows attending to all causal keys (CPU twin on every 31st row).
// Speed: decode time and TFLOP/s (2 H n (576 + 512) per row, FlashMLA's count) vs FlashMLA's 187 us
// for batch 64 x s_q 2 = 128 rows in spec/benchmarks.md; at 128 rows also the FP32 path, and a RESULT
// line saying whether the FP8 rate meets the issue's minimum (half of FlashMLA's 390 TFLOP/s).
//
// Usage: gpu_mla_attention [--no-bench]. Prints CHECK/RESULT lines and a table; exit 0 iff all pass.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "common/numeric.h"
#include "gpu_test_util.h"
#include "kernels/cpu/act_quant.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"
#include "kernels/mla_attention.h"
#include "kernels/mla_attention_tc.h"
#include "kernels/mla_cache.h"

namespace {

using namespace ds::gputest;
using ds::cuda::KvCacheDtype;

constexpr float kScale = 0.13523378f;  // spec 4.5

std::vector<float> bf16_values(size_t n, float lo, float hi, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = ds::round_bf16(u(rng));
  return v;
}

// Rows [R, C + dr] whose latent is an official-mode FP8 round trip and k_pe BF16 values; group
// magnitudes vary over 2^ex_lo .. 2^ex_hi (the store checks use -16 .. 6 so that tiny groups hit
// the 1e-4 clamp; attention uses -2 .. 0 so that logits stay O(1..10) like a real layer's).
std::vector<float> official_rows(int64_t R, int C, int dr, std::mt19937_64& rng, int ex_lo = -16, int ex_hi = 6) {
  std::vector<float> rows(size_t(R * (C + dr)));
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::uniform_int_distribution<int> ex(ex_lo, ex_hi);
  for (int64_t r = 0; r < R; ++r) {
    float* row = rows.data() + r * (C + dr);
    for (int g = 0; g < C / 128; ++g) {
      const float m = std::ldexp(1.0f, ex(rng));
      for (int i = 0; i < 128; ++i) row[g * 128 + i] = ds::round_bf16(u(rng) * m);
    }
    ds::cpu::fp8_round_trip(row, 1, C);
    for (int i = 0; i < dr; ++i) row[C + i] = ds::round_bf16(u(rng) * 2.f);
  }
  return rows;
}

// Decodes slot `s` of a cache into latent [C] and k_pe [dr] floats.
void decode_slot(const std::vector<uint8_t>& cache, KvCacheDtype dt, int C, int dr, int64_t s, float* lat, float* pe) {
  const int64_t sb = ds::cuda::mla_slot_bytes(dt, C, dr);
  const uint8_t* rec = cache.data() + s * sb;
  auto bf = [](const uint8_t* p) {
    uint16_t b;
    std::memcpy(&b, p, 2);
    return ds::bf16_to_f32(b);
  };
  if (dt == KvCacheDtype::BF16) {
    for (int i = 0; i < C; ++i) lat[i] = bf(rec + 2 * i);
    for (int i = 0; i < dr; ++i) pe[i] = bf(rec + 2 * (C + i));
    return;
  }
  for (int i = 0; i < C; ++i) {
    float s;
    std::memcpy(&s, rec + C + 4 * (i / 128), 4);
    lat[i] = ds::fp8_e4m3_to_f32(rec[i]) * s;
  }
  for (int i = 0; i < dr; ++i) pe[i] = bf(rec + C + 4 * (C / 128) + 2 * i);
}

void cache_store_checks(int C, int dr, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int64_t R = 257, L = 300;
  const std::string tag = "C=" + std::to_string(C) + " dr=" + std::to_string(dr);
  std::vector<int32_t> slots(R);
  std::vector<int32_t> perm(L);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  for (int64_t r = 0; r < R; ++r) slots[size_t(r)] = perm[size_t(r)];
  slots[5] = -1;  // skipped row
  DevBuf<int32_t> d_slots(slots);
  for (KvCacheDtype dt : {KvCacheDtype::BF16, KvCacheDtype::FP8}) {
    const int64_t sb = ds::cuda::mla_slot_bytes(dt, C, dr);
    const char* dn = dt == KvCacheDtype::BF16 ? "bf16" : "fp8";
    // (1) generic BF16-valued rows (not round-tripped): bytes vs the twin's formula.
    std::vector<float> rows = bf16_values(size_t(R * (C + dr)), -3.f, 3.f, rng);
    for (int64_t r = 0; r < R; r += 7)  // some groups small enough for the 1e-4 clamp
      for (int i = 0; i < 128; ++i) rows[size_t(r * (C + dr) + i)] = ds::round_bf16(rows[size_t(r * (C + dr) + i)] * 1e-6f);
    DevBuf<float> d_rows(rows);
    DevBuf<uint8_t> d_cache(size_t(L * sb));
    d_cache.poison();
    ds::cuda::mla_cache_store(d_rows.p, R, C, dr, d_slots.p, dt, d_cache.p, nullptr);
    DS_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<uint8_t> cache = d_cache.download();
    bool ok = true, skip_ok = true;
    std::vector<float> lat(C), pe(dr), q(C), s(C / 128);
    for (int64_t r = 0; r < R; ++r) {
      const int32_t sl = slots[size_t(r)];
      if (sl < 0) continue;
      const float* row = rows.data() + r * (C + dr);
      decode_slot(cache, dt, C, dr, sl, lat.data(), pe.data());
      if (dt == KvCacheDtype::FP8) {
        ds::cpu::act_quant(row, 1, C, q.data(), s.data());
        const uint8_t* rec = cache.data() + int64_t(sl) * sb;
        for (int i = 0; i < C; ++i) ok = ok && ds::fp8_e4m3_to_f32(rec[i]) == q[size_t(i)];
        for (int g = 0; g < C / 128; ++g) {
          float sg;
          std::memcpy(&sg, rec + C + 4 * g, 4);
          ok = ok && sg == s[size_t(g)];
        }
      } else {
        for (int i = 0; i < C; ++i) ok = ok && lat[size_t(i)] == row[i];
      }
      for (int i = 0; i < dr; ++i) ok = ok && pe[size_t(i)] == ds::round_bf16(row[C + i]);
    }
    for (int64_t b = 0; b < sb; ++b) skip_ok = skip_ok && cache[size_t(int64_t(perm[5]) * sb + b)] == 0xff;
    check(ok, std::string("cache_store ") + dn + " " + tag + " bytes/scales/k_pe == twin");
    check(skip_ok, std::string("cache_store ") + dn + " " + tag + " slot -1 writes nothing");
    // (2) official-mode rows: lossless.
    std::vector<float> orow = official_rows(R, C, dr, rng);
    d_rows.upload(orow);
    ds::cuda::mla_cache_store(d_rows.p, R, C, dr, d_slots.p, dt, d_cache.p, nullptr);
    DS_CUDA_CHECK(cudaDeviceSynchronize());
    cache = d_cache.download();
    ok = true;
    for (int64_t r = 0; r < R; ++r) {
      if (slots[size_t(r)] < 0) continue;
      decode_slot(cache, dt, C, dr, slots[size_t(r)], lat.data(), pe.data());
      for (int i = 0; i < C; ++i) ok = ok && std::memcmp(&lat[size_t(i)], &orow[size_t(r * (C + dr) + i)], 4) == 0;
      for (int i = 0; i < dr; ++i) ok = ok && pe[size_t(i)] == orow[size_t(r * (C + dr) + C + i)];
    }
    check(ok, std::string("cache_store ") + dn + " " + tag + " official latent round-trips bit for bit");
  }
}

// One attention problem: L cached slots, R rows with their own ascending slot lists.
struct AttnCase {
  std::string label;
  int64_t R;
  int H, C, dr;
  int64_t L;
  std::vector<int32_t> n;  // per row
  int max_n;
  float qmag;              // |q| scale (larger -> sharper softmax)
  int cpu_every = 1;       // twin on every k-th row (and the last)
  bool all_causal = false; // row r attends to slots of positions 0..n[r]-1 (slot = a fixed permutation)
};

struct AttnData {
  std::vector<float> rows, q_lat, q_pe;
  std::vector<int32_t> idx;
};

AttnData make_attn(const AttnCase& c, std::mt19937_64& rng) {
  AttnData d;
  d.rows = official_rows(c.L, c.C, c.dr, rng, -2, 0);
  d.q_lat = bf16_values(size_t(c.R * c.H * c.C), -c.qmag, c.qmag, rng);
  d.q_pe = bf16_values(size_t(c.R * c.H * c.dr), -c.qmag, c.qmag, rng);
  d.idx.assign(size_t(c.R * c.max_n), -7);  // garbage past n[r]
  std::vector<int32_t> pool(size_t(c.L));
  std::iota(pool.begin(), pool.end(), 0);
  std::vector<int32_t> causal = pool;
  std::shuffle(causal.begin(), causal.end(), rng);  // position p lives in slot causal[p]
  for (int64_t r = 0; r < c.R; ++r) {
    const int n = c.n[size_t(r)];
    int32_t* out = d.idx.data() + r * c.max_n;
    if (c.all_causal) {
      for (int p = 0; p < n; ++p) out[p] = causal[size_t(p)];
    } else {
      std::shuffle(pool.begin(), pool.end(), rng);
      std::vector<int32_t> pick(pool.begin(), pool.begin() + n);
      std::sort(pick.begin(), pick.end());
      std::copy(pick.begin(), pick.end(), out);
    }
  }
  return d;
}

void attention_case(const AttnCase& c, uint64_t seed) {
  std::mt19937_64 rng(seed);
  AttnData d = make_attn(c, rng);
  const int C = c.C, dr = c.dr, H = c.H;
  std::vector<float> latent(size_t(c.L * C)), kpe(size_t(c.L * dr));
  for (int64_t s = 0; s < c.L; ++s) {
    std::copy_n(d.rows.data() + s * (C + dr), C, latent.data() + s * C);
    std::copy_n(d.rows.data() + s * (C + dr) + C, dr, kpe.data() + s * dr);
  }
  std::vector<int32_t> slots(size_t(c.L));
  std::iota(slots.begin(), slots.end(), 0);
  DevBuf<float> d_rows(d.rows), d_ql(d.q_lat), d_qp(d.q_pe), d_o(size_t(c.R * H * C));
  DevBuf<int32_t> d_slots(slots), d_idx(d.idx), d_n(c.n);
  // outs: [0] default path BF16 cache, [1] default path FP8 cache, and only where the default path
  // is the tensor-core kernel (C 512, dr 64, H % 64 == 0): [2] FP32 path BF16 cache.
  const bool tc = C == 512 && dr == 64 && H % 64 == 0;
  std::vector<std::vector<float>> outs;
  for (int run = 0; run < (tc ? 3 : 2); ++run) {
    const KvCacheDtype dt = run == 1 ? KvCacheDtype::FP8 : KvCacheDtype::BF16;
    DevBuf<uint8_t> cache(size_t(c.L * ds::cuda::mla_slot_bytes(dt, C, dr)));
    ds::cuda::mla_cache_store(d_rows.p, c.L, C, dr, d_slots.p, dt, cache.p, nullptr);
    d_o.poison();
    (run == 2 ? ds::cuda::mla_sparse_attention_fp32 : ds::cuda::mla_sparse_attention)(
          d_ql.p, d_qp.p, c.R, H, C, dr, cache.p, dt, d_idx.p, d_n.p, c.max_n, kScale, d_o.p, nullptr);
    DS_CUDA_CHECK(cudaDeviceSynchronize());
    outs.push_back(d_o.download());
  }
  // CPU twin on the checked rows.
  std::vector<int64_t> rows_chk;
  for (int64_t r = 0; r < c.R; r += c.cpu_every) rows_chk.push_back(r);
  if (rows_chk.back() != c.R - 1) rows_chk.push_back(c.R - 1);
  std::vector<float> ref(rows_chk.size() * size_t(H * C));
  ds::cpu::parallel_for(int64_t(rows_chk.size()), [&](int64_t i) {
    const int64_t r = rows_chk[size_t(i)];
    ds::cpu::mqa_attention(d.q_lat.data() + r * H * C, d.q_pe.data() + r * H * dr, H, C, dr, latent.data(), kpe.data(),
                           d.idx.data() + r * c.max_n, c.n[size_t(r)], kScale, ref.data() + i * H * C);
  });
  for (size_t k : {size_t(0), size_t(2)}) {  // default path, FP32 path
    if (k >= outs.size()) continue;
    std::vector<float> got(ref.size());
    for (size_t i = 0; i < rows_chk.size(); ++i)
      std::copy_n(outs[k].data() + rows_chk[i] * H * C, H * C, got.data() + i * H * C);
    const double e = normwise(got, ref);
    const std::string path = k == 2 ? "fp32 path"
                             : tc     ? "tensor-core path"
                                      : "fp32 path (default)";
    std::printf("RESULT mla_attention %s %s normwise %.3g (%zu rows vs twin)\n", c.label.c_str(), path.c_str(), e,
                rows_chk.size());
    check(e <= 2e-5, "mla_sparse_attention " + c.label + " " + path + " vs twin normwise <= 2e-5");
  }
  check(std::memcmp(outs[0].data(), outs[1].data(), outs[0].size() * 4) == 0,
        "mla_sparse_attention " + c.label + " FP8 cache == BF16 cache bit for bit");
}

void absorb_checks(int64_t R, int H, int dn, int dr, int dv, int C, bool bf16_w, bool strided, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int dq = dn + dr;
  const std::string tag = "R=" + std::to_string(R) + " H=" + std::to_string(H) + " C=" + std::to_string(C) +
                          (bf16_w ? " bf16 w" : " f32 w") + (strided ? " kv_b view" : "");
  std::vector<float> q = bf16_values(size_t(R * H * dq), -2.f, 2.f, rng);
  std::vector<float> wuk = bf16_values(size_t(H) * dn * C, -0.1f, 0.1f, rng);
  std::vector<float> wuv = bf16_values(size_t(H) * dv * C, -0.1f, 0.1f, rng);
  std::vector<float> ol = bf16_values(size_t(R * H * C), -1.f, 1.f, rng);
  auto to_bf16 = [](const std::vector<float>& v) {
    std::vector<uint16_t> b(v.size());
    for (size_t i = 0; i < v.size(); ++i) b[i] = ds::f32_to_bf16(v[i]);
    return b;
  };
  // kv_b layout [H, dn + dv, C] (W_UK rows then W_UV rows per head), read through strided views when
  // `strided`, else separate contiguous [H, dn, C] / [H, dv, C] copies.
  std::vector<float> kvb(size_t(H) * (dn + dv) * C);
  for (int h = 0; h < H; ++h) {
    std::copy_n(wuk.data() + size_t(h) * dn * C, size_t(dn) * C, kvb.data() + size_t(h) * (dn + dv) * C);
    std::copy_n(wuv.data() + size_t(h) * dv * C, size_t(dv) * C, kvb.data() + (size_t(h) * (dn + dv) + dn) * C);
  }
  DevBuf<uint16_t> d_wuk_b(to_bf16(wuk)), d_wuv_b(to_bf16(wuv)), d_kvb_b(to_bf16(kvb));
  DevBuf<float> d_wuk_f(wuk), d_wuv_f(wuv), d_kvb_f(kvb);
  const int64_t hs = int64_t(dn + dv) * C;
  ds::cuda::AbsorbWeightDev wk{bf16_w ? static_cast<const void*>(d_wuk_b.p) : d_wuk_f.p, bf16_w, H, dn, C, 0};
  ds::cuda::AbsorbWeightDev wv{bf16_w ? static_cast<const void*>(d_wuv_b.p) : d_wuv_f.p, bf16_w, H, dv, C, 0};
  if (strided) {
    wk = {bf16_w ? static_cast<const void*>(d_kvb_b.p) : d_kvb_f.p, bf16_w, H, dn, C, hs};
    wv = {bf16_w ? static_cast<const void*>(d_kvb_b.p + size_t(dn) * C) : d_kvb_f.p + size_t(dn) * C, bf16_w, H, dv, C, hs};
  }
  DevBuf<float> d_q(q), d_ol(ol), d_qlat(size_t(R * H * C)), d_qpe(size_t(R * H * dr)), d_out(size_t(R * H * dv));
  // Twin: the loops of ds::mla_attend (src/model/mla.cpp).
  std::vector<float> ref_q(size_t(R * H * C), 0.f), ref_o(size_t(R * H * dv));
  for (int64_t r = 0; r < R; ++r)
    for (int h = 0; h < H; ++h) {
      float* qlr = ref_q.data() + (r * H + h) * C;
      const float* qn = q.data() + (r * H + h) * dq;
      for (int d = 0; d < dn; ++d)
        for (int k = 0; k < C; ++k) qlr[k] += qn[d] * wuk[(size_t(h) * dn + d) * C + k];
      for (int j = 0; j < dv; ++j)
        ref_o[size_t((r * H + h) * dv + j)] =
            ds::cpu::dot_fixed(wuv.data() + (size_t(h) * dv + j) * C, ol.data() + (r * H + h) * C, C);
    }
  for (bool rnd : {false, true}) {
    d_qlat.poison();
    d_out.poison();
    ds::cuda::mla_absorb_q(d_q.p, R, dq, wk, d_qlat.p, d_qpe.p, rnd, nullptr);
    ds::cuda::mla_absorb_out(d_ol.p, R, wv, d_out.p, rnd, nullptr);
    DS_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<float> gq = d_qlat.download(), go = d_out.download();
    for (int pass = 0; pass < 2; ++pass) {
      const std::vector<float>& g = pass == 0 ? gq : go;
      std::vector<float> rf = pass == 0 ? ref_q : ref_o;
      const char* what = pass == 0 ? "mla_absorb_q" : "mla_absorb_out";
      if (!rnd) {
        const double e = normwise(g, rf);
        std::printf("RESULT %s %s normwise %.3g\n", what, tag.c_str(), e);
        check(e <= 1e-5, std::string(what) + " " + tag + " normwise <= 1e-5");
      } else {
        // Each output within 1 BF16 ulp of the rounded FP32 reference, except where the sum
        // cancels: there the FP32 summation-order noise (2^-24 sqrt(C) x the terms' size, bounded by
        // 1e-6 x rms of the outputs for these O(1) inputs) can move a near-zero value across many
        // BF16 steps (the first run found such elements at R=64, H=128, C=512), so the per-element
        // bar is |g - bf16(ref)| <= ulp(bf16(ref)) + 1e-6 x rms(ref).
        double rms = 0;
        for (float x : rf) rms += double(x) * double(x);
        rms = std::sqrt(rms / double(rf.size()));
        int64_t bad = 0, worst = 0;
        for (size_t i = 0; i < rf.size(); ++i) {
          const float want = ds::round_bf16(rf[i]);
          const int64_t u = bf16_ulps(g[i], want);
          worst = std::max(worst, u);
          const double ulp = std::ldexp(1.0, std::ilogb(want == 0.f ? 1e-38f : want) - 7);
          if (u > 1 && std::fabs(double(g[i]) - double(want)) > ulp + 1e-6 * rms) ++bad;
        }
        for (auto& x : rf) x = ds::round_bf16(x);
        const double e = normwise(g, rf);
        std::printf("RESULT %s %s bf16: normwise %.3g, largest ulp distance %lld, beyond the cancellation bar %lld\n",
                    what, tag.c_str(), e, (long long)worst, (long long)bad);
        check(bad == 0 && e <= 1e-4, std::string(what) + " " + tag + " bf16 <= 1 ulp (cancellation bar), normwise <= 1e-4");
      }
    }
    std::vector<float> gpe = d_qpe.download();
    bool ok = true;
    for (int64_t r = 0; r < R; ++r)
      for (int h = 0; h < H; ++h)
        for (int i = 0; i < dr; ++i) ok = ok && gpe[size_t((r * H + h) * dr + i)] == q[size_t((r * H + h) * dq + dn + i)];
    if (!rnd) check(ok, "mla_absorb_q " + tag + " q_pe_out == rope part");
  }
}

AttnCase decode_case(int64_t B, int n_sel) {
  AttnCase c{"decode B=" + std::to_string(B) + " n=" + std::to_string(n_sel) + " H=128 C=512 dr=64", B, 128, 512, 64,
             32768, std::vector<int32_t>(size_t(B), n_sel), n_sel, 1.0f};
  return c;
}

void bench(const std::vector<std::pair<std::string, AttnCase>>& cases) {
  std::printf("\n| case | cache | time us | TFLOP/s | of FlashMLA rate (390 TFLOP/s) |\n|---|---|---|---|---|\n");
  for (auto& [name, c] : cases) {
    std::mt19937_64 rng(99);
    AttnData d = make_attn(c, rng);
    std::vector<int32_t> slots(size_t(c.L));
    std::iota(slots.begin(), slots.end(), 0);
    DevBuf<float> d_rows(d.rows), d_ql(d.q_lat), d_qp(d.q_pe), d_o(size_t(c.R * c.H * c.C));
    DevBuf<int32_t> d_slots(slots), d_idx(d.idx), d_n(c.n);
    double flop = 0;
    for (int64_t r = 0; r < c.R; ++r) flop += 2.0 * c.H * c.n[size_t(r)] * (576 + 512);
    // Runs: default tensor-core kernel FP8, BF16; at 128 rows also the FP32 path (BF16).
    for (int run = 0; run < (c.R == 128 ? 3 : 2); ++run) {
      const KvCacheDtype dt = run == 0 ? KvCacheDtype::FP8 : KvCacheDtype::BF16;
      DevBuf<uint8_t> cache(size_t(c.L * ds::cuda::mla_slot_bytes(dt, c.C, c.dr)));
      ds::cuda::mla_cache_store(d_rows.p, c.L, c.C, c.dr, d_slots.p, dt, cache.p, nullptr);
      DS_CUDA_CHECK(cudaDeviceSynchronize());
      auto fn = run == 2 ? ds::cuda::mla_sparse_attention_fp32 : ds::cuda::mla_sparse_attention;
      fn(d_ql.p, d_qp.p, c.R, c.H, c.C, c.dr, cache.p, dt, d_idx.p, d_n.p, c.max_n, kScale, d_o.p, nullptr);  // eager
      DS_CUDA_CHECK(cudaDeviceSynchronize());
      const double us = time_us(
          [&](cudaStream_t st, int) {
            fn(d_ql.p, d_qp.p, c.R, c.H, c.C, c.dr, cache.p, dt, d_idx.p, d_n.p, c.max_n, kScale, d_o.p, st);
          },
          1);
      const double tf = flop / (us * 1e-6) / 1e12;
      std::printf("| %s | %s%s | %.1f | %.1f | %.1f%% |\n", name.c_str(), dt == KvCacheDtype::FP8 ? "fp8" : "bf16",
                  run == 2 ? " (fp32 path)" : "", us, tf, 100 * tf / 390.0);
      if (c.R == 128 && run == 0)
        std::printf("RESULT sparse MLA decode 128 rows fp8: %.1f TFLOP/s, %s the issue's minimum (195 TFLOP/s)\n", tf,
                    tf >= 195.0 ? "meets" : "BELOW");
    }
  }
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  const bool no_bench = argc > 1 && std::strcmp(argv[1], "--no-bench") == 0;
  try {
    cache_store_checks(128, 64, 1);
    cache_store_checks(512, 64, 2);
    cache_store_checks(256, 16, 3);
    // Tiny attention: partial head groups, n not a multiple of the 32-key tile, n = 1.
    attention_case({"tiny H=4 C=128 dr=64", 3, 4, 128, 64, 97, {1, 33, 97}, 97, 1.0f}, 10);
    attention_case({"tiny H=20 C=256 dr=16 sharp", 4, 20, 256, 16, 200, {5, 64, 65, 200}, 200, 4.0f}, 11);
    for (int64_t B : {1, 8, 64}) {
      AttnCase c = decode_case(B, 2048);
      c.cpu_every = B == 64 ? 4 : 1;
      attention_case(c, 20 + uint64_t(B));
    }
    {
      AttnCase c = decode_case(8, 2048);
      c.label = "decode B=8 varied n H=128 C=512 dr=64 sharp";
      c.n = {1, 31, 32, 33, 700, 2047, 2048, 1500};
      c.qmag = 3.0f;
      attention_case(c, 30);
    }
    {
      // More keys than the kernel stages slot indices for at once (2048): the refill path.
      AttnCase c = decode_case(3, 5000);
      c.label = "long rows n=5000/2049/2048 H=128 C=512 dr=64 (slot-index refill)";
      c.n = {5000, 2049, 2048};
      attention_case(c, 32);
    }
    {
      AttnCase c{"prefill 1024 rows all causal H=128 C=512 dr=64", 1024, 128, 512, 64, 1024, {}, 1024, 1.0f, 31, true};
      for (int r = 0; r < 1024; ++r) c.n.push_back(r + 1);
      attention_case(c, 40);
    }
    absorb_checks(3, 4, 16, 8, 24, 128, false, false, 50);
    absorb_checks(11, 4, 16, 8, 24, 128, true, false, 51);
    absorb_checks(5, 4, 16, 8, 24, 128, false, true, 54);
    absorb_checks(1, 128, 128, 64, 128, 512, true, false, 52);
    absorb_checks(64, 128, 128, 64, 128, 512, true, true, 53);
    if (!no_bench) {
      std::vector<std::pair<std::string, AttnCase>> cases;
      for (int64_t B : {1, 8, 64, 128}) {
        AttnCase c = decode_case(B, 2048);
        cases.push_back({"decode " + std::to_string(B) + " rows, top-k 2048 of 32768", c});
      }
      AttnCase p{"", 1024, 128, 512, 64, 1024, {}, 1024, 1.0f, 1, true};
      for (int r = 0; r < 1024; ++r) p.n.push_back(r + 1);
      cases.push_back({"prefill 1024 rows all causal", p});
      bench(cases);
      std::printf("RESULT FlashMLA (spec/benchmarks.md): 128 rows (batch 64 x s_q 2), top-k 2048, FP8 cache: 187 us, "
                  "390 TFLOP/s; the issue's minimum is half of that rate\n");
    }
  } catch (const std::exception& e) {
    std::printf("CHECK %-72s FAIL\nerror: %s\n", "exception", e.what());
    return 1;
  }
  std::printf("RESULT %s\n", g_fail ? "FAIL" : "PASS");
  return g_fail ? 1 : 0;
}
