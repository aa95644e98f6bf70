// Rotary position embedding with YaRN frequency scaling (spec/model.md 4.4).
#pragma once
#include <cstdint>
#include <vector>

namespace ds::cpu {

/// YaRN parameters (config.json rope_scaling); enabled == false gives plain RoPE.
struct YarnParams {
  bool enabled = false;
  double factor = 1.0;
  int original_max_position_embeddings = 4096;
  double beta_fast = 32.0;
  double beta_slow = 1.0;
};

/// YaRN correction range [low, high] for `rope_dim` rotary dims (spec 4.4):
/// cd(r) = dim * ln(orig / (2 pi r)) / (2 ln theta); low = max(floor(cd(beta_fast)), 0),
/// high = min(ceil(cd(beta_slow)), dim - 1). Real config: low 10, high 23.
void yarn_correction_range(int rope_dim, double theta, const YarnParams& y, int* low, int* high);

/// The rope_dim/2 rotation frequencies in FP32, computed in the demo's op order:
/// base_i = 1 / theta^(2i/dim); with YaRN freq_i = base_i / factor * (1 - smooth_i) + base_i * smooth_i,
/// smooth_i = 1 - clamp((i - low) / (high - low), 0, 1).
std::vector<float> rope_frequencies(int rope_dim, double theta, const YarnParams& y);

/// cos/sin of the angles pos * freq_i (FP32 product, FP32 cos/sin), each [freqs.size()].
void rope_cos_sin(const std::vector<float>& freqs, int64_t pos, float* cos_out, float* sin_out);

/// Interleaved pairs (2i, 2i+1) — the MLA layout: y2i = x2i c - x2i+1 s, y2i+1 = x2i s + x2i+1 c.
/// x: [2 * n_freq], rotated in place, rounded to BF16 if `bf16_out`.
void rope_interleaved(float* x, const float* cos, const float* sin, int n_freq, bool bf16_out);

/// NeoX half-split pairs (i, i + n_freq) — the indexer layout: yi = xi c - xi+h s,
/// yi+h = xi s + xi+h c. x: [2 * n_freq] in place, rounded to BF16 if `bf16_out`.
void rope_half_split(float* x, const float* cos, const float* sin, int n_freq, bool bf16_out);

}  // namespace ds::cpu
