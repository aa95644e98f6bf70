// Official-mode FP8 block-scaled GEMM on the GPU, any M (spec/model.md 9.2), launcher only: no CUDA
// headers. CPU twin: ds::cpu::gemm with GemmOptions{fp8_activations = true} (src/kernels/cpu/gemm.h),
// fed with the output of act_quant_ue8m0 (bit-identical to ds::cpu::act_quant). Design and
// measurements: docs/cuda.md ("FP8 GEMM, any M").
#pragma once
#include <cstdint>

#include "kernels/gemm_fp8_small_m.h"  // Fp8WeightDev

typedef struct CUstream_st* cudaStream_t;  // same declaration as CUDA's driver_types.h

namespace ds::cuda {

/// Official FP8 linear (spec 9.2), any M >= 1: y[m, n] = sum over 128-wide K blocks b, in ascending
/// b, of (sum_{k in b} fp8(xq[m,k]) * fp8(w[n,k])) * (xs[m,b] * w.scale_inv[n/128, b]), FP32.
/// xq: FP8 E4M3 bytes [M, K] row-major (act_quant_ue8m0 output), xs: F32 [M, K/128]. y: F32 [M, N]
/// (N = w.rows, K = w.cols), each value rounded to the nearest BF16 if bf16_output.
/// Tensor cores (mma.sync m16n8k32 e4m3, FP32 accumulate) for every M: a weight-streaming kernel
/// (weights straight to registers) for M <= 16 (and M <= 64 when N is too small for 2 tiled blocks
/// per SM) and a shared-memory tiled kernel above, which compute the same bits per element
/// (same K permutation inside the MMA, same per-block partials, same fixed grouping of the block
/// sum, which depends on K only). So it is deterministic and row m's bits do not depend on M or
/// on the other rows (batch invariance, D27). Per 128-K block the tensor core's internal sum order
/// differs from the CPU twin's FP32 sum (on sm_90a ptxas runs the e4m3 MMA as exact FP16
/// conversions + FP16 MMAs with FP32 accumulation): results agree to ~1e-7 normwise, not bit for
/// bit (docs/cuda.md).
/// Requirements: K % 128 == 0, xq/w.data 16-byte aligned, xs/y/scale_inv 4-byte aligned.
/// Asynchronous on `stream`. Throws std::invalid_argument naming the argument for M < 1, empty
/// or inconsistent shapes, K % 128 != 0, null or misaligned pointers; std::runtime_error for a
/// CUDA launch error.
void gemm_fp8(const uint8_t* xq, const float* xs, int64_t M, const Fp8WeightDev& w, float* y, bool bf16_output,
              cudaStream_t stream);

/// Grouped form of gemm_fp8 (used by moe_experts; same per-element bits as gemm_fp8 on one row).
/// Output rows are grouped: group g owns rows [goff[g], goff[g+1]) (goff: DEVICE int32 [G+1],
/// non-decreasing, goff[0] = 0, goff[G] <= max_rows). Row r reads activation row a_rows[r] of
/// xq [*, K] / xs [*, K/128] (a_rows: DEVICE int32 [max_rows], or nullptr for row r itself).
/// For each projection p < nproj (1 or 2), group g uses the weight w_base[g * w_stride + p]
/// (a DEVICE array of Fp8WeightDev, each [N, K]) and writes y[p][r, 0..N) (F32 [max_rows, N]).
/// max_group_rows: the largest group's row count as the host expects it, a speed hint only (picks
/// the kernel and its tile height; any value >= 1 gives correct results). Rows >= goff[G] are not written. Asynchronous; throws std::invalid_argument
/// for bad sizes or null pointers.
void gemm_fp8_grouped(const uint8_t* xq, const float* xs, const int32_t* a_rows, int64_t max_rows,
                      const int32_t* goff, int G, const Fp8WeightDev* w_base, int w_stride, int nproj, int64_t N,
                      int64_t K, float* const* y, int64_t max_group_rows, bool bf16_output, cudaStream_t stream);

}  // namespace ds::cuda
