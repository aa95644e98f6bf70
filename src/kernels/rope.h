// Rotary position embedding (YaRN-scaled frequencies) on the GPU (spec/model.md 4.4), launcher only:
// no CUDA headers. CPU twins: ds::cpu::rope_interleaved / rope_half_split with cos/sin from
// ds::cpu::rope_cos_sin (src/kernels/cpu/rope.h). Design and measurements: docs/cuda.md.
#pragma once
#include <cstdint>

typedef struct CUstream_st* cudaStream_t;  // same declaration as CUDA's driver_types.h

namespace ds::cuda {

/// Pairing of the rotated dims: interleaved (2i, 2i+1) for MLA q_pe/k_pe; half-split (i, i + n_freq)
/// for the indexer's q/k (NeoX).
enum class RopeLayout { Interleaved, HalfSplit };

/// Storage of x: F32 (optionally rounded to BF16 values on output) or BF16 bits.
enum class RopeType { F32, BF16 };

/// Where the rotary dims are: x holds `tokens` x `heads` vectors; the rotary part of (t, h) starts at
/// element t * token_stride + h * head_stride + offset and has 2 * n_freq elements.
struct RopeView {
  void* x = nullptr;
  RopeType type = RopeType::F32;
  int64_t tokens = 0;
  int64_t heads = 1;
  int64_t token_stride = 0;  ///< elements
  int64_t head_stride = 0;   ///< elements
  int64_t offset = 0;        ///< elements
};

/// Rotates x in place: for token t at position pos[t] (int64, device) and i < n_freq, angle =
/// fl32(float(pos) * freqs[i]) (freqs: [n_freq] F32 device, from ds::cpu::rope_frequencies),
/// c = cos(angle), s = sin(angle) in FP32 (CUDA sincosf, <= 2 ulp); (a, b) -> (a c - b s, a s + b c)
/// with separately rounded products (no FMA), like the twin. F32 storage is rounded to BF16 values
/// if `bf16_out`; BF16 storage always rounds to nearest even. Asynchronous on `stream`. Throws
/// std::invalid_argument for n_freq < 1, negative sizes/strides/offset, null pointers;
/// std::runtime_error for a CUDA launch error.
void rope_apply(const RopeView& v, const int64_t* pos, const float* freqs, int n_freq, RopeLayout layout,
                bool bf16_out, cudaStream_t stream);

}  // namespace ds::cuda
