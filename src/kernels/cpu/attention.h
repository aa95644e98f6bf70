// Sparse MQA (absorbed MLA) attention of one query token over selected cached keys
// (spec/model.md 4.7, 5.4). Scores and softmax in FP32 (D23).
#pragma once
#include <cstdint>

namespace ds::cpu {

/// For each head h: logits[s] = scale * (q_lat[h]·latent[idx[s]] + q_pe[h]·k_pe[idx[s]]),
/// p = softmax(logits) (FP32), o_lat[h] = sum_s p[s] * latent[idx[s]].
/// q_lat [H, dc], q_pe [H, dr], latent [L, dc], k_pe [L, dr], idx [n] (any order; the caller
/// passes them ascending so the sum order is fixed), o_lat [H, dc] FP32. n >= 1.
void mqa_attention(const float* q_lat, const float* q_pe, int H, int dc, int dr, const float* latent,
                   const float* k_pe, const int32_t* idx, int n, float scale, float* o_lat);

}  // namespace ds::cpu
