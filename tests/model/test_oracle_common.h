// Shared helpers of the oracle parity tests (docs/numerics.md "Oracle parity"): fixture loading
// (scripts/reference/oracle_common.py format), a tiny-a checkpoint made once, normwise error,
// and SHA-256 (FIPS 180-4) for the preset hash check.
#pragma once
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "tools/make_model.h"

namespace oracle {

/// A fixture: NAME.json (metadata + array table) and NAME.bin (FP32 little-endian arrays).
struct Fixture {
  nlohmann::json meta;
  std::vector<float> data;
  /// Array `key` as a flat FP32 vector; throws naming the key if absent.
  std::vector<float> array(const std::string& key) const {
    if (!meta["arrays"].contains(key)) throw std::runtime_error("fixture array missing: " + key);
    const auto& a = meta["arrays"][key];
    size_t n = 1;
    for (auto d : a["shape"]) n *= d.get<size_t>();
    const size_t off = a["offset"].get<size_t>();
    if (off + n > data.size()) throw std::runtime_error("fixture array past the .bin end: " + key);
    return std::vector<float>(data.begin() + long(off), data.begin() + long(off + n));
  }
};

/// The fixture at `base` + ".json" / ".bin"; throws naming the file when one cannot be opened.
inline Fixture load_fixture_at(const std::string& base) {
  Fixture f;
  std::ifstream js(base + ".json");
  if (!js) throw std::runtime_error("cannot open " + base + ".json");
  f.meta = nlohmann::json::parse(js);
  std::ifstream bin(base + ".bin", std::ios::binary | std::ios::ate);
  if (!bin) throw std::runtime_error("cannot open " + base + ".bin");
  const auto bytes = size_t(bin.tellg());
  f.data.resize(bytes / 4);
  bin.seekg(0);
  bin.read(reinterpret_cast<char*>(f.data.data()), long(bytes));
  return f;
}

/// tests/fixtures/oracle/NAME of this source tree.
inline Fixture load_fixture(const std::string& name) {
  return load_fixture_at(std::string(DEEPSERVE_SOURCE_DIR) + "/tests/fixtures/oracle/" + name);
}

/// tiny-a from make_model, made once per test binary and removed at exit.
inline const std::string& tiny_a_dir() {
  struct Dir {
    std::string path;
    Dir() {
      path = (std::filesystem::temp_directory_path() / ("ds_oracle_" + std::to_string(::getpid()))).string();
      ds::make_model("tiny-a", path);
    }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static Dir d;
  return d.path;
}

/// ||a - b|| / ||b|| over [off, off + n) of a against b (double accumulation).
inline double normwise(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = double(a[i]) - double(b[i]);
    num += d * d;
    den += double(b[i]) * double(b[i]);
  }
  return std::sqrt(num / den);
}

/// SHA-256 of a byte range, lowercase hex.
inline std::string sha256_hex(const uint8_t* p, size_t n) {
  static const uint32_t K[64] = {
      0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
      0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
      0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
      0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
      0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
      0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
      0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
      0xc67178f2};
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::vector<uint8_t> m(p, p + n);
  m.push_back(0x80);
  while (m.size() % 64 != 56) m.push_back(0);
  const uint64_t bits = uint64_t(n) * 8;
  for (int i = 7; i >= 0; --i) m.push_back(uint8_t(bits >> (8 * i)));
  auto rotr = [](uint32_t x, int r) { return (x >> r) | (x << (32 - r)); };
  for (size_t blk = 0; blk < m.size(); blk += 64) {
    uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = uint32_t(m[blk + 4 * i]) << 24 | uint32_t(m[blk + 4 * i + 1]) << 16 | uint32_t(m[blk + 4 * i + 2]) << 8 |
             uint32_t(m[blk + 4 * i + 3]);
    for (int i = 16; i < 64; ++i) {
      const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; ++i) {
      const uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
      const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (uint32_t v : h)
    for (int i = 7; i >= 0; --i) out += hex[(v >> (4 * i)) & 15];
  return out;
}

}  // namespace oracle
