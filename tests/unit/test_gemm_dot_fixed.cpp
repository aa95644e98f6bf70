// The CPU GEMM's panel kernels (vectorized 16-lane sums, cloned for AVX-512/AVX2/baseline) give
// exactly dot_fixed's bits for every output, for every M, K (with and without a K % 16 tail) and
// weight dtype: the property batch invariance rests on (D27, docs/engine.md).
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "common/numeric.h"
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
