// Kernels of the CUDA runner's EXACT numerics mode (D23: FP32 end to end on dequantized weights),
// launcher only: no CUDA headers. Exact mode is the reference, not the fast path: these kernels are
// simple CUDA-core FP32 code whose results equal their CPU twins up to FP32 summation order (the
// driver tests/gpu/gpu_exact_ops.cpp bounds each against its twin). CPU twins: src/model/mla.cpp,
// indexer.cpp, moe.cpp, deepseek_v32.cpp with Numerics::Exact and the ds::cpu kernels named per
// function. The official path never calls anything here. Design: docs/cuda.md ("Exact mode").
//
// Exact-mode caches are plain F32 arrays (no BF16/FP8 record):
//   MLA cache   [slots, C + dr] F32: latent c_kv (RMSNorm output, no FP8 round trip) then k_pe
//               (RoPE applied), spec 4.3 step 7 without rounding (the CPU KvLayer's values);
//   index keys  [slots, Di] F32: LayerNorm -> RoPE, no Hadamard, no FP8 (key scale 1; numerics.md).
// All launches are asynchronous on `stream`; every function throws std::invalid_argument naming the
// argument for bad sizes / null pointers and std::runtime_error for a CUDA launch error.
#pragma once
#include <cstdint>

#include "kernels/gemm_fp8_small_m.h"  // Fp8WeightDev

typedef struct CUstream_st* cudaStream_t;  // same declaration as CUDA's driver_types.h

namespace ds::cuda {

/// y[M, N] = x[M, K] (F32) * dequant(w)^T in FP32 for ANY M >= 1: gemm_fp8_small_m (FP32 arithmetic
/// on the FP8 weight) over row blocks of kGemmSmallMaxM. Each row's bits are those of an M = 1 call
/// (gemm_fp8_small_m's rows do not depend on M), so the result is batch invariant (D27). Twin:
/// ds::cpu::gemm with GemmOptions{false, false} (exact mode). Re-reads W once per 16 rows: slow at
/// prefill sizes by design (reference path).
void gemm_fp8_f32(const float* x, int64_t M, const Fp8WeightDev& w, float* y, cudaStream_t stream);

/// Embedding lookup in F32 (spec 4.1): out[r, :] = float(table[ids[r], :]); table [V, D] BF16 bits
/// (table_bf16) or F32; ids int32 device [R]; out F32 [R, D]. Twin: cpu::dequantize_rows (exact).
void embed_gather_f32(const void* table, bool table_bf16, const int32_t* ids, int64_t R, int64_t D, float* out,
                      cudaStream_t stream);

/// Fused residual RMSNorm in FP32 (spec 4.2, exact mode): per row of width n, s = f + r (f null:
/// s = r), r <- s (in place, no rounding), y = w * (s * (1 / sqrt(sum(s^2) / n + eps))). w: [n] BF16
/// bits (the checkpoint's norm values, exact in F32). y must not alias f or r. One block per row,
/// fixed-order block reduction (deterministic, independent of `rows`). Twin: cpu::add_rmsnorm with
/// bf16 = false.
void add_rmsnorm_f32(const float* f, float* r, const uint16_t* w, int64_t rows, int64_t n, float eps, float* y,
                     cudaStream_t stream);

/// Row scatter: for i < n with dst_rows[i] >= 0, dst[dst_rows[i] * W + c] = src[i * lds + c] for c < W
/// (F32). Used for the exact-mode caches (dst_rows = slot ids; a negative slot writes nothing) and
/// the MoE expert outputs. Twin: the std::copy loops of mla.cpp / indexer.cpp / moe.cpp.
void scatter_rows_f32(const float* src, int64_t lds, int64_t n, int64_t W, const int32_t* dst_rows, float* dst,
                      cudaStream_t stream);

/// Row gather: dst[i * W + c] = src[src_rows[i] * lds + c] for i < n, c < W (F32; src_rows int32
/// device, valid rows only). Used for the MoE expert inputs and the logit rows.
void gather_rows_f32(const float* src, int64_t lds, const int32_t* src_rows, int64_t n, int64_t W, float* dst,
                     cudaStream_t stream);

/// Exact-mode lightning-indexer scores (spec 5.2 step 10 with FP32 q/k, q_scale = k_scale = 1):
/// for row r with n_keys[r] > topk and position p < n_keys[r], j = pages[r * max_pages + p /
/// page_size] * page_size + p % page_size:
///   scores[r * max_keys + p] = sum_{h < Hi, ascending} max(q[r,h,:] . kcache[j,:], 0) * w[r,h]
/// with q [R, Hi, Di] F32 (RoPE applied), w [R, Hi] F32 head weights (weights_proj * Hi^-0.5 *
/// Di^-0.5), kcache [slots, Di] F32. Rows with n_keys <= topk are not written (they take every
/// causal key). Hi * (Di + 1) <= 12288. Twin: cpu::index_scores with k_scale 1. The selection is then
/// indexer_topk_scored (indexer.h) on these scores.
void index_scores_f32(const float* q, const float* w, int64_t R, int Hi, int Di, const float* kcache,
                      const int32_t* pages, int max_pages, int page_size, const int32_t* n_keys, int topk,
                      int64_t max_keys, float* scores, cudaStream_t stream);

/// Exact-mode absorbed sparse MLA (spec 4.7, all FP32) over the F32 MLA cache [slots, C + dr]: for
/// row r, head h < H, s < n[r], j = idx[r * max_n + s]: logit[s] = (q_lat[r,h,:] . latent[j] +
/// q_pe[r,h,:] . k_pe[j]) * scale; p = softmax (two passes: max, then exp and sum, inv = 1 / sum);
/// o_lat[r,h,:] = sum_s (p[s] * inv) * latent[j] in ascending s. q_lat [R, H, C], q_pe [R, H, dr],
/// o_lat [R, H, C] F32; a row with n[r] <= 0 gets zeros. One block per (row, head); max_n + C + dr
/// <= 12288. Twin: cpu::mqa_attention.
void mla_attention_f32(const float* q_lat, const float* q_pe, int64_t R, int H, int C, int dr, const float* cache,
                       const int32_t* idx, const int32_t* n, int max_n, float scale, float* o_lat,
                       cudaStream_t stream);

/// MoE combine (spec 6.8-6.9, exact mode): out[r, d] = sum_{k < K, ascending} ye[(r K + k), d] *
/// wts[r, k], then + ysh[r, d] when ysh is not null; no rounding. ye [R K, D], wts [R, K], ysh
/// [R, D], out [R, D] F32. Twin: the combine loop of src/model/moe.cpp.
void moe_combine_f32(const float* ye, const float* wts, const float* ysh, int64_t R, int K, int64_t D, float* out,
                     cudaStream_t stream);

}  // namespace ds::cuda
