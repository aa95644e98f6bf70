// GPU test + benchmark of ds::cuda::rope_apply against its CPU twins ds::cpu::rope_interleaved /
// rope_half_split with ds::cpu::rope_cos_sin (spec/model.md 4.4), run on the device machine by
// tests/gpu/run_all.sh.
//
// Correctness on random vectors at random positions up to 163839 (the YaRN table of the real
// config: 64 rope dims, theta 1e4, factor 40, original 4096, beta 32/1):
// - F32 output: both sides form the same FP32 angle and the same separately rounded products;
//   only cos/sin differ (CUDA sincosf <= 2 ulp, glibc <= 1 ulp), so each output is off by a few
//   ulp of the pair's norm: normwise error ~3e-7. Tolerance 2e-6 (a wrong frequency, position or
//   pairing gives > 1e-2).
// - BF16 outputs: each side rounds its own FP32 value, which can land on the neighbouring BF16
//   value near a midpoint: every element within 2^-7 of its pair's norm (see the loop) and
//   normwise <= 1e-4 (measured 8e-6).
// - Elements outside the rotary part (the nope dims of each head) must be unchanged, bit for bit.
// Shapes: MLA q_pe (128 heads of 192, rope at 128) and k_pe (576-wide rows, rope at 512),
// interleaved; indexer q (64 heads of 128, rope first) and k (one 128 head), half-split; a tiny
// plain-RoPE case. Speed: rotated bytes read + written (BF16) over the median CUDA-graph time,
// buffers rotated beyond 4x the L2, against the copy bandwidth of the same run.
//
// Usage: gpu_rope [--no-bench]. Prints CHECK/RESULT lines and a table; exit 0 iff all pass.
#include <cuda_runtime.h>

#include <cstring>
#include <random>

#include "common/numeric.h"
#include "gpu_test_util.h"
#include "kernels/cpu/rope.h"
#include "kernels/rope.h"

namespace {

using namespace ds::gputest;
using ds::cuda::RopeLayout;
using ds::cuda::RopeType;

std::vector<float> real_freqs() {
  ds::cpu::YarnParams y;
  y.enabled = true;
  y.factor = 40.0;
  y.original_max_position_embeddings = 4096;
  y.beta_fast = 32.0;
  y.beta_slow = 1.0;
  return ds::cpu::rope_frequencies(64, 10000.0, y);
}

struct Case {
  const char* label;
  int64_t tokens, heads, head_dim, offset;
  RopeLayout layout;
  RopeType type;
  bool bf16_out;
};

void correctness(const Case& c, const std::vector<float>& freqs, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int nf = int(freqs.size());
  const int64_t n = c.tokens * c.heads * c.head_dim;
  std::vector<float> x(static_cast<size_t>(n));
  std::uniform_real_distribution<float> u(-3.f, 3.f);
  const bool bf16_store = c.type == RopeType::BF16;
  for (auto& v : x) v = bf16_store ? ds::round_bf16(u(rng)) : u(rng);
  std::vector<int64_t> pos(size_t(c.tokens));
  std::uniform_int_distribution<int64_t> up(0, 163839);
  for (size_t t = 0; t < pos.size(); ++t) pos[t] = t == 0 ? 0 : (t == 1 ? 163839 : up(rng));
  // CPU twin
  std::vector<float> ref = x, cs(static_cast<size_t>(nf)), sn(static_cast<size_t>(nf));
  for (int64_t t = 0; t < c.tokens; ++t) {
    ds::cpu::rope_cos_sin(freqs, pos[size_t(t)], cs.data(), sn.data());
    for (int64_t h = 0; h < c.heads; ++h) {
      float* p = &ref[size_t((t * c.heads + h) * c.head_dim + c.offset)];
      if (c.layout == RopeLayout::Interleaved)
        ds::cpu::rope_interleaved(p, cs.data(), sn.data(), nf, c.bf16_out || bf16_store);
      else
        ds::cpu::rope_half_split(p, cs.data(), sn.data(), nf, c.bf16_out || bf16_store);
    }
  }
  DevBuf<int64_t> dpos(pos);
  DevBuf<float> dfreq(freqs);
  std::vector<float> got(x.size());
  ds::cuda::RopeView v{nullptr, c.type, c.tokens, c.heads, c.heads * c.head_dim, c.head_dim, c.offset};
  if (bf16_store) {
    std::vector<uint16_t> xb(x.size());
    for (size_t i = 0; i < x.size(); ++i) xb[i] = ds::f32_to_bf16(x[i]);
    DevBuf<uint16_t> dx(xb);
    v.x = dx.p;
    ds::cuda::rope_apply(v, dpos.p, dfreq.p, nf, c.layout, c.bf16_out, nullptr);
    DS_CUDA_CHECK(cudaDeviceSynchronize());
    auto gb = dx.download();
    for (size_t i = 0; i < gb.size(); ++i) got[i] = ds::bf16_to_f32(gb[i]);
  } else {
    DevBuf<float> dx(x);
    v.x = dx.p;
    ds::cuda::rope_apply(v, dpos.p, dfreq.p, nf, c.layout, c.bf16_out, nullptr);
    DS_CUDA_CHECK(cudaDeviceSynchronize());
    got = dx.download();
  }
  // Rounded outputs: each side's BF16 rounding moves an element by < 1 BF16 ulp of itself, and the
  // FP32 values differ by a few FP32 ulp of the pair norm; under cancellation (|y| << pair norm)
  // that is many BF16 ulp of y, so the per-element bound is 2^-7 of the pair norm, not of |y|.
  int64_t outside_changed = 0, far = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t d = i % c.head_dim;
    const bool rot = d >= c.offset && d < c.offset + 2 * nf;
    if (!rot) outside_changed += std::memcmp(&got[size_t(i)], &x[size_t(i)], 4) != 0;
    if (rot && (c.bf16_out || bf16_store)) {
      const int64_t k = d - c.offset;
      const int64_t pk = c.layout == RopeLayout::Interleaved ? (k ^ 1) : (k + nf) % (2 * nf);
      const double pair = std::hypot(double(ref[size_t(i)]), double(ref[size_t(i - k + pk)]));
      far += !(std::fabs(double(got[size_t(i)]) - ref[size_t(i)]) <= std::ldexp(pair, -7));
    }
  }
  const double err = normwise(got, ref);
  const bool rounded = c.bf16_out || bf16_store;
  const double tol = rounded ? 1e-4 : 2e-6;
  char name[220];
  std::snprintf(name, sizeof name, "rope %s T=%ld H=%ld %s %s%s: err=%.2e tol=%.0e far=%ld, outside changed=%ld",
                c.label, long(c.tokens), long(c.heads), c.layout == RopeLayout::Interleaved ? "interleaved" : "half-split",
                bf16_store ? "bf16" : "f32", c.bf16_out ? "->bf16" : "", err, tol, long(far), long(outside_changed));
  check(err <= tol && outside_changed == 0 && far == 0, name);
}

