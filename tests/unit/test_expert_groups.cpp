// Host-side expert grouping of the CUDA runner's exact-mode MoE (src/cuda/expert_groups.h): the
// order must be moe.cpp's (experts ascending, pairs i = r * K + k ascending within an expert).
// Header-only, so this runs in CPU-only builds.
#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "cuda/expert_groups.h"

namespace {

TEST(ExpertGroups, GroupsPairsByExpertInAscendingPairOrder) {
  // R = 3 rows, K = 2, E = 4: row 0 -> {2, 0}, row 1 -> {0, 3}, row 2 -> {2, 3}.
  const std::vector<int32_t> ids = {2, 0, 0, 3, 2, 3};
  const ds::cuda::ExpertGroups g = ds::cuda::group_by_expert(ids, 3, 2, 4);
  EXPECT_EQ(g.off, (std::vector<int64_t>{0, 2, 2, 4, 6}));  // expert 1 gets nothing
  EXPECT_EQ(g.dst, (std::vector<int32_t>{1, 2, 0, 4, 3, 5}));  // expert 0: pairs 1, 2; 2: 0, 4; 3: 3, 5
  EXPECT_EQ(g.src, (std::vector<int32_t>{0, 1, 0, 2, 1, 2}));  // row = pair / K
}

TEST(ExpertGroups, EmptyStepAndOneExpert) {
  const ds::cuda::ExpertGroups g0 = ds::cuda::group_by_expert({}, 0, 2, 3);
  EXPECT_EQ(g0.off, (std::vector<int64_t>{0, 0, 0, 0}));
  EXPECT_TRUE(g0.src.empty());
  const ds::cuda::ExpertGroups g1 = ds::cuda::group_by_expert({0, 0, 0}, 3, 1, 1);
  EXPECT_EQ(g1.off, (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(g1.src, (std::vector<int32_t>{0, 1, 2}));
}

TEST(ExpertGroups, RefusesIdsOutsideTheExpertsAndWrongCounts) {
  try {
    ds::cuda::group_by_expert({1, 4}, 1, 2, 4);
    FAIL() << "accepted expert 4 of 4";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "group_by_expert: pair 1 routed to expert 4 outside [0, 4)");
  }
  EXPECT_THROW(ds::cuda::group_by_expert({-1, 0}, 1, 2, 4), std::invalid_argument);
  try {
    ds::cuda::group_by_expert({0, 1, 2}, 2, 2, 4);
    FAIL() << "accepted 3 ids for 2 x 2";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "group_by_expert: 3 ids for R=2 x K=2 (E=4)");
  }
}

}  // namespace
