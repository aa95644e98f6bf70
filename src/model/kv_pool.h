// Paged KV storage of the CPU model (docs/architecture.md: the model owns memory, the scheduler
// owns page ids). One pool holds, per main layer, the MLA latent cache with its rope key and the
// indexer-key cache; all of them are addressed by the SAME page ids (spec/model.md 4.3.7, 5.2).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ds {

/// KV storage of one layer, slot-major: slot s holds one token's latent [kv_lora_rank] (FP8
/// round-tripped in official mode), rope key [qk_rope_head_dim] (RoPE applied), indexer key
/// [index_head_dim] (FP8 values in official mode) and indexer-key scale (1.0 in exact mode).
struct KvLayer {
  std::vector<float> latent;         // [slots, kv_lora_rank]
  std::vector<float> k_pe;           // [slots, qk_rope_head_dim]
  std::vector<float> index_k;        // [slots, index_head_dim]
  std::vector<float> index_k_scale;  // [slots]
};

/// Row widths of a KvLayer slot, in floats.
struct KvDims {
  int64_t latent = 0, rope = 0, index = 0;
};

/// A fixed pool of `num_pages` pages of `page_size` token slots per layer. Page p covers slots
/// [p * page_size, (p + 1) * page_size). Token position `pos` of a sequence whose page table is
/// `pt` lives in slot pt[pos / page_size] * page_size + pos % page_size. The pool never allocates
/// pages itself (the engine's page allocator does); it only stores values.
class KvPool {
 public:
  /// Throws std::invalid_argument (naming --page-size / --max-total-tokens) on page_size < 1,
  /// num_pages < 1, or a pool above 2^31 slots.
  KvPool(int num_layers, KvDims dims, int page_size, int64_t num_pages);

  int page_size() const { return page_size_; }
  int64_t num_pages() const { return num_pages_; }
  const KvDims& dims() const { return dims_; }
  KvLayer& layer(int l) { return layers_[size_t(l)]; }
  const KvLayer& layer(int l) const { return layers_[size_t(l)]; }
  std::vector<KvLayer>& layers() { return layers_; }
  /// Bytes held by the pool (all layers).
  int64_t bytes() const;

 private:
  int page_size_;
  int64_t num_pages_;
  KvDims dims_;
  std::vector<KvLayer> layers_;
};

}  // namespace ds
