// Token sampling on the GPU: greedy and temperature / top-k / top-p / min-p per row, launcher only
// (no CUDA headers). CPU twin: ds::sample_token (src/model/sampler.h); same filter order (SGLang's:
// temperature -> softmax -> top-k -> top-p -> min-p -> renormalize -> inverse-CDF draw over token ids
// in ascending order). Design: docs/cuda.md "Sampling on the GPU".
#pragma once
#include <cstdint>

typedef struct CUstream_st* cudaStream_t;  // same declaration as CUDA's driver_types.h

namespace ds::cuda {

/// Sampling parameters of one row (device array, one per row). Same meaning as ds::SamplingParams:
/// temperature < 1e-6 (or NaN) = greedy; top_k <= 0 or >= vocab disables; top_p >= 1 disables;
/// min_p <= 0 disables. `u` is the row's uniform draw in [0, 1): the host takes it from the
/// request's SamplerRng (u = rng.next_double(), 53 random bits) exactly when the CPU sampler would
/// (non-greedy rows only), so both samplers consume the same per-request stream and pick the same
/// token for the same logits and the same u.
struct SampleRowParams {
  float temperature = 1.0f;
  float top_p = 1.0f;
  int32_t top_k = -1;
  float min_p = 0.0f;
  double u = 0.0;
};

/// ids[r] = the token ds::sample_token would pick for logits[r, 0..vocab) (F32, device, row-major)
/// with params[r] and the uniform params[r].u. One 1024-thread block per row, no workspace, no
/// allocation, no host synchronization (CUDA-graph capture safe). Math in FP64 like the CPU twin:
/// q_i = exp(l_i / T - max) / sum (NaN logits -> 0); the kept set is the top `keep` tokens by
/// (q descending, id ascending), keep = max(1, min(top_k, n_top_p, n_min_p)) found by 8-bit radix
/// selects over the FP64 bit pattern (top-p masses in 2^-60 fixed point, so sums are exact and
/// order-independent); the draw scans kept q / kept_mass in ascending ids. Differences from the CPU
/// twin are summation order only (the softmax sum, the kept mass, the CDF), i.e. the choice can
/// differ only when u or top_p lies within ~1e-15 of a boundary. All-NaN / non-finite rows fall back
/// to greedy (lowest index of the maximum, NaN skipped), as on the CPU. Deterministic.
/// Throws std::invalid_argument for rows < 0, vocab < 1 or >= 2^31, null pointers;
/// std::runtime_error for a CUDA launch error.
void sample_rows(const float* logits, int64_t rows, int64_t vocab, const SampleRowParams* params, int32_t* ids,
                 cudaStream_t stream);

}  // namespace ds::cuda
