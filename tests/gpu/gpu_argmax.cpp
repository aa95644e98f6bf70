// GPU test + benchmark of ds::cuda::argmax_rows (greedy sampling), run on the device machine by
// tests/gpu/run_all.sh. The CPU rule it must match is the greedy path of ds::sample_token
// (src/model/sampler.cpp: NaN skipped, ties -> lowest index, all NaN -> 0); the GPU drivers link
// only the kernel layer, so the driver restates that 8-line loop as `reference` below.
//
// Correctness: ids must be identical. Inputs: random logits over the full vocabulary 129280, rows
// whose maximum value is planted at several indices (ties: the lowest must win, including ties
// split across threads, warps and the 4 lanes of one float4), NaN logits around and at the old
// maximum, an all-NaN row, an all -inf row, a vocabulary not divisible by 4 (scalar path), and a
// tiny vocabulary. Speed: logits bytes read over the median CUDA-graph time, buffers rotated
// beyond 4x the L2, against the copy bandwidth of the same run.
//
// Usage: gpu_argmax [--no-bench]. Prints CHECK/RESULT lines and a table; exit 0 iff all pass.
#include <cuda_runtime.h>

#include <cstring>
#include <limits>
#include <random>

#include "gpu_test_util.h"
#include "kernels/argmax.h"

namespace {

using namespace ds::gputest;

int32_t reference(const float* l, int64_t vocab) {
  int32_t best = 0;
  float bv = 0.f;
  bool found = false;
  for (int64_t i = 0; i < vocab; ++i) {
    if (std::isnan(l[i])) continue;
    if (!found || l[i] > bv) best = int32_t(i), bv = l[i], found = true;
  }
  return best;
}

void correctness(const char* label, int64_t rows, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nz(0.f, 3.f);
  std::uniform_int_distribution<int64_t> ui(0, vocab - 1);
  std::vector<float> l(size_t(rows * vocab));
  for (auto& v : l) v = nz(rng);
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (int64_t r = 0; r < rows; ++r) {
    float* p = &l[size_t(r * vocab)];
    switch (r % 6) {
      case 1:  // the same maximum planted at 2..5 random places
        for (int k = 0, n = 2 + int(r % 4); k < n; ++k) p[ui(rng)] = 40.f;
        break;
      case 2:  // tie inside one float4 and across the row ends
        p[vocab - 1] = 41.f, p[std::min<int64_t>(vocab - 1, 5)] = 41.f, p[std::min<int64_t>(vocab - 1, 6)] = 41.f;
        break;
      case 3:  // NaN at and around a large value
        for (int k = 0; k < 50; ++k) p[ui(rng)] = nan;
        p[ui(rng)] = 39.f;
        p[0] = nan;
        break;
      case 4:
        if (r == 4) std::fill(p, p + vocab, nan);   // all NaN -> 0
        if (r == 10) std::fill(p, p + vocab, -inf);  // all -inf -> 0
        break;
      default:
        break;
    }
  }
  std::vector<int32_t> ref(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) ref[size_t(r)] = reference(&l[size_t(r * vocab)], vocab);
  DevBuf<float> dl(l);
  DevBuf<int32_t> di(static_cast<size_t>(rows));
  di.poison();
  ds::cuda::argmax_rows(dl.p, rows, vocab, di.p, nullptr);
  DS_CUDA_CHECK(cudaDeviceSynchronize());
  auto got = di.download();
  int64_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) bad += got[i] != ref[i];
  char name[160];
  std::snprintf(name, sizeof name, "argmax %s rows=%ld vocab=%ld: ids equal (%ld differ)", label, long(rows),
                long(vocab), long(bad));
  check(bad == 0, name);
}

PerfRow bench(int64_t rows, int64_t vocab, double ceiling) {
  const size_t n = size_t(rows * vocab);
  const int copies = copies_beyond_l2(n * 4);
  std::vector<float> h(n * copies);
  std::mt19937_64 rng(1);
  std::normal_distribution<float> nz(0.f, 3.f);
  for (auto& v : h) v = nz(rng);
  DevBuf<float> dl(h);
  DevBuf<int32_t> di(static_cast<size_t>(rows));
  const double us =
      time_us([&](cudaStream_t st, int c) { ds::cuda::argmax_rows(dl.p + c * n, rows, vocab, di.p, st); }, copies);
  char shape[64];
  std::snprintf(shape, sizeof shape, "%ld x %ld", long(rows), long(vocab));
  return perf_row(shape, double(n) * 4 + double(rows) * 4, us, ceiling);
}

}  // namespace

int main(int argc, char** argv) try {
  const bool do_bench = !(argc > 1 && std::strcmp(argv[1], "--no-bench") == 0);
  correctness("tiny", 12, 7, 1);
  correctness("tiny", 12, 64, 2);
  correctness("scalar path", 12, 129277, 3);
  correctness("full vocab", 1, 129280, 4);
  correctness("full vocab", 64, 129280, 5);
  bool throws = false;
  try {
    ds::cuda::argmax_rows(nullptr, 1, 0, nullptr, nullptr);
  } catch (const std::invalid_argument&) {
    throws = true;
  }
  check(throws, "vocab = 0 throws std::invalid_argument");
  if (do_bench) {
    const double ceiling = copy_gbps();
    std::vector<PerfRow> rows;
    for (int64_t t : {1, 16, 128, 512}) rows.push_back(bench(t, 129280, ceiling));
    print_perf("argmax_rows rows x vocab", rows, ceiling);
  }
  std::printf("ARGMAX %s (%d failed checks)\n", g_fail ? "FAIL" : "PASS", g_fail);
  return g_fail ? 1 : 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "gpu_argmax: %s\n", e.what());
  return 2;
}
