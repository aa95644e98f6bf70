// Lightning-indexer logits and causal top-k over the paged indexer-key cache on the GPU
// (spec/model.md 5.2 step 10, 5.3), launcher only: no CUDA headers. CPU twins:
// ds::cpu::index_scores and ds::cpu::topk_indices (src/kernels/cpu/index_score.h), driven as in
// src/model/indexer.cpp. Design and measurements: docs/cuda.md.
#pragma once
#include <cstddef>
#include <cstdint>

typedef struct CUstream_st* cudaStream_t;  // same declaration as CUDA's driver_types.h

namespace ds::cuda {

/// Indexer inputs of R query rows and the cache they read (all device pointers).
///   q       [R, Hi, Di] FP8 E4M3 bytes (act_quant_ue8m0 per (row, head), after RoPE + Hadamard)
///   w       [R, Hi] F32 head weights, already w = weights_proj(x) * Hi^-0.5 * Di^-0.5 * q_scale
///   kcache  [slots, Di] FP8 E4M3 bytes, kscale [slots] F32 (index_cache_store)
///   pages   [R, max_pages] int32: the page table row of each query row; position p of row r lives
///           in slot pages[r * max_pages + p / page_size] * page_size + p % page_size
///   n_keys  [R] int32: causal key count of each row (its position + 1), 0 <= n_keys <= max_pages * page_size
struct IndexerArgs {
  const uint8_t* q = nullptr;
  const float* w = nullptr;
  int64_t R = 0;
  int Hi = 64;
  int Di = 128;
  const uint8_t* kcache = nullptr;
  const float* kscale = nullptr;
  const int32_t* pages = nullptr;
  int max_pages = 0;
  int page_size = 64;
  const int32_t* n_keys = nullptr;
  /// Logits path: false -> FP8 tensor cores (mma.sync m16n8k32 e4m3, FP32 accumulation) when
  /// Hi == 64 and Di == 128, else FP32 CUDA cores; true -> always FP32 CUDA cores (reference).
  bool fp32_logits = false;
};

/// Bytes of scratch indexer_topk needs: the F32 logits of every row, R * max_keys * 4 (rounded up
/// to 256), max_keys >= every n_keys[r].
size_t indexer_workspace_bytes(int64_t R, int64_t max_keys);

/// Lightning-indexer selection. For row r and position p < n_keys[r], with j = slot(r, p):
///   score[r, p] = kscale[j] * sum_{h < Hi} w[r, h] * ReLU(sum_{d < Di} fp8(q[r,h,d]) * fp8(kcache[j,d]))
/// in FP32 (products of two E4M3 values are exact; sums in a fixed order, so the result is
/// deterministic and equal to the twin's up to summation order). Then the topk positions with the
/// largest scores (ties -> lower position; -0 == +0), written as SLOT ids in ascending position
/// order to idx [R, topk] int32; entries past min(n_keys[r], topk) are -1. Rows with n_keys <=
/// topk get all their causal slots without scoring. Scores are left in `workspace` as F32
/// [R, max_keys] (row r's valid part is [0, n_keys[r]); rows with n_keys <= topk are not written),
/// which tests read. Top-k: 4-pass 8-bit radix select per row on the order-preserving bit pattern,
/// then one ordered pass; NaN scores sort above +inf (they do not occur for finite inputs).
/// Asynchronous on `stream`. Throws std::invalid_argument for Di % 16 != 0, Hi < 1, Hi > 128,
/// page_size < 1, topk < 1, max_keys < 1, workspace smaller than indexer_workspace_bytes, null
/// pointers; std::runtime_error for a CUDA launch error.
void indexer_topk(const IndexerArgs& a, int topk, int64_t max_keys, void* workspace, size_t workspace_bytes,
                  int32_t* idx, cudaStream_t stream);

}  // namespace ds::cuda
