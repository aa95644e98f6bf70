// Profiling target for Nsight Compute (ncu) on the device machine: launches the decode-size kernels
// that issue 8's speed minimums are about, a few times each on full-width DeepSeek-V3.2 shapes, with
// no checks and no timing of its own (correctness and speed tables are the other drivers' job):
//   --gemm : gemm_fp8 (official FP8 x FP8, the runner's linear) at M = 1 on q_b 24576x1536,
//            kv_a 576x7168, o 7168x16384, expert gate 2048x7168; gemm_fp8_small_m (exact mode, the
//            kernel that streams near copy bandwidth) at M = 1 on q_b and o for comparison.
//   --mla  : mla_sparse_attention (tensor-core path) at 128 rows x 128 heads, top-k 2048 of 32768
//            slots, FP8 656-byte cache (FlashMLA's benchmark shape in spec/benchmarks.md).
// Each weight has enough copies that a launch reads DRAM, not L2 (ncu also flushes caches between
// replay passes by default). Usage: gpu_prof [--gemm] [--mla] (both when none is given). Exit 0.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gpu_test_util.h"
#include "kernels/gemm_fp8.h"
#include "kernels/gemm_fp8_small_m.h"
#include "kernels/mla_attention.h"
#include "kernels/mla_cache.h"

using ds::cuda::KvCacheDtype;

using namespace ds::gputest;

namespace {

void prof_gemm() {
  struct Shape {
    const char* name;
    int64_t N, K;
  };
  const Shape shapes[] = {{"q_b", 24576, 1536}, {"kv_a", 576, 7168}, {"o", 7168, 16384}, {"expert_gate", 2048, 7168}};
  for (const Shape& s : shapes) {
    const int64_t kb = s.K / 128;
    const size_t wbytes = size_t(s.N * s.K);
    DevBuf<uint8_t> w{wbytes * 3}, xq{size_t(s.K)};
    DevBuf<float> ws{size_t((s.N + 127) / 128 * kb)}, xs{size_t(kb)}, y{size_t(s.N)};
    DS_CUDA_CHECK(cudaMemset(w.p, 0x38, wbytes * 3));  // 1.0 in E4M3
    DS_CUDA_CHECK(cudaMemset(xq.p, 0x38, size_t(s.K)));
    xs.upload(std::vector<float>(size_t(kb), 1.f));
    ws.upload(std::vector<float>(ws.n, 1.f));
    for (int i = 0; i < 3; ++i) {
      ds::cuda::Fp8WeightDev wd{w.p + size_t(i) * wbytes, ws.p, s.N, s.K};
      ds::cuda::gemm_fp8(xq.p, xs.p, 1, wd, y.p, true, nullptr);
    }
    if (s.N != 576 && s.N != 2048) {
      DevBuf<float> x{size_t(s.K)};
      x.upload(std::vector<float>(size_t(s.K), 1.f));
      for (int i = 0; i < 2; ++i) {
        ds::cuda::Fp8WeightDev wd{w.p + size_t(i) * wbytes, ws.p, s.N, s.K};
        ds::cuda::gemm_fp8_small_m(x.p, ds::cuda::ActType::F32, 1, wd, y.p, false, nullptr);
      }
    }
    DS_CUDA_CHECK(cudaDeviceSynchronize());
    std::printf("gemm %s done\n", s.name);
  }
}

void prof_mla() {
  const int64_t R = 128, L = 32768;
  const int H = 128, C = 512, dr = 64, n_sel = 2048;
  std::mt19937_64 rng(7);
  std::vector<int32_t> idx(size_t(R * n_sel));
  for (auto& v : idx) v = int32_t(rng() % uint64_t(L));
  const int64_t slot = ds::cuda::mla_slot_bytes(KvCacheDtype::FP8, C, dr);
  DevBuf<uint8_t> cache{size_t(L * slot)};
  DS_CUDA_CHECK(cudaMemset(cache.p, 0x38, cache.n));
  DevBuf<float> ql{size_t(R * H * C)}, qp{size_t(R * H * dr)}, o{size_t(R * H * C)};
  ql.upload(std::vector<float>(ql.n, 0.01f));
  qp.upload(std::vector<float>(qp.n, 0.01f));
  DevBuf<int32_t> d_idx(idx), d_n(std::vector<int32_t>(size_t(R), n_sel));
  for (int i = 0; i < 2; ++i)
    ds::cuda::mla_sparse_attention(ql.p, qp.p, R, H, C, dr, cache.p, KvCacheDtype::FP8, d_idx.p, d_n.p, n_sel,
                                   0.1f, o.p, nullptr);
  DS_CUDA_CHECK(cudaDeviceSynchronize());
  std::printf("mla done\n");
}

}  // namespace

int main(int argc, char** argv) try {
  bool gemm = false, mla = false;
  for (int i = 1; i < argc; ++i) {
    gemm = gemm || std::strcmp(argv[i], "--gemm") == 0;
    mla = mla || std::strcmp(argv[i], "--mla") == 0;
  }
  if (!gemm && !mla) gemm = mla = true;
  if (gemm) prof_gemm();
  if (mla) prof_mla();
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "gpu_prof: %s\n", e.what());
  return 2;
}
