#include "kernels/cpu/hadamard.h"

#include <stdexcept>
#include <string>

namespace ds::cpu {

void hadamard_transform(float* x, int64_t n, float scale) {
  if (n <= 0 || (n & (n - 1)) != 0)
    throw std::invalid_argument("hadamard_transform: length " + std::to_string(n) + " is not a power of two");
  for (int64_t h = 1; h < n; h *= 2)
    for (int64_t i = 0; i < n; i += 2 * h)
      for (int64_t j = i; j < i + h; ++j) {
        float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
  for (int64_t i = 0; i < n; ++i) x[i] *= scale;
}

}  // namespace ds::cpu