PerfRow bench(const char* label, int64_t tokens, int64_t heads, int64_t head_dim, int64_t offset, RopeLayout layout,
              const std::vector<float>& freqs, double ceiling) {
  const size_t n = size_t(tokens * heads * head_dim);
  const int copies = copies_beyond_l2(n * 2);
  std::vector<uint16_t> h(n * copies, ds::f32_to_bf16(0.5f));
  DevBuf<uint16_t> x(h);
  std::vector<int64_t> pos(static_cast<size_t>(tokens));
  for (size_t t = 0; t < pos.size(); ++t) pos[t] = int64_t(t * 37 % 163840);
  DevBuf<int64_t> dpos(pos);
  DevBuf<float> dfreq(freqs);
  const double us = time_us(
      [&](cudaStream_t st, int c) {
        ds::cuda::RopeView v{x.p + c * n, RopeType::BF16, tokens, heads, heads * head_dim, head_dim, offset};
        ds::cuda::rope_apply(v, dpos.p, dfreq.p, int(freqs.size()), layout, false, st);
      },
      copies);
  char shape[96];
  std::snprintf(shape, sizeof shape, "%s T=%ld x %ld heads", label, long(tokens), long(heads));
  return perf_row(shape, double(tokens * heads) * double(freqs.size()) * 2 * 2 * 2 + double(tokens) * 8, us, ceiling);
}

}  // namespace

int main(int argc, char** argv) try {
  const bool do_bench = !(argc > 1 && std::strcmp(argv[1], "--no-bench") == 0);
  const auto freqs = real_freqs();
  // Tiny: plain RoPE over 16 dims at offset 8 of a 24-wide head, both layouts.
  const auto tiny = ds::cpu::rope_frequencies(16, 10000.0, {});
  correctness({"tiny", 3, 2, 24, 8, RopeLayout::Interleaved, RopeType::F32, false}, tiny, 1);
  correctness({"tiny", 3, 2, 24, 8, RopeLayout::HalfSplit, RopeType::F32, false}, tiny, 2);
  correctness({"tiny", 5, 3, 16, 0, RopeLayout::Interleaved, RopeType::BF16, false}, tiny, 3);
  // Full DeepSeek-V3.2: MLA q_pe (128 heads x 192, rope at 128) and k_pe (576, rope at 512);
  // indexer q (64 heads x 128, rope first 64) and k (one 128 head).
  correctness({"mla q_pe", 16, 128, 192, 128, RopeLayout::Interleaved, RopeType::F32, false}, freqs, 11);
  correctness({"mla q_pe", 16, 128, 192, 128, RopeLayout::Interleaved, RopeType::F32, true}, freqs, 12);
  correctness({"mla q_pe", 64, 128, 192, 128, RopeLayout::Interleaved, RopeType::BF16, false}, freqs, 13);
  correctness({"mla k_pe", 256, 1, 576, 512, RopeLayout::Interleaved, RopeType::BF16, false}, freqs, 14);
  correctness({"indexer q", 16, 64, 128, 0, RopeLayout::HalfSplit, RopeType::F32, false}, freqs, 15);
  correctness({"indexer q", 64, 64, 128, 0, RopeLayout::HalfSplit, RopeType::BF16, false}, freqs, 16);
  correctness({"indexer k", 256, 1, 128, 0, RopeLayout::HalfSplit, RopeType::F32, true}, freqs, 17);
  bool throws = false;
  try {
    ds::cuda::rope_apply({}, nullptr, nullptr, 0, RopeLayout::Interleaved, false, nullptr);
  } catch (const std::invalid_argument&) {
    throws = true;
  }
  check(throws, "n_freq = 0 throws std::invalid_argument");
  if (do_bench) {
    const double ceiling = copy_gbps();
    std::vector<PerfRow> rows;
    for (int64_t t : {1, 128, 4096}) rows.push_back(bench("mla q_pe", t, 128, 192, 128, RopeLayout::Interleaved, freqs, ceiling));
    for (int64_t t : {1, 128, 4096}) rows.push_back(bench("indexer q", t, 64, 128, 0, RopeLayout::HalfSplit, freqs, ceiling));
    print_perf("rope_apply (bf16)", rows, ceiling);
  }
  std::printf("ROPE %s (%d failed checks)\n", g_fail ? "FAIL" : "PASS", g_fail);
  return g_fail ? 1 : 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "gpu_rope: %s\n", e.what());
  return 2;
}
