// Absorbed (MQA-form) sparse MLA attention and the per-head absorption products on the GPU
// (spec/model.md 4.7, 5.4), launcher only: no CUDA headers. CPU twins: ds::cpu::mqa_attention
// (src/kernels/cpu/attention.h) and the W_UK / W_UV loops of ds::mla_attend (src/model/mla.cpp).
// Design and measurements: docs/cuda.md.
#pragma once
#include <cstdint>

#include "kernels/mla_cache.h"

typedef struct CUstream_st* cudaStream_t;  // same declaration as CUDA's driver_types.h

namespace ds::cuda {

/// Sparse absorbed MLA for R query rows, one kernel for prefill and decode (FlashMLA-style):
/// for row r, head h < H and s < n[r], key slot j = idx[r * max_n + s]:
///   logit[s] = scale * (q_lat[r,h,:] . latent[j] + q_pe[r,h,:] . k_pe[j]),  p = softmax(logit),
///   o_lat[r,h,:] = sum_s p[s] * latent[j]
/// with scores and softmax in FP32 (D23; online softmax, so the sum order differs from the twin's
/// two-pass form by rounding only). q_lat [R, H, C] F32 (BF16 values in official mode), q_pe
/// [R, H, dr] F32 (RoPE applied), cache: the MLA cache of mla_cache_store (dt selects the record;
/// FP8 latents are dequantized in the kernel), idx [R, max_n] int32 slot ids (the caller passes
/// them in ascending position order; entries at s >= n[r] are ignored), n [R] int32 device with
/// 1 <= n[r] <= max_n (a row with n[r] <= 0 gets o_lat = 0), scale = softmax scale (spec 4.5).
/// o_lat [R, H, C] F32, not rounded (the runner rounds to BF16 as the twin does). Any n (a row that
/// attends to all its causal keys passes them all). C % 128 == 0, dr % 8 == 0, C + dr <= 1024.
/// Deterministic; a row's result does not depend on R or on the other rows. Asynchronous on
/// `stream`. Throws std::invalid_argument for bad sizes / null or misaligned (16 B) pointers;
/// std::runtime_error for a CUDA launch error.
/// Paths: C = 512, dr = 64, H % 64 == 0 (DeepSeek-V3.2) run the tensor-core kernel
/// (mla_attention_tc.cu: BF16 mma.sync with FP32 accumulation, P split as hi + lo BF16); it reads
/// q as BF16, i.e. q values that are not BF16 values are rounded (official-mode q is BF16 already;
/// cached values are always BF16-exact). Every other shape runs mla_sparse_attention_fp32.
void mla_sparse_attention(const float* q_lat, const float* q_pe, int64_t R, int H, int C, int dr,
                          const uint8_t* cache, KvCacheDtype dt, const int32_t* idx, const int32_t* n, int max_n,
                          float scale, float* o_lat, cudaStream_t stream);

/// TEST HOOK (drivers only): while on, mla_sparse_attention runs the FP32 CUDA-core path for every
/// shape, so a driver can tell the tensor-core path's rounding from differences upstream of the
/// attention (tests/gpu/gpu_fullwidth.cpp). Process-wide; not meant to change inside a captured graph.
void set_mla_attention_fp32_only(bool on);

/// The same attention, FP32 on CUDA cores for any supported shape and any F32 q (the reference
/// path: exact mode, tests). Same contract and errors as mla_sparse_attention.
void mla_sparse_attention_fp32(const float* q_lat, const float* q_pe, int64_t R, int H, int C, int dr,
                               const uint8_t* cache, KvCacheDtype dt, const int32_t* idx, const int32_t* n, int max_n,
                               float scale, float* o_lat, cudaStream_t stream);

/// Per-head absorption weight (W_UK or W_UV of kv_b_proj, dequantized at load time): head h's
/// [rows, C] row-major block starts at element h * head_stride (head_stride 0 means rows * C, a
/// contiguous [H, rows, C]), BF16 bits if bf16 else F32. For W_UK rows = qk_nope_head_dim, for
/// W_UV rows = v_head_dim; C = kv_lora_rank. A dequantized kv_b_proj [H * (dn + dv), C] serves as
/// both, with head_stride = (dn + dv) * C: W_UK starts at data, W_UV at data + dn * C elements.
struct AbsorbWeightDev {
  const void* data = nullptr;
  bool bf16 = true;
  int H = 0;
  int rows = 0;
  int C = 0;
  int64_t head_stride = 0;  ///< elements between heads; 0 -> rows * C
};

/// q_lat[r, h, c] = bf16?(sum_{d < dn} q[r, h, d] * w_uk[h, d, c]) (sum in ascending d, FP32, like
/// the twin), with q [R, H, dq] F32 (nope part first: dn = w_uk.rows, rope part q[r, h, dn:dq]),
/// q_lat [R, H, C]. If q_pe_out is not null it also receives the rope part: q_pe_out[r, h, :] =
/// q[r, h, dn:dq] ([R, H, dq - dn]), the layout mla_sparse_attention reads. bf16_output rounds to
/// nearest-even BF16 values (official mode). Asynchronous. Throws std::invalid_argument for
/// dq <= dn, H/C mismatch, C % 2 != 0, null pointers; std::runtime_error for a launch error.
void mla_absorb_q(const float* q, int64_t R, int dq, const AbsorbWeightDev& w_uk, float* q_lat, float* q_pe_out,
                  bool bf16_output, cudaStream_t stream);

/// out[r, h * dv + j] = bf16?(sum_{c < C} o_lat[r, h, c] * w_uv[h, j, c]) (FP32), with o_lat
/// [R, H, C] F32 (the runner rounds it to BF16 values first in official mode, as the twin does),
/// dv = w_uv.rows, out [R, H * dv]. Asynchronous. Throws std::invalid_argument for C % 8 != 0,
/// null or misaligned (16 B) pointers; std::runtime_error for a launch error.
void mla_absorb_out(const float* o_lat, int64_t R, const AbsorbWeightDev& w_uv, float* out, bool bf16_output,
                    cudaStream_t stream);

}  // namespace ds::cuda
