// Host-side grouping of routed (row, k) pairs by expert for the CUDA runner's exact-mode MoE
// (cuda_model_exact.cpp), in the order of the CPU twin src/model/moe.cpp: for each expert in
// ascending id, its pairs i = r * K + k in ascending i. Header-only and free of CUDA headers, so
// the CPU unit test tests/unit/test_expert_groups.cpp checks it without a GPU.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace ds::cuda {

/// Rows of each expert's group, concatenated: group e is [off[e], off[e + 1]) of `src` (the token
/// row r = i / K whose hidden state the expert reads) and `dst` (the pair index i = r * K + k whose
/// output slot it writes).
struct ExpertGroups {
  std::vector<int32_t> src, dst;
  std::vector<int64_t> off;  ///< [E + 1], off[0] = 0, off[E] = R * K
};

/// Groups ids [R * K] (expert of pair i, from the router) over E experts. Throws
/// std::invalid_argument naming the pair when an id is outside [0, E) or when ids.size() != R * K.
inline ExpertGroups group_by_expert(const std::vector<int32_t>& ids, int64_t R, int K, int E) {
  if (R < 0 || K < 1 || E < 1 || int64_t(ids.size()) != R * K)
    throw std::invalid_argument("group_by_expert: " + std::to_string(ids.size()) + " ids for R=" + std::to_string(R) +
                                " x K=" + std::to_string(K) + " (E=" + std::to_string(E) + ")");
  ExpertGroups g;
  std::vector<int64_t> count(size_t(E), 0);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= E)
      throw std::invalid_argument("group_by_expert: pair " + std::to_string(i) + " routed to expert " +
                                  std::to_string(ids[i]) + " outside [0, " + std::to_string(E) + ")");
    ++count[size_t(ids[i])];
  }
  g.off.assign(size_t(E) + 1, 0);
  for (int e = 0; e < E; ++e) g.off[size_t(e) + 1] = g.off[size_t(e)] + count[size_t(e)];
  g.src.resize(ids.size());
  g.dst.resize(ids.size());
  std::vector<int64_t> next(g.off.begin(), g.off.end() - 1);
  for (size_t i = 0; i < ids.size(); ++i) {  // ascending i within each group
    const int64_t at = next[size_t(ids[i])]++;
    g.src[size_t(at)] = int32_t(int64_t(i) / K);
    g.dst[size_t(at)] = int32_t(i);
  }
  return g;
}

}  // namespace ds::cuda
