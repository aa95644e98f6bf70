#include "model/kv_pool.h"

#include <stdexcept>
#include <string>

namespace ds {

KvPool::KvPool(int num_layers, KvDims dims, int page_size, int64_t num_pages)
    : page_size_(page_size), num_pages_(num_pages), dims_(dims) {
  if (page_size < 1) throw std::invalid_argument("--page-size must be >= 1 (got " + std::to_string(page_size) + ")");
  if (num_pages < 1)
    throw std::invalid_argument("--max-total-tokens gives " + std::to_string(num_pages) +
                                " KV pages; at least one page of --page-size tokens is needed");
  const int64_t slots = num_pages * int64_t(page_size);
  if (slots > (int64_t(1) << 31) - 1)
    throw std::invalid_argument("--max-total-tokens: " + std::to_string(slots) + " KV slots exceed 2^31 - 1");
  layers_.resize(size_t(num_layers));
  for (KvLayer& l : layers_) {
    l.latent.assign(size_t(slots * dims.latent), 0.f);
    l.k_pe.assign(size_t(slots * dims.rope), 0.f);
    l.index_k.assign(size_t(slots * dims.index), 0.f);
    l.index_k_scale.assign(size_t(slots), 0.f);
  }
}

int64_t KvPool::bytes() const {
  int64_t n = 0;
  for (const KvLayer& l : layers_)
    n += int64_t(l.latent.size() + l.k_pe.size() + l.index_k.size() + l.index_k_scale.size()) * 4;
  return n;
}

}  // namespace ds
