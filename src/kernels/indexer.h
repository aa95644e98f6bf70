// Lightning-indexer logits and causal top-k over the paged indexer-key cache on the GPU
// (spec/model.md 5.2 step 10, 5.3), launcher only: no CUDA headers. CPU twins:
// ds::cpu::index_scores and ds::cpu::topk_indices (src/kernels/cpu/index_score.h), driven as in
// src/model/indexer.cpp. Design and measurements: docs/cuda.md.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

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
/// in FP32 (products of two E4M3 values are exact). The FP32 path (fp32_logits, or any shape but
/// Hi 64 / Di 128) is bit-identical to ds::cpu::index_scores (same summation order and rounding
/// points); the tensor-core path differs by its reduced-precision MMA accumulation (gpu_indexer
/// bounds it at 1e-3 normwise), so its top-k may swap near-tied keys at the boundary against the
/// CPU. Deterministic either way. Then the topk positions with the
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

/// The selection step of indexer_topk alone, on scores computed elsewhere (the exact numerics
/// mode's FP32 q/k scores, exact_ops.h index_scores_f32): scores F32 [R, max_keys] with row r valid
/// on [0, n_keys[r]) when n_keys[r] > topk (not read otherwise). Reads only a.R, a.pages,
/// a.max_pages, a.page_size and a.n_keys of `a`; writes idx exactly as indexer_topk (same top-k
/// kernel: ties -> lower position, slots in ascending position, -1 padding, rows with n_keys <= topk
/// get all their causal slots). The test hook below records the call. Asynchronous; throws
/// std::invalid_argument for page_size < 1, max_pages < 1, topk < 1, max_keys < 1, R < 0, null
/// pointers; std::runtime_error for a CUDA launch error.
void indexer_topk_scored(const IndexerArgs& a, int topk, int64_t max_keys, const float* scores, int32_t* idx,
                         cudaStream_t stream);

/// One indexer_topk call as downloaded by the test hook below (host copies).
struct IndexerCapture {
  int64_t R = 0, max_keys = 0;
  int topk = 0;
  std::vector<int32_t> n_keys;  ///< [R]
  std::vector<int32_t> idx;     ///< [R, topk] slot ids as written (ascending position, -1 padded)
  std::vector<float> scores;    ///< [R, max_keys] F32 logits; row r valid on [0, n_keys[r]) iff n_keys[r] > topk
};

/// TEST HOOK (drivers only; not capture-safe, slows every call): while `sink` is non-null, each
/// indexer_topk call synchronizes its stream and appends one IndexerCapture to *sink. A whole-model
/// forward therefore appends one record per layer (per 32768-row chunk), in layer order; a replayed
/// CUDA graph appends nothing. Pass nullptr to stop. Not thread-safe against concurrent calls.
void set_indexer_capture(std::vector<IndexerCapture>* sink);

}  // namespace ds::cuda
