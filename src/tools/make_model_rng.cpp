// Counter-based splitmix64 / Box-Muller generator of make-model (docs/make_model.md).
#include "tools/make_model_rng.h"

#include <cmath>

namespace ds::mm {

uint64_t fnv1a64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

uint64_t splitmix64_at(uint64_t key, uint64_t i) {
  uint64_t z = key + (i + 1) * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double uniform_at(uint64_t key, uint64_t i) {
  return double(splitmix64_at(key, i) >> 11) * 0x1p-53;
}

namespace {
// Kept separate so the compiler cannot fuse multiply and add (docs: no FMA anywhere).
double box_muller(double u1, double u2, bool odd) {
  const double r = std::sqrt(-2.0 * std::log(1.0 - u1));
  const double t = 6.283185307179586 * u2;
  return odd ? r * std::sin(t) : r * std::cos(t);
}
}  // namespace

double normal_at(uint64_t key, uint64_t i) {
  const uint64_t k = i / 2;
  return box_muller(uniform_at(key, 2 * k), uniform_at(key, 2 * k + 1), (i & 1) != 0);
}

void fill_normal(uint64_t key, double mean, double stddev, float* out, uint64_t n) {
  for (uint64_t k = 0; 2 * k < n; ++k) {
    const double u1 = uniform_at(key, 2 * k), u2 = uniform_at(key, 2 * k + 1);
    const double r = std::sqrt(-2.0 * std::log(1.0 - u1));
    const double t = 6.283185307179586 * u2;
    volatile double p0 = stddev * (r * std::cos(t));  // volatile: no fused multiply-add
    out[2 * k] = float(mean + p0);
    if (2 * k + 1 < n) {
      volatile double p1 = stddev * (r * std::sin(t));
      out[2 * k + 1] = float(mean + p1);
    }
  }
}

}  // namespace ds::mm
