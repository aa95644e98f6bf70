// Unit tests of the CPU kernels on hand-computed values (spec/model.md 4.4, 5.2, 6, 9.2).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "common/numeric.h"
#include "kernels/cpu/act_quant.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/hadamard.h"
#include "kernels/cpu/index_score.h"
#include "kernels/cpu/layernorm.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/router.h"

using namespace ds;
using namespace ds::cpu;

TEST(ActQuant, Ue8m0ScalesAtTheBoundaries) {
  EXPECT_EQ(ue8m0_scale(448.0f), 1.0f);          // 448/448 = 1 = 2^0
  EXPECT_EQ(ue8m0_scale(449.0f), 2.0f);          // just above -> next power of two
  EXPECT_EQ(ue8m0_scale(0.0f), std::ldexp(1.0f, -22));  // floor 1e-4: ceil(log2(1e-4/448)) = -22
  EXPECT_EQ(ue8m0_scale(896.0f), 2.0f);
  EXPECT_EQ(ue8m0_scale(224.0f), 0.5f);
  EXPECT_EQ(ue8m0_scale(1.0f), std::ldexp(1.0f, -8));  // 1/448 = 2^-8.8 -> 2^-8
}

TEST(ActQuant, QuantizesPerGroupWithRoundToNearestEven) {
  std::vector<float> x(256, 0.f), q(256), s(2);
  x[0] = 449.0f;   // group 0: amax 449 -> s = 2
  x[1] = 1.0f;     // 0.5 exactly representable
  x[2] = 449.0f / 2 * 2;  // duplicate amax
  x[128] = 3.0f;   // group 1: amax 3 -> 3/448 = 2^-7.2 -> s = 2^-7, q = 384
  x[129] = -0.01f; // -0.01 * 128 = -1.28 -> E4M3 spacing 0.125 in [1,2): -1.25
  act_quant(x.data(), 1, 256, q.data(), s.data());
  EXPECT_EQ(s[0], 2.0f);
  EXPECT_EQ(q[0], 224.0f);  // 224.5 -> 224 (E4M3 spacing 16 in [128, 256))
  EXPECT_EQ(q[1], 0.5f);
  EXPECT_EQ(s[1], std::ldexp(1.0f, -7));
  EXPECT_EQ(q[128], 384.0f);
  EXPECT_EQ(q[129], -1.25f);
  EXPECT_THROW(act_quant(x.data(), 1, 100, q.data(), s.data()), std::invalid_argument);
}

// Builds an FP8 weight [N, K] with codes for `vals` (exactly representable) and given block scales.
struct Fp8Weight {
  std::vector<uint8_t> codes;
  std::vector<float> scales;
  WeightView view;
};
static Fp8Weight make_fp8(int64_t N, int64_t K, const std::vector<float>& vals, const std::vector<float>& scales) {
  Fp8Weight w;
  for (float v : vals) w.codes.push_back(f32_to_fp8_e4m3(v));
  w.scales = scales;
  w.view = WeightView{DType::F8_E4M3, N, K, w.codes.data(), w.scales.data()};
  return w;
}

TEST(Gemm, Fp8BlockScaledExactAndOfficial) {
  // W [2, 256]: row 0 = 1.0 everywhere, row 1 = 0.5 in block 0 and -2 in block 1.
  // Scales [1, 2]: block 0 x 0.25, block 1 x 4.
  std::vector<float> vals(512);
  for (int k = 0; k < 256; ++k) {
    vals[k] = 1.0f;
    vals[256 + k] = k < 128 ? 0.5f : -2.0f;
  }
  auto w = make_fp8(2, 256, vals, {0.25f, 4.0f});
  std::vector<float> x(256, 1.0f), y(2);
  for (int k = 128; k < 256; ++k) x[k] = 2.0f;
  // Exact: row 0 = 128*1*0.25 + 128*2*4 = 32 + 1024 = 1056; row 1 = 128*0.125 + 128*2*(-8) = 16 - 2048.
  gemm(x.data(), 1, w.view, y.data(), GemmOptions{false, false});
  EXPECT_EQ(y[0], 1056.0f);
  EXPECT_EQ(y[1], -2032.0f);
  // Official: activations 1 and 2 quantize losslessly (scales 2^-8 and 2^-7), so same values.
  gemm(x.data(), 1, w.view, y.data(), GemmOptions{true, true});
  EXPECT_EQ(y[0], 1056.0f);
  EXPECT_EQ(y[1], -2032.0f);
  // Official with an activation that FP8 rounds: x = 1.1 -> s = 2^-8, 1.1*256 = 281.6 -> 288 -> 1.125.
  std::vector<float> x2(256, 1.1f);
  gemm(x2.data(), 1, w.view, y.data(), GemmOptions{true, false});
  EXPECT_FLOAT_EQ(y[0], 128 * 1.125f * 0.25f + 128 * 1.125f * 4.0f);
  // Partial row block: N = 3 rows with scales [1, 1] still works; FP8 path needs K % 128 == 0.
  auto w3 = make_fp8(1, 100, std::vector<float>(100, 1.0f), {1.0f});
  std::vector<float> x3(100, 1.0f), y3(1);
  gemm(x3.data(), 1, w3.view, y3.data(), GemmOptions{false, false});
  EXPECT_EQ(y3[0], 100.0f);
  EXPECT_THROW(gemm(x3.data(), 1, w3.view, y3.data(), GemmOptions{true, true}), std::invalid_argument);
}

