#include "engine/radix_cache.h"

#include <algorithm>
#include <functional>
#include <queue>
#include <stdexcept>

namespace ds {

RadixCache::RadixCache(int page_size) : page_size_(page_size) {
  if (page_size < 1) throw std::invalid_argument("RadixCache: page size must be >= 1");
}

namespace {
// Whole pages of `key` equal to tokens[0, avail) from the start.
size_t common_pages(const std::vector<int32_t>& key, const int32_t* tokens, size_t avail, int ps) {
  size_t k = 0;
  const size_t kp = key.size() / size_t(ps), ap = avail / size_t(ps);
  while (k < kp && k < ap && std::equal(key.begin() + long(k * ps), key.begin() + long((k + 1) * ps), tokens + k * ps)) ++k;
  return k;
}
}  // namespace

// Splits `child`'s edge after `pages_kept` pages; returns the new intermediate node.
RadixCache::Node* RadixCache::split(Node* child, size_t pages_kept) {
  Node* parent = child->parent;
  const size_t cut = pages_kept * size_t(page_size_);
  std::vector<int32_t> first(child->key.begin(), child->key.begin() + page_size_);
  auto mid = std::make_unique<Node>();
  mid->parent = parent;
  mid->key.assign(child->key.begin(), child->key.begin() + long(cut));
  mid->pages.assign(child->pages.begin(), child->pages.begin() + long(pages_kept));
  mid->lock_ref = child->lock_ref;
  mid->last_access = child->last_access;
  std::unique_ptr<Node> owned = std::move(parent->children[first]);
  child->key.erase(child->key.begin(), child->key.begin() + long(cut));
  child->pages.erase(child->pages.begin(), child->pages.begin() + long(pages_kept));
  child->parent = mid.get();
  std::vector<int32_t> rest(child->key.begin(), child->key.begin() + page_size_);
  mid->children[rest] = std::move(owned);
  Node* m = mid.get();
  parent->children[first] = std::move(mid);
  return m;
}

RadixCache::Node* RadixCache::match(const int32_t* tokens, size_t n, std::vector<int32_t>& pages) {
  const size_t ps = size_t(page_size_);
  Node* node = &root_;
  size_t i = 0;
  ++clock_;
  while (i + ps <= n) {
    auto it = node->children.find(std::vector<int32_t>(tokens + i, tokens + i + ps));
    if (it == node->children.end()) break;
    Node* child = it->second.get();
    const size_t k = common_pages(child->key, tokens + i, n - i, page_size_);  // >= 1
    const bool partial = k < child->pages.size();
    if (partial) child = split(child, k);
    pages.insert(pages.end(), child->pages.begin(), child->pages.end());
    i += child->key.size();
    node = child;
    if (partial) break;
  }
  for (Node* x = node; x; x = x->parent) x->last_access = clock_;
  return node;
}

RadixCache::Node* RadixCache::insert(const int32_t* tokens, size_t n, std::vector<int32_t>& pages) {
  if (n % size_t(page_size_) != 0) throw std::logic_error("RadixCache::insert: length is not page-aligned");
  const size_t ps = size_t(page_size_);
  Node* node = &root_;
  size_t i = 0;
  ++clock_;
  while (i < n) {
    std::vector<int32_t> first(tokens + i, tokens + i + ps);
    auto it = node->children.find(first);
    if (it == node->children.end()) {
      auto leaf = std::make_unique<Node>();
      leaf->parent = node;
      leaf->key.assign(tokens + i, tokens + n);
      leaf->pages.assign(pages.begin() + long(i / ps), pages.begin() + long(n / ps));
      cached_pages_ += int64_t(leaf->pages.size());
      Node* l = leaf.get();
      node->children[first] = std::move(leaf);
      node = l;
      break;
    }
    Node* child = it->second.get();
    const size_t k = common_pages(child->key, tokens + i, n - i, page_size_);
    if (k < child->pages.size()) child = split(child, k);
    for (size_t j = 0; j < child->pages.size(); ++j) pages[i / ps + j] = child->pages[j];
    i += child->key.size();
    node = child;
  }
  for (Node* x = node; x; x = x->parent) x->last_access = clock_;
  return node;
}

void RadixCache::lock(Node* node) {
  for (Node* x = node; x && x != &root_; x = x->parent) ++x->lock_ref;
}

void RadixCache::unlock(Node* node) {
  for (Node* x = node; x && x != &root_; x = x->parent) {
    if (x->lock_ref <= 0) throw std::logic_error("RadixCache::unlock: node is not locked");
    --x->lock_ref;
  }
}

std::vector<int32_t> RadixCache::evict(int64_t n) {
  std::vector<int32_t> freed;
  using Item = std::pair<uint64_t, Node*>;
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> leaves;
  std::function<void(Node*)> visit = [&](Node* x) {
    if (x != &root_ && x->children.empty() && x->lock_ref == 0) leaves.push({x->last_access, x});
    for (auto& [k, c] : x->children) visit(c.get());
  };
  visit(&root_);
  while (int64_t(freed.size()) < n && !leaves.empty()) {
    Node* x = leaves.top().second;
    leaves.pop();
    freed.insert(freed.end(), x->pages.begin(), x->pages.end());
    cached_pages_ -= int64_t(x->pages.size());
    Node* parent = x->parent;
    parent->children.erase(std::vector<int32_t>(x->key.begin(), x->key.begin() + page_size_));
    if (parent != &root_ && parent->children.empty() && parent->lock_ref == 0)
      leaves.push({parent->last_access, parent});
  }
  return freed;
}

std::vector<int32_t> RadixCache::reset() {
  std::vector<int32_t> all;
  std::function<void(Node*)> visit = [&](Node* x) {
    if (x != &root_ && x->lock_ref != 0) throw std::logic_error("RadixCache::reset: a node is in use");
    for (auto& [k, c] : x->children) visit(c.get());
  };
  visit(&root_);
  collect_pages(all);
  root_.children.clear();
  cached_pages_ = 0;
  return all;
}

int64_t RadixCache::evictable_pages() const {
  int64_t n = 0;
  std::function<void(const Node*)> visit = [&](const Node* x) {
    if (x != &root_ && x->lock_ref == 0) n += int64_t(x->pages.size());
    for (auto& [k, c] : x->children) visit(c.get());
  };
  visit(&root_);
  return n;
}

void RadixCache::collect_pages(std::vector<int32_t>& out) const {
  std::function<void(const Node*)> visit = [&](const Node* x) {
    out.insert(out.end(), x->pages.begin(), x->pages.end());
    for (auto& [k, c] : x->children) visit(c.get());
  };
  visit(&root_);
}

}  // namespace ds
