// Walsh-Hadamard rotation of the indexer q/k (spec/model.md 5.2 step 6).
#pragma once
#include <cstdint>

namespace ds::cpu {

/// In place: x <- scale * H_n x with H the Sylvester Hadamard matrix in natural order,
/// H[i][j] = (-1)^popcount(i & j) (fast butterfly, FP32). n must be a power of two (throws
/// std::invalid_argument otherwise). The indexer uses scale = n^-0.5 and rounds the result to BF16
/// in official mode (the caller does that).
void hadamard_transform(float* x, int64_t n, float scale);

}  // namespace ds::cpu
