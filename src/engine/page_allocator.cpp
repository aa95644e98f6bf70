#include "engine/page_allocator.h"

#include <stdexcept>
#include <string>

namespace ds {

PageAllocator::PageAllocator(int64_t num_pages) : num_pages_(num_pages) {
  if (num_pages < 1) throw std::invalid_argument("PageAllocator: need at least one page");
  free_.reserve(size_t(num_pages));
  for (int64_t p = num_pages - 1; p >= 0; --p) free_.push_back(int32_t(p));
  is_free_.assign(size_t(num_pages), 1);
}

bool PageAllocator::alloc(int64_t n, std::vector<int32_t>& out) {
  if (n > int64_t(free_.size())) return false;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t p = free_.back();
    free_.pop_back();
    is_free_[size_t(p)] = 0;
    out.push_back(p);
  }
  return true;
}

void PageAllocator::free(const int32_t* pages, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const int32_t p = pages[i];
    if (p < 0 || p >= num_pages_) throw std::logic_error("PageAllocator: page id " + std::to_string(p) + " out of range");
    if (is_free_[size_t(p)]) throw std::logic_error("PageAllocator: page " + std::to_string(p) + " freed twice");
    is_free_[size_t(p)] = 1;
    free_.push_back(p);
  }
}

}  // namespace ds
