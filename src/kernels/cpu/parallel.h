// A small persistent thread pool for the CPU kernels. Work is split into independent tasks whose
// results never depend on which thread runs them or how many threads exist (batch invariance, D27).
#pragma once
#include <cstdint>
#include <functional>

namespace ds::cpu {

/// Threads used by parallel_for (workers + the calling thread). Defaults to the environment
/// variable DEEPSERVE_THREADS if set, else std::thread::hardware_concurrency().
int num_threads();
/// Changes the thread count (>= 1); takes effect at the next parallel_for.
void set_num_threads(int n);

/// Runs fn(i) for every i in [0, n_tasks), spread over the pool. Each task must write disjoint
/// outputs. Nested calls (from inside a task) run serially on the calling thread.
void parallel_for(int64_t n_tasks, const std::function<void(int64_t)>& fn);

}  // namespace ds::cpu