TEST(Gemm, Bf16WeightsAndBf16Output) {
  std::vector<uint16_t> wb = {f32_to_bf16(1.5f), f32_to_bf16(-2.0f), f32_to_bf16(0.25f), f32_to_bf16(4.0f)};
  WeightView w{DType::BF16, 2, 2, reinterpret_cast<const uint8_t*>(wb.data()), nullptr};
  std::vector<float> x = {2.0f, 1.0f / 3.0f}, y(2);
  gemm(x.data(), 1, w, y.data(), GemmOptions{false, false});
  EXPECT_FLOAT_EQ(y[0], 3.0f - 2.0f / 3.0f);
  EXPECT_FLOAT_EQ(y[1], 0.5f + 4.0f / 3.0f);
  gemm(x.data(), 1, w, y.data(), GemmOptions{false, true});
  EXPECT_EQ(y[0], round_bf16(3.0f - 2.0f / 3.0f));
}

TEST(Gemm, BatchInvariantAndThreadCountInvariant) {
  // Every row of a 7-row GEMM must equal the 1-row GEMM of that row bit for bit, with 1 or 2 threads.
  const int64_t N = 300, K = 512, M = 7;
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> vals(N * K), x(M * K);
  for (auto& v : vals) v = round_fp8_e4m3(nd(rng));
  for (auto& v : x) v = nd(rng);
  auto w = make_fp8(N, K, vals, std::vector<float>(3 * 4, 0.01f));
  for (bool official : {false, true}) {
    GemmOptions o{official, official};
    std::vector<float> yb(M * N), y1(N);
    set_num_threads(2);
    gemm(x.data(), M, w.view, yb.data(), o);
    set_num_threads(1);
    for (int64_t m = 0; m < M; ++m) {
      gemm(x.data() + m * K, 1, w.view, y1.data(), o);
      for (int64_t n = 0; n < N; ++n) ASSERT_EQ(y1[n], yb[m * N + n]) << "row " << m << " col " << n;
    }
  }
  set_num_threads(2);
}

TEST(Rope, YarnCorrectionRangeAndFrequencyRatios) {
  YarnParams y{true, 40.0, 4096, 32.0, 1.0};
  int low = 0, high = 0;
  yarn_correction_range(64, 10000.0, y, &low, &high);
  EXPECT_EQ(low, 10);
  EXPECT_EQ(high, 23);
  auto base = rope_frequencies(64, 10000.0, YarnParams{});
  auto f = rope_frequencies(64, 10000.0, y);
  ASSERT_EQ(f.size(), 32u);
  EXPECT_FLOAT_EQ(base[1], 1.0f / std::pow(10000.0f, 2.0f / 64.0f));
  for (int i = 0; i <= 10; ++i) EXPECT_EQ(f[i], base[i]) << i;
  const double ratios[12] = {1.081, 1.176, 1.290, 1.429, 1.600, 1.818, 2.105, 2.500, 3.077, 4.000, 5.714, 10.0};
  for (int i = 11; i <= 22; ++i) EXPECT_NEAR(base[i] / f[i], ratios[i - 11], 1e-3) << i;  // spec 4.4, 3 digits
  for (int i = 23; i < 32; ++i) EXPECT_NEAR(base[i] / f[i], 40.0, 1e-4) << i;
}

TEST(Rope, InterleavedAndHalfSplitPairs) {
  const float c[2] = {0.0f, 1.0f}, s[2] = {1.0f, 0.0f};  // pair 0 rotated by 90 degrees, pair 1 by 0
  float a[4] = {1.0f, 2.0f, 3.0f, 4.0f};
  rope_interleaved(a, c, s, 2, false);  // pairs (0,1), (2,3)
  EXPECT_EQ(a[0], -2.0f);
  EXPECT_EQ(a[1], 1.0f);
  EXPECT_EQ(a[2], 3.0f);
  EXPECT_EQ(a[3], 4.0f);
  float b[4] = {1.0f, 2.0f, 3.0f, 4.0f};
  rope_half_split(b, c, s, 2, false);  // pairs (0,2), (1,3)
  EXPECT_EQ(b[0], -3.0f);
  EXPECT_EQ(b[2], 1.0f);
  EXPECT_EQ(b[1], 2.0f);
  EXPECT_EQ(b[3], 4.0f);
}

TEST(Hadamard, BasisVectorGivesSignRow) {
  std::vector<float> x(8, 0.f);
  x[3] = 1.0f;
  hadamard_transform(x.data(), 8, 1.0f / std::sqrt(8.0f));
  const float v = 1.0f / std::sqrt(8.0f);
  const float expect[8] = {v, -v, -v, v, v, -v, -v, v};  // (-1)^popcount(i & 3)
  for (int i = 0; i < 8; ++i) EXPECT_FLOAT_EQ(x[i], expect[i]) << i;
  hadamard_transform(x.data(), 8, 1.0f / std::sqrt(8.0f));  // orthonormal and symmetric: back to e3
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(x[i], i == 3 ? 1.0f : 0.0f, 1e-7) << i;
  EXPECT_THROW(hadamard_transform(x.data(), 6, 1.0f), std::invalid_argument);
}

