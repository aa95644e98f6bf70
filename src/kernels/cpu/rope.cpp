#include "kernels/cpu/rope.h"

#include <algorithm>
#include <cmath>

#include "common/numeric.h"

namespace ds::cpu {
namespace {

double correction_dim(int dim, double theta, int orig, double rotations) {
  return dim * std::log(orig / (rotations * 2 * M_PI)) / (2 * std::log(theta));
}

}  // namespace

void yarn_correction_range(int rope_dim, double theta, const YarnParams& y, int* low, int* high) {
  int lo = int(std::floor(correction_dim(rope_dim, theta, y.original_max_position_embeddings, y.beta_fast)));
  int hi = int(std::ceil(correction_dim(rope_dim, theta, y.original_max_position_embeddings, y.beta_slow)));
  *low = std::max(lo, 0);
  *high = std::min(hi, rope_dim - 1);
}

std::vector<float> rope_frequencies(int rope_dim, double theta, const YarnParams& y) {
  const int half = rope_dim / 2;
  std::vector<float> f(static_cast<size_t>(half));
  for (int i = 0; i < half; ++i) {
    float e = float(2 * i) / float(rope_dim);
    f[i] = 1.0f / std::pow(float(theta), e);
  }
  if (!y.enabled) return f;
  int low, high;
  yarn_correction_range(rope_dim, theta, y, &low, &high);
  float lo = float(low), hi = float(high);
  if (lo == hi) hi += 0.001f;
  const float factor = float(y.factor);
  for (int i = 0; i < half; ++i) {
    float ramp = std::clamp((float(i) - lo) / (hi - lo), 0.0f, 1.0f);
    float smooth = 1.0f - ramp;
    f[i] = f[i] / factor * (1.0f - smooth) + f[i] * smooth;
  }
  return f;
}

void rope_cos_sin(const std::vector<float>& freqs, int64_t pos, float* cos_out, float* sin_out) {
  for (size_t i = 0; i < freqs.size(); ++i) {
    float a = float(pos) * freqs[i];
    cos_out[i] = std::cos(a);
    sin_out[i] = std::sin(a);
  }
}

void rope_interleaved(float* x, const float* c, const float* s, int n_freq, bool bf16_out) {
  for (int i = 0; i < n_freq; ++i) {
    float a = x[2 * i], b = x[2 * i + 1];
    float y0 = a * c[i] - b * s[i];
    float y1 = a * s[i] + b * c[i];
    x[2 * i] = bf16_out ? round_bf16(y0) : y0;
    x[2 * i + 1] = bf16_out ? round_bf16(y1) : y1;
  }
}

void rope_half_split(float* x, const float* c, const float* s, int n_freq, bool bf16_out) {
  for (int i = 0; i < n_freq; ++i) {
    float a = x[i], b = x[i + n_freq];
    float y0 = a * c[i] - b * s[i];
    float y1 = a * s[i] + b * c[i];
    x[i] = bf16_out ? round_bf16(y0) : y0;
    x[i + n_freq] = bf16_out ? round_bf16(y1) : y1;
  }
}

}  // namespace ds::cpu
