// KV page ids handed out by the scheduler (docs/architecture.md: the scheduler owns page ids, the
// model's KvPool owns the memory behind them).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ds {

/// A free list over page ids [0, num_pages). Not thread-safe (engine thread only).
class PageAllocator {
 public:
  /// Throws std::invalid_argument if num_pages < 1.
  explicit PageAllocator(int64_t num_pages);
  int64_t num_pages() const { return num_pages_; }
  int64_t free_pages() const { return int64_t(free_.size()); }
  /// Takes `n` pages (lowest ids first); returns false (taking nothing) if fewer are free.
  bool alloc(int64_t n, std::vector<int32_t>& out);
  /// Returns pages to the free list. Throws std::logic_error on an id outside the pool or a page
  /// that is already free (a double free would corrupt two sequences).
  void free(const int32_t* pages, size_t n);
  void free(const std::vector<int32_t>& pages) { free(pages.data(), pages.size()); }
  /// Ids currently free (for invariant checks).
  const std::vector<int32_t>& free_list() const { return free_; }

 private:
  int64_t num_pages_;
  std::vector<int32_t> free_;       // kept as a stack; popped from the back
  std::vector<uint8_t> is_free_;
};

}  // namespace ds
