// Forward-pass tests of the CPU DeepSeek-V3.2 model on the tiny-a checkpoint (spec/model.md 4-6,
// 10.1 test matrix; D23, D27). Tolerances are stated next to each check with their reason.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "model/deepseek_v32.h"
#include "tools/make_model.h"

namespace fs = std::filesystem;
using namespace ds;

namespace {

// One checkpoint per (preset, index_topk), made once per test binary run.
// Removes the made checkpoints when the test binary exits.
struct MadeDirs : std::map<std::string, std::string> {
  ~MadeDirs() {
    for (auto& [k, d] : *this) {
      std::error_code ec;
      fs::remove_all(d, ec);
    }
  }
};

std::string model_dir(const std::string& preset, int topk = 0) {
  static MadeDirs made;
  const std::string key = preset + "_" + std::to_string(topk);
  auto it = made.find(key);
  if (it != made.end()) return it->second;
  fs::path dir = fs::temp_directory_path() / ("ds_model_test_" + std::to_string(::getpid()) + "_" + key);
  make_model(preset, dir.string(), topk);
  made[key] = dir.string();
  return dir.string();
}

std::vector<int32_t> prompt(int n, uint32_t seed, int vocab) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = int32_t(rng() % uint32_t(vocab));
  return t;
}

// All-position logits of `tokens` in one prefill.
std::vector<float> one_pass(DeepseekV32& m, const std::vector<int32_t>& tokens) {
  auto cache = m.new_cache();
  BatchPlan p;
  p.segments.push_back(Segment{cache.get(), 0, tokens, true});
  return m.forward(p).data;
}

double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += double(a[i] - b[i]) * double(a[i] - b[i]);
    den += double(b[i]) * double(b[i]);
  }
  return std::sqrt(num / den);
}

class ModelTest : public ::testing::TestWithParam<Numerics> {};

}  // namespace

// Decode with the cache is bit-identical to a full recompute: every op is row-local with a fixed
// reduction order and the indexer/attention of position p only read keys 0..p (D27), so the
// tolerance is zero. 30 tokens cross index_topk = 16 mid-decode (spec 10.1 item 2).
TEST_P(ModelTest, DecodeWithCacheEqualsFullRecompute) {
  auto m = DeepseekV32::load(model_dir("tiny-a"), GetParam());
  const int V = m->config().vocab_size;
  auto toks = prompt(30, 7, V);
  auto full = one_pass(*m, toks);
  auto cache = m->new_cache();
  BatchPlan p;
  p.segments.push_back(Segment{cache.get(), 0, {toks.begin(), toks.begin() + 10}, true});
  auto pre = m->forward(p);
  for (int i = 0; i < 10 * V; ++i) ASSERT_EQ(pre.data[size_t(i)], full[size_t(i)]) << i;
  for (int t = 10; t < 30; ++t) {
    BatchPlan d;
    d.segments.push_back(Segment{cache.get(), t, {toks[size_t(t)]}, false});
    auto lg = m->forward(d);
    ASSERT_EQ(lg.data.size(), size_t(V));
    for (int v = 0; v < V; ++v) ASSERT_EQ(lg.data[size_t(v)], full[size_t(t) * V + v]) << "pos " << t << " v " << v;
  }
  EXPECT_EQ(cache->length, 30);
}

// Chunked prefill 24 + 20 equals one pass of 44 (> index_topk: the indexer scores cached + new
// keys). Same zero tolerance and reason as above.
TEST_P(ModelTest, ChunkedPrefillEqualsOnePass) {
  auto m = DeepseekV32::load(model_dir("tiny-a"), GetParam());
  const int V = m->config().vocab_size;
  auto toks = prompt(44, 11, V);
  auto full = one_pass(*m, toks);
  auto cache = m->new_cache();
  BatchPlan a, b;
  a.segments.push_back(Segment{cache.get(), 0, {toks.begin(), toks.begin() + 24}, true});
  auto la = m->forward(a);
  b.segments.push_back(Segment{cache.get(), 24, {toks.begin() + 24, toks.end()}, true});
  auto lb = m->forward(b);
  ASSERT_EQ(la.data.size() + lb.data.size(), full.size());
  for (size_t i = 0; i < la.data.size(); ++i) ASSERT_EQ(la.data[i], full[i]) << i;
  for (size_t i = 0; i < lb.data.size(); ++i) ASSERT_EQ(lb.data[i], full[la.data.size() + i]) << i;
}

// A batch of 3 segments (fresh prefill 5, fresh prefill 20, decode after 10 cached tokens) gives
// bit-identical logits to each segment run alone (D27 batch invariance: zero tolerance).
TEST_P(ModelTest, BatchOfThreeEqualsEachAlone) {
  auto m = DeepseekV32::load(model_dir("tiny-a"), GetParam());
  const int V = m->config().vocab_size;
  auto t1 = prompt(5, 1, V), t2 = prompt(20, 2, V), t3 = prompt(11, 3, V);
  auto run_alone = [&](const std::vector<int32_t>& pre, const std::vector<int32_t>& seg) {
    auto c = m->new_cache();
    if (!pre.empty()) {
      BatchPlan p;
      p.segments.push_back(Segment{c.get(), 0, pre, false});
      m->forward(p);
    }
    BatchPlan p;
    p.segments.push_back(Segment{c.get(), int32_t(pre.size()), seg, true});
    return m->forward(p).data;
  };
  auto a1 = run_alone({}, t1), a2 = run_alone({}, t2);
  auto a3 = run_alone({t3.begin(), t3.begin() + 10}, {t3[10]});
  auto c1 = m->new_cache(), c2 = m->new_cache(), c3 = m->new_cache();
  {
    BatchPlan p;
    p.segments.push_back(Segment{c3.get(), 0, {t3.begin(), t3.begin() + 10}, false});
    m->forward(p);
  }
  BatchPlan p;
  p.segments.push_back(Segment{c1.get(), 0, t1, true});
  p.segments.push_back(Segment{c2.get(), 0, t2, true});
  p.segments.push_back(Segment{c3.get(), 10, {t3[10]}, true});
  auto lg = m->forward(p);
  ASSERT_EQ(lg.row_begin, (std::vector<int>{0, 5, 25, 26}));
  const std::vector<float>* alone[3] = {&a1, &a2, &a3};
  for (int s = 0; s < 3; ++s)
    for (int r = 0; r < lg.row_begin[s + 1] - lg.row_begin[s]; ++r)
      for (int v = 0; v < V; ++v)
        ASSERT_EQ(lg.row(s, r)[v], (*alone[s])[size_t(r) * V + v]) << "segment " << s << " row " << r;
}

