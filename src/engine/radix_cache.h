// Radix prefix cache over page-aligned token runs (docs/architecture.md; SGLang's RadixCache with
// page_size > 1). Each edge holds whole pages: its key is k * page_size token ids and its value
// the k page ids whose KV slots hold exactly those tokens' keys for that prefix.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

namespace ds {

/// Not thread-safe (engine thread only). Pages in the tree are "cached": not free, and owned by no
/// request; requests that read them lock their path so they cannot be evicted.
class RadixCache {
 public:
  struct Node {
    Node* parent = nullptr;
    std::vector<int32_t> key;    // token ids, a multiple of page_size
    std::vector<int32_t> pages;  // key.size() / page_size page ids
    std::map<std::vector<int32_t>, std::unique_ptr<Node>> children;  // by the child's first page of tokens
    int lock_ref = 0;            // running requests whose matched/inserted path goes through here
    uint64_t last_access = 0;
  };

  explicit RadixCache(int page_size);
  int page_size() const { return page_size_; }
  Node* root() { return &root_; }

  /// Longest cached prefix of tokens[0, n) in whole pages: appends its page ids to `pages`,
  /// returns the deepest node (root when nothing matches). Splits an edge matched part-way.
  Node* match(const int32_t* tokens, size_t n, std::vector<int32_t>& pages);
  /// Inserts tokens[0, n) (n a multiple of page_size) with their pages. Where the tree already
  /// holds a page for a position, pages[i] is replaced by the tree's page (same tokens, so the
  /// same KV values); the caller frees its own duplicate. Returns the node ending at n.
  Node* insert(const int32_t* tokens, size_t n, std::vector<int32_t>& pages);
  /// lock_ref += 1 (or -= 1) on every node from `node` up to the root.
  void lock(Node* node);
  void unlock(Node* node);
  /// Removes least-recently-used unlocked leaves until at least `n` pages were removed or nothing
  /// is evictable; returns the removed page ids (the caller frees them).
  std::vector<int32_t> evict(int64_t n);
  /// Removes every node; throws std::logic_error if one is locked. Returns all cached pages.
  std::vector<int32_t> reset();

  int64_t cached_pages() const { return cached_pages_; }
  /// Pages in nodes with lock_ref 0 (all of them can be evicted, leaves first).
  int64_t evictable_pages() const;
  /// Every cached page id (for invariant checks).
  void collect_pages(std::vector<int32_t>& out) const;

 private:
  Node* split(Node* child, size_t pages_kept);
  int page_size_;
  Node root_;
  uint64_t clock_ = 0;
  int64_t cached_pages_ = 0;
};

}  // namespace ds
