// The deterministic generator of `deepserve make-model` (D25; docs/make_model.md "Generator").
// Counter-based: element i of a tensor depends only on (tensor name, preset seed, i), so a Python
// script reproduces every value without numpy.
#pragma once
#include <cstdint>
#include <string_view>

namespace ds::mm {

/// FNV-1a 64-bit hash of the bytes of `s` (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
uint64_t fnv1a64(std::string_view s);

/// splitmix64 output number `i` (0-based) of the stream whose state starts at `key`:
/// z = key + (i + 1) * 0x9e3779b97f4a7c15 (mod 2^64), then the splitmix64 finalizer.
uint64_t splitmix64_at(uint64_t key, uint64_t i);

/// Uniform in [0, 1): top 53 bits of splitmix64_at(key, i) times 2^-53 (exact in double).
double uniform_at(uint64_t key, uint64_t i);

/// Standard normal number `i` by Box-Muller on the uniform pair (u1, u2) = (U[2k], U[2k+1]),
/// k = i / 2: r = sqrt(-2 ln(1 - u1)), t = 6.283185307179586 * u2; even i -> r cos t,
/// odd i -> r sin t. All in double (glibc libm).
double normal_at(uint64_t key, uint64_t i);

/// Fills out[0..n) with float(mean + stddev * normal_at(key, i)) (the sum in double, then
/// rounded to the nearest float).
void fill_normal(uint64_t key, double mean, double stddev, float* out, uint64_t n);

}  // namespace ds::mm
