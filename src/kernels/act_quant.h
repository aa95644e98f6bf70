// Activation quantization to FP8 E4M3 with UE8M0 (power-of-two) scales on the GPU (spec/model.md
// 9.2), launcher only: no CUDA headers. CPU twin: ds::cpu::act_quant (src/kernels/cpu/act_quant.h);
// the GPU result is bit-identical to it. Design and measurements: docs/cuda.md.
#pragma once
#include <cstdint>

typedef struct CUstream_st* cudaStream_t;  // same declaration as CUDA's driver_types.h

namespace ds::cuda {

/// Element type of the activations to quantize.
enum class QuantInType { F32, BF16 };

/// Quantizes x[rows, cols] (row-major, contiguous; cols % 128 == 0) per row per 128-channel group:
/// amax = max |x| over the group; a = max(amax, 1e-4) * fl32(1/448); s = 2^(exponent(a) - 127 +
/// (mantissa(a) != 0)); q[r, c] = e4m3_rne(clamp(x[r, c] / s, -448, 448)) as E4M3 bytes [rows,
/// cols]; scales[r, c / 128] = s (F32, [rows, cols / 128]). Asynchronous on `stream`.
/// Throws std::invalid_argument for cols % 128 != 0, rows < 0, cols < 128, null pointers, x not
/// aligned to 8 (BF16) / 16 (F32) bytes or q not 4-byte aligned; std::runtime_error for a CUDA
/// launch error.
void act_quant_ue8m0(const void* x, QuantInType xt, int64_t rows, int64_t cols, uint8_t* q, float* scales,
                     cudaStream_t stream);

}  // namespace ds::cuda
