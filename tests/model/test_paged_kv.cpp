// Paged KV pool tests on tiny-a (spec/model.md 4.3.7, 5.2; D27): the forward through page tables
// is bit-identical to the private (unpaged) cache, whatever the page size or page order, including
// when the indexer selects keys (> index_topk = 16) spread over several pages.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <vector>

#include "model/deepseek_v32.h"
#include "tools/make_model.h"

namespace fs = std::filesystem;
using namespace ds;

namespace {

struct TinyDir {
  std::string dir;
  TinyDir() {
    dir = (fs::temp_directory_path() / ("ds_paged_test_" + std::to_string(::getpid()))).string();
    make_model("tiny-a", dir, 0);
  }
  ~TinyDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};
const std::string& tiny_dir() {
  static TinyDir d;
  return d.dir;
}

std::vector<int32_t> prompt(int n, uint32_t seed, int vocab) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = int32_t(rng() % uint32_t(vocab));
  return t;
}

Segment paged(std::vector<int32_t> pages, int32_t start, std::vector<int32_t> toks, bool all) {
  Segment s;
  s.start_pos = start;
  s.tokens = std::move(toks);
  s.all_logits = all;
  s.page_table = std::move(pages);
  return s;
}

class PagedTest : public ::testing::TestWithParam<Numerics> {};

}  // namespace

// 40-token prompt: one pass through a private cache vs. the pool with page size 4 and a shuffled,
// non-contiguous page table, prefilled in chunks 13 + 19 and then 8 one-token decodes. Every logit
// must be bit-identical (zero tolerance: the same ops in the same order read the same key values,
// only the slot addresses differ; keys are scored independently so per-page scoring is exact).
TEST_P(PagedTest, PagedEqualsPrivateCacheBitExact) {
  auto m = DeepseekV32::load(tiny_dir(), GetParam());
  const int V = m->config().vocab_size;
  m->init_kv_pool(4, 64);
  auto toks = prompt(40, 21, V);
  auto cache = m->new_cache();
  BatchPlan ref;
  ref.segments.push_back(Segment{cache.get(), 0, toks, true});
  const std::vector<float> full = m->forward(ref).data;

  std::vector<int32_t> pt;  // 10 pages, descending odd ids then even: not contiguous
  for (int i = 0; i < 10; ++i) pt.push_back(i < 5 ? 63 - 2 * i : 2 * i);
  std::vector<float> got;
  auto run = [&](int32_t start, int n, bool all) {
    BatchPlan p;
    p.segments.push_back(paged(pt, start, {toks.begin() + start, toks.begin() + start + n}, all));
    auto lg = m->forward(p);
    got.insert(got.end(), lg.data.begin(), lg.data.end());
  };
  run(0, 13, true);
  run(13, 19, true);
  for (int t = 32; t < 40; ++t) run(t, 1, true);
  ASSERT_EQ(got.size(), full.size());
  for (size_t i = 0; i < full.size(); ++i) ASSERT_EQ(got[i], full[i]) << "row " << i / size_t(V);
}

// Two sequences share their first 2 pages (an 8-token prefix at page size 4, written once), then
// diverge; the batch of their suffixes equals each sequence computed alone in a private cache.
TEST_P(PagedTest, SharedPrefixPagesEqualColdRun) {
  auto m = DeepseekV32::load(tiny_dir(), GetParam());
  const int V = m->config().vocab_size;
  m->init_kv_pool(4, 32);
  auto prefix = prompt(8, 5, V), sa = prompt(17, 6, V), sb = prompt(11, 7, V);
  auto cold = [&](const std::vector<int32_t>& suffix) {
    std::vector<int32_t> all = prefix;
    all.insert(all.end(), suffix.begin(), suffix.end());
    auto c = m->new_cache();
    BatchPlan p;
    p.segments.push_back(Segment{c.get(), 0, all, true});
    auto d = m->forward(p).data;
    return std::vector<float>(d.begin() + 8 * V, d.end());
  };
  auto ca = cold(sa), cb = cold(sb);
  {
    BatchPlan p;
    p.segments.push_back(paged({0, 1}, 0, prefix, false));
    m->forward(p);
  }
  BatchPlan p;
  p.segments.push_back(paged({0, 1, 9, 3, 12, 20, 7}, 8, sa, true));
  p.segments.push_back(paged({0, 1, 30, 31, 2}, 8, sb, true));
  auto lg = m->forward(p);
  ASSERT_EQ(lg.row_begin, (std::vector<int>{0, 17, 28}));
  for (int r = 0; r < 17; ++r)
    for (int v = 0; v < V; ++v) ASSERT_EQ(lg.row(0, r)[v], ca[size_t(r * V + v)]) << r;
  for (int r = 0; r < 11; ++r)
    for (int v = 0; v < V; ++v) ASSERT_EQ(lg.row(1, r)[v], cb[size_t(r * V + v)]) << r;
}

INSTANTIATE_TEST_SUITE_P(BothModes, PagedTest, ::testing::Values(Numerics::Official, Numerics::Exact),
                         [](const auto& info) { return std::string(numerics_name(info.param)); });

// Plans the pool cannot serve are refused before any write: no pool, a short page table, a page id
// outside the pool, and two segments writing the same page.
TEST(Paged, RejectsInvalidPagePlans) {
  auto m = DeepseekV32::load(tiny_dir(), Numerics::Exact);
  BatchPlan nopool;
  nopool.segments.push_back(paged({0}, 0, {1, 2}, false));
  EXPECT_THROW(m->forward(nopool), std::invalid_argument);
  m->init_kv_pool(4, 8);
  EXPECT_EQ(m->kv_pool()->num_pages(), 8);
  BatchPlan short_pt;
  short_pt.segments.push_back(paged({0}, 0, {1, 2, 3, 4, 5}, false));
  EXPECT_THROW(m->forward(short_pt), std::invalid_argument);
  BatchPlan out_of_range;
  out_of_range.segments.push_back(paged({8}, 0, {1}, false));
  EXPECT_THROW(m->forward(out_of_range), std::invalid_argument);
  BatchPlan twice;
  twice.segments.push_back(paged({0, 3}, 4, {1}, false));
  twice.segments.push_back(paged({0, 3}, 5, {1}, false));
  EXPECT_THROW(m->forward(twice), std::invalid_argument);
  BatchPlan shared_read_ok;  // page 0 read by both, written by neither
  shared_read_ok.segments.push_back(paged({0, 3}, 4, {1}, false));
  shared_read_ok.segments.push_back(paged({0, 5}, 4, {1}, false));
  EXPECT_NO_THROW(m->forward(shared_read_ok));
  EXPECT_THROW(m->init_kv_pool(0, 8), std::invalid_argument);
  EXPECT_EQ(m->tokens_processed(), 2u);
}
