// Oracle A on the real-geometry preset made with index_topk 2048 (DeepSeek-V3.2's own value): prompts
// of 2100 and 5000 tokens, so queries past position 2048 attend to the indexer's top-2048 keys out of
// up to 5000. The oracle runs only on the GPU machine (scripts/reference/run_oracles.sh --topk2048);
// its fixture is small (sampled index sets) and checked here. Skipped, naming the file, until it exists.
#include "test_oracle_real_geometry.h"

using namespace ds;

namespace {

const rg::Variant kV{2048, "real_geometry/oracle_hf_real-geometry-topk2048"};

bool have_fixture() { return std::filesystem::exists(rg::fixture_path(kV) + ".json"); }

#define REQUIRE_FIXTURE() \
  if (!have_fixture()) GTEST_SKIP() << "fixture " << rg::fixture_path(kV) << ".json not generated yet"

}  // namespace

TEST(OracleRealGeometryTopk2048, MetadataRecordsOracleAndSparseSetup) {
  REQUIRE_FIXTURE();
  const auto& m = rg::fx(kV).meta;
  EXPECT_EQ(m["transformers"], "5.17.0");
  EXPECT_EQ(m["index_topk"].get<int>(), 2048);
  EXPECT_EQ(rg::exact_model(kV).config().index_topk, 2048);
  ASSERT_EQ(m["prompts"].size(), 2u);
  EXPECT_EQ(m["prompts"][0]["tokens"].size(), 2100u);
  EXPECT_EQ(m["prompts"][1]["tokens"].size(), 5000u);
  EXPECT_EQ(m["index_sample"].get<int>(), 12);
}

// One test for the three checks that share the two 2100/5000-token traced prefills (each ctest
// case is its own process, so separate cases would redo them: ~80 s each on 2 cores).
// 12 sampled sparse rows per indexer layer and prompt (2 layers with an indexer): 2 x 2 x 12 rows.
TEST(OracleRealGeometryTopk2048, PrefillLogitsHiddenStatesAndIndexSets) {
  REQUIRE_FIXTURE();
  rg::check_last_logits(kV);
  rg::check_hidden(kV);
  EXPECT_EQ(rg::check_index_sets(kV, 0).first, 24);
  EXPECT_EQ(rg::check_index_sets(kV, 1).first, 24);
}

TEST(OracleRealGeometryTopk2048, GreedyContinuationsD24) {
  REQUIRE_FIXTURE();
  auto [checked, agree] = oracle::check_greedy(rg::exact_model(kV), rg::fx(kV));
  std::printf("[oracle exact real-geometry topk2048] greedy: %d strict steps, %d/16 argmax agreements\n", checked,
              agree);
  EXPECT_GT(checked, 0);
}
