// MLA latent cache and indexer-key cache stores on the GPU (spec/model.md 4.3 step 7, 5.2 step 8,
// 8.1, 8.2), launcher only: no CUDA headers. CPU twin: the copies in src/model/mla.cpp and
// src/model/indexer.cpp (the FP8 record's bytes and scales are ds::cpu::act_quant of the latent).
// Design and measurements: docs/cuda.md.
#pragma once
#include <cstdint>

typedef struct CUstream_st* cudaStream_t;  // same declaration as CUDA's driver_types.h

namespace ds::cuda {

/// Storage of one MLA cache token slot. `--kv-cache-dtype auto|bf16` -> BF16; `fp8_e4m3` -> FP8.
///   BF16: [latent C x BF16][k_pe dr x BF16]                      = (C + dr) * 2 bytes (1152 at 512/64)
///   FP8 : [latent C x E4M3][C/128 x F32 scale][k_pe dr x BF16]   = C + 4*C/128 + 2*dr (656 at 512/64,
///         spec 8.1: scale i multiplies latent bytes 128i..128i+127; scales are powers of two).
enum class KvCacheDtype { BF16, FP8 };

/// Bytes per token slot (see KvCacheDtype). Throws std::invalid_argument for kv_lora < 128 or not a
/// multiple of 128 (FP8 only needs it; BF16 needs kv_lora % 8 == 0), rope < 0 or rope % 8 != 0.
int64_t mla_slot_bytes(KvCacheDtype dt, int kv_lora, int rope);

/// Writes R rows into the MLA cache: rows [R, C + dr] F32 storage (latent c_kv [C] then k_pe [dr];
/// BF16 values in official mode), slots [R] int32 device (slot ids; a negative slot skips the row,
/// e.g. padding rows of a CUDA graph), cache: slot-major bytes, slot s at cache + s * mla_slot_bytes.
/// BF16: each value rounded to nearest-even BF16 (lossless for BF16 values). FP8: each 128-group of
/// the latent is quantized like act_quant (spec 9.2: s = UE8M0 of max(amax, 1e-4)/448, e4m3_rne
/// of clamp(x/s, +-448)); k_pe stored as BF16. When the latent is already an FP8 round trip with
/// UE8M0 scales (official mode, spec 4.3 step 6) the FP8 record dequantizes to it exactly
/// (tests/gpu/gpu_mla_attention.cpp checks this bit for bit). Asynchronous on `stream`. Throws
/// std::invalid_argument for bad shapes (as mla_slot_bytes), R < 0, null pointers, or rows not
/// 16-byte aligned; std::runtime_error for a CUDA launch error.
void mla_cache_store(const float* rows, int64_t R, int C, int dr, const int32_t* slots, KvCacheDtype dt,
                     uint8_t* cache, cudaStream_t stream);

/// Indexer-key cache store (spec 5.2 step 8, 5.5 as two arrays): for r < R with slots[r] >= 0,
/// kcache[slots[r], 0:Di] = kq[r, 0:Di] (FP8 E4M3 bytes from act_quant_ue8m0) and
/// kscale[slots[r]] = ks[r] (F32). Di % 16 == 0. Asynchronous; throws std::invalid_argument for
/// bad sizes or null pointers, std::runtime_error for a CUDA launch error.
void index_cache_store(const uint8_t* kq, const float* ks, int64_t R, int Di, const int32_t* slots,
                       uint8_t* kcache, float* kscale, cudaStream_t stream);

}  // namespace ds::cuda
