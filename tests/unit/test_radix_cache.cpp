// Radix prefix cache over page-aligned runs and the page allocator (exact page ids checked).
#include <gtest/gtest.h>

#include <algorithm>

#include "engine/page_allocator.h"
#include "engine/radix_cache.h"

using ds::RadixCache;

TEST(RadixCache, MatchSplitInsertEvict) {
  RadixCache t(2);
  std::vector<int32_t> a = {1, 2, 3, 4, 5, 6}, pa = {10, 11, 12};
  RadixCache::Node* na = t.insert(a.data(), a.size(), pa);
  EXPECT_EQ(pa, (std::vector<int32_t>{10, 11, 12}));
  EXPECT_EQ(t.cached_pages(), 3);
  // Match stops at whole pages: {1,2,3,9} shares one page.
  std::vector<int32_t> got;
  std::vector<int32_t> b = {1, 2, 3, 9, 7};
  RadixCache::Node* nb = t.match(b.data(), b.size(), got);
  EXPECT_EQ(got, (std::vector<int32_t>{10}));
  EXPECT_NE(nb, t.root());
  // Inserting b's first 4 tokens: page 0 comes from the tree, page 1 is new.
  std::vector<int32_t> pb = {20, 21};
  t.insert(b.data(), 4, pb);
  EXPECT_EQ(pb, (std::vector<int32_t>{10, 21}));
  EXPECT_EQ(t.cached_pages(), 4);
  got.clear();
  t.match(a.data(), 6, got);
  EXPECT_EQ(got, (std::vector<int32_t>{10, 11, 12}));
  // Locked paths are not evictable; unlocked leaves go LRU-first (b's leaf: older access).
  t.lock(na);
  EXPECT_EQ(t.evictable_pages(), 1);
  EXPECT_EQ(t.evict(10), (std::vector<int32_t>{21}));
  t.unlock(na);
  EXPECT_THROW(t.unlock(na), std::logic_error);
  auto rest = t.evict(1);  // a's leaf {3..6} (2 pages) goes as one node
  std::sort(rest.begin(), rest.end());
  EXPECT_EQ(rest, (std::vector<int32_t>{11, 12}));
  auto all = t.reset();
  EXPECT_EQ(all, (std::vector<int32_t>{10}));
  EXPECT_EQ(t.cached_pages(), 0);
}

TEST(PageAllocator, AllocFreeAndDoubleFree) {
  ds::PageAllocator p(3);
  std::vector<int32_t> got;
  EXPECT_TRUE(p.alloc(2, got));
  EXPECT_EQ(got, (std::vector<int32_t>{0, 1}));
  EXPECT_FALSE(p.alloc(2, got));
  EXPECT_EQ(got.size(), 2u);
  p.free(got);
  EXPECT_EQ(p.free_pages(), 3);
  EXPECT_THROW(p.free(&got[0], 1), std::logic_error);
  int32_t bad = 3;
  EXPECT_THROW(p.free(&bad, 1), std::logic_error);
  EXPECT_THROW(ds::PageAllocator(0), std::invalid_argument);
}