INSTANTIATE_TEST_SUITE_P(BothModes, ModelTest, ::testing::Values(Numerics::Official, Numerics::Exact),
                         [](const auto& info) { return std::string(numerics_name(info.param)); });

// index_topk >= length is dense causal attention (spec 5.3). tiny-a with index_topk 1024 never
// selects; with index_topk 16 rows 0..15 (<= 16 causal keys) must be bit-identical to it and
// later rows must differ (sparsity is active).
TEST(Model, TopkAtLeastLengthIsDenseAttention) {
  auto sparse = DeepseekV32::load(model_dir("tiny-a"), Numerics::Official);
  auto dense = DeepseekV32::load(model_dir("tiny-a", 1024), Numerics::Official);
  ASSERT_EQ(dense->config().index_topk, 1024);
  const int V = sparse->config().vocab_size;
  auto toks = prompt(40, 5, V);
  auto ls = one_pass(*sparse, toks), ld = one_pass(*dense, toks);
  for (int i = 0; i < 16 * V; ++i) ASSERT_EQ(ls[size_t(i)], ld[size_t(i)]) << i;
  std::vector<float> tail_s(ls.begin() + 16 * V, ls.end()), tail_d(ld.begin() + 16 * V, ld.end());
  EXPECT_GT(rel_err(tail_s, tail_d), 1e-4);  // dropping keys changes the logits well beyond FP32 noise
}

// Official and exact numerics compute the same model with different rounding: their logits must
// differ by more than the FP32-reassociation level (1e-5) because official quantizes activations
// to FP8 (2^-4 relative per element), yet stay within 0.5 normwise (the same network).
TEST(Model, OfficialAndExactDiffer) {
  auto off = DeepseekV32::load(model_dir("tiny-a"), Numerics::Official);
  auto ex = DeepseekV32::load(model_dir("tiny-a"), Numerics::Exact);
  auto toks = prompt(24, 9, off->config().vocab_size);
  auto lo = one_pass(*off, toks), le = one_pass(*ex, toks);
  const double e = rel_err(lo, le);
  EXPECT_GT(e, 1e-3);
  EXPECT_LT(e, 0.5);
}

// tokens_processed counts every token run through the layers: a prefill of 10 + 12 tokens, then
// 3 decode steps of 2 requests add exactly 2 per step.
TEST(Model, TokensProcessedCountsDecodeStepsAsOneTokenPerRequest) {
  auto m = DeepseekV32::load(model_dir("tiny-a"), Numerics::Official);
  const int V = m->config().vocab_size;
  auto c1 = m->new_cache(), c2 = m->new_cache();
  BatchPlan p;
  p.segments.push_back(Segment{c1.get(), 0, prompt(10, 1, V), false});
  p.segments.push_back(Segment{c2.get(), 0, prompt(12, 2, V), false});
  m->forward(p);
  EXPECT_EQ(m->tokens_processed(), 22u);
  for (int step = 0; step < 3; ++step) {
    BatchPlan d;
    d.segments.push_back(Segment{c1.get(), 10 + step, {int32_t(step + 3)}, false});
    d.segments.push_back(Segment{c2.get(), 12 + step, {int32_t(step + 4)}, false});
    auto lg = m->forward(d);
    EXPECT_EQ(lg.row_begin, (std::vector<int>{0, 1, 2}));
    EXPECT_EQ(m->tokens_processed(), 22u + 2u * uint64_t(step + 1));
  }
}

// Invalid plans are refused before any cache is touched.
TEST(Model, RejectsInvalidPlans) {
  auto m = DeepseekV32::load(model_dir("tiny-a"), Numerics::Exact);
  auto c = m->new_cache();
  BatchPlan bad_pos;
  bad_pos.segments.push_back(Segment{c.get(), 3, {1, 2}, false});
  EXPECT_THROW(m->forward(bad_pos), std::invalid_argument);
  BatchPlan bad_tok;
  bad_tok.segments.push_back(Segment{c.get(), 0, {1, 1024}, false});
  EXPECT_THROW(m->forward(bad_tok), std::invalid_argument);
  BatchPlan twice;
  twice.segments.push_back(Segment{c.get(), 0, {1}, false});
  twice.segments.push_back(Segment{c.get(), 0, {2}, false});
  EXPECT_THROW(m->forward(twice), std::invalid_argument);
  EXPECT_EQ(c->length, 0);
  EXPECT_EQ(m->tokens_processed(), 0u);
  EXPECT_THROW(parse_numerics("fp16"), std::invalid_argument);
}