TEST(RmsNorm, HandComputedValues) {
  const float x[4] = {1, 2, 3, 4}, w[4] = {1, 1, 1, 2};
  float y[4];
  rmsnorm(x, w, 4, 1e-6f, y, false);  // mean(x^2) = 7.5
  const double e[4] = {0.3651483, 0.7302967, 1.0954450, 2.9211868};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(y[i], e[i], 2e-7) << i;
  // Fused residual: r <- bf16(f + r), y from the unrounded sum, rounded to BF16.
  float r[4] = {1, 2, 3, 4};
  const float f[4] = {0.001f, 0, 0, 0};
  add_rmsnorm(f, r, w, 4, 1e-6f, y, true);
  EXPECT_EQ(r[0], 1.0f);  // 1.001 rounds to 1 in BF16 (spacing 2^-7)
  const double inv = 1.0 / std::sqrt((1.001 * 1.001 + 4 + 9 + 16) / 4.0 + 1e-6);
  EXPECT_EQ(y[0], round_bf16(float(1.001 * inv)));
  EXPECT_EQ(y[3], round_bf16(float(8 * inv)));
}

TEST(LayerNorm, HandComputedValues) {
  const float x[4] = {1, 2, 3, 6}, w[4] = {1, 2, 1, 1}, b[4] = {0, 0, 0.5f, 0};
  float y[4];
  layernorm(x, w, b, 4, 0.0f, y, false);  // mean 3, var (4+1+0+9)/4 = 3.5
  const double sd = std::sqrt(3.5);
  EXPECT_NEAR(y[0], -2 / sd, 1e-6);
  EXPECT_NEAR(y[1], -2 / sd, 1e-6);
  EXPECT_NEAR(y[2], 0.5, 1e-6);
  EXPECT_NEAR(y[3], 3 / sd, 1e-6);
}

TEST(Router, BiasChangesSelectionButNotWeights) {
  // 8 experts in 2 groups of 4, keep 1 group, top-2, scale 2.5.
  const float z[8] = {2, 1, 0, -1, 3, -2, 0.5f, -0.5f};
  // sigmoid: .8808 .7311 .5 .2689 | .9526 .1192 .6225 .3775
  RouterParams p{8, 2, 1, 2, true, 2.5f};
  int ids[2];
  float wts[2];
  const float zero[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  route(z, zero, p, ids, wts);  // top-2 group sums 1.6119 vs 1.5751 -> group 0 -> experts 0, 1
  EXPECT_EQ(ids[0], 0);
  EXPECT_EQ(ids[1], 1);
  EXPECT_NEAR(wts[0], 1.3661228, 1e-6);
  EXPECT_NEAR(wts[1], 1.1338772, 1e-6);
  // Bias +0.5 on expert 6: group 1 top-2 sum 0.9526 + 1.1225 = 2.0751 wins -> experts 4 and 6,
  // weights from the UNBIASED sigmoid: .9526/(.9526+.6225)*2.5 and .6225/(...)*2.5.
  const float bias[8] = {0, 0, 0, 0, 0, 0, 0.5f, 0};
  route(z, bias, p, ids, wts);
  EXPECT_EQ(ids[0], 4);
  EXPECT_EQ(ids[1], 6);
  EXPECT_NEAR(wts[0], 1.5119903, 1e-6);
  EXPECT_NEAR(wts[1], 0.9880097, 1e-6);
  // No bias tensor at all: the demo scores groups by their max (.8808 vs .9526) -> group 1.
  route(z, nullptr, p, ids, wts);
  EXPECT_EQ(ids[0], 4);
  EXPECT_EQ(ids[1], 6);
}

TEST(IndexScore, WeightedReluSumAndTopkTies) {
  // 2 heads, D = 2, 3 keys.
  const float q[4] = {1, 0, 0, 1};
  const float w[2] = {2.0f, -1.0f};
  const float keys[6] = {1, 1, -1, 2, 3, -1};
  const float ks[3] = {1.0f, 0.5f, 2.0f};
  float out[3];
  index_scores(q, w, 2, 2, keys, ks, 3, out);
  EXPECT_FLOAT_EQ(out[0], (2 * 1 - 1 * 1) * 1.0f);  // 1
  EXPECT_FLOAT_EQ(out[1], (0 - 1 * 2) * 0.5f);      // ReLU kills head 0: -1
  EXPECT_FLOAT_EQ(out[2], (2 * 3 - 0) * 2.0f);      // ReLU kills head 1: 12
  const float sc[5] = {1, 5, 5, 0, 5};
  auto t = topk_indices(sc, 5, 2);  // three-way tie at 5 -> lower positions 1, 2
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0], 1);
  EXPECT_EQ(t[1], 2);
  EXPECT_EQ(topk_indices(sc, 5, 9).size(), 5u);
}
