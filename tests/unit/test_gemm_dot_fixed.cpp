// The CPU GEMM's panel kernels (vectorized 16-lane sums, cloned for AVX-512/AVX2/baseline) give
// exactly dot_fixed's bits for every output, for every M, K (with and without a K % 16 tail) and
// weight dtype: the property batch invariance rests on (D27, docs/engine.md). The official FP8 path
// (spec 9.2) equals its formula: per 128-block dot_fixed of the FP8 values, times a_scale * w_scale,
// summed in block order.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "common/numeric.h"
#include "kernels/cpu/act_quant.h"
#include "kernels/cpu/gemm.h"

using namespace ds;
using namespace ds::cpu;

namespace {

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

void check(DType dt, int64_t M, int64_t N, int64_t K, bool bf16_out) {
  std::mt19937 rng(uint32_t(M * 1000 + N * 10 + K));
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(size_t(M * K)), wf(size_t(N * K));
  for (auto& v : x) v = nd(rng);
  for (auto& v : wf) v = nd(rng);
  // Signed zeros and exact cancellations exercise the tree's operand order.
  x[0] = -0.f;
  std::vector<uint8_t> raw;
  if (dt == DType::BF16) {
    raw.resize(size_t(N * K) * 2);
    for (int64_t i = 0; i < N * K; ++i) {
      const uint16_t h = f32_to_bf16(wf[size_t(i)]);
      std::memcpy(raw.data() + i * 2, &h, 2);
      wf[size_t(i)] = bf16_to_f32(h);
    }
  } else {
    raw.resize(size_t(N * K) * 4);
    std::memcpy(raw.data(), wf.data(), raw.size());
  }
  WeightView w{dt, N, K, raw.data(), nullptr};
  std::vector<float> y(size_t(M * N));
  gemm(x.data(), M, w, y.data(), GemmOptions{false, bf16_out});
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      float want = dot_fixed(x.data() + m * K, wf.data() + n * K, K);
      if (bf16_out) want = round_bf16(want);
      ASSERT_EQ(bits(y[size_t(m * N + n)]), bits(want)) << "M=" << M << " N=" << N << " K=" << K << " at " << m << "," << n;
    }
}

}  // namespace

TEST(GemmDotFixed, EveryOutputHasDotFixedBits) {
  for (int64_t K : {1, 7, 16, 33, 128, 256, 300})
    for (int64_t M : {1, 3, 16})
      for (int64_t N : {1, 5, 19, 64}) {
        check(DType::F32, M, N, K, false);
        check(DType::BF16, M, N, K, true);
      }
}

TEST(GemmDotFixed, Fp8PathEqualsBlockFormula) {
  for (int64_t M : {1, 3, 16})
    for (int64_t N : {1, 6, 21, 130})
      for (int64_t K : {128, 256, 384}) {
        std::mt19937 rng(uint32_t(M * 7 + N * 13 + K));
        std::normal_distribution<float> nd(0.f, 2.f);
        std::vector<float> x(size_t(M * K));
        for (auto& v : x) v = nd(rng);
        std::vector<uint8_t> codes(size_t(N * K));
        for (auto& c : codes) {
          c = uint8_t(rng() & 0xff);
          if ((c & 0x7f) == 0x7f) c = 0x3c;  // no NaN codes
        }
        const int64_t kb = K / 128, nb = (N + 127) / 128;
        std::vector<float> sinv(size_t(nb * kb));
        for (auto& v : sinv) v = std::ldexp(1.0f, int(rng() % 9) - 4);
        WeightView w{DType::F8_E4M3, N, K, codes.data(), sinv.data()};
        for (bool bf16 : {false, true}) {
          std::vector<float> y(size_t(M * N));
          gemm(x.data(), M, w, y.data(), GemmOptions{true, bf16});
          std::vector<float> xq(size_t(M * K)), xs(size_t(M * kb)), wv(static_cast<size_t>(K));
          act_quant(x.data(), M, K, xq.data(), xs.data());
          for (int64_t n = 0; n < N; ++n) {
            for (int64_t k = 0; k < K; ++k) wv[size_t(k)] = fp8_e4m3_to_f32(codes[size_t(n * K + k)]);
            for (int64_t m = 0; m < M; ++m) {
              float acc = 0.f;
              for (int64_t b = 0; b < kb; ++b)
                acc += dot_fixed(xq.data() + m * K + b * 128, wv.data() + b * 128, 128) *
                       (xs[size_t(m * kb + b)] * sinv[size_t((n / 128) * kb + b)]);
              if (bf16) acc = round_bf16(acc);
              ASSERT_EQ(bits(y[size_t(m * N + n)]), bits(acc)) << "M=" << M << " N=" << N << " K=" << K;
            }
          }
        }
      }
}
