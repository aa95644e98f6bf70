// Shared helpers of the GPU test drivers for the elementwise/small ops (gpu_rmsnorm, gpu_act_quant,
// gpu_router, gpu_rope, gpu_argmax): CHECK lines, device buffers, normwise error, the copy ceiling
// and CUDA-graph timing. Header-only; host code (the drivers are .cpp files linking cudart).
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cuda_check.h"

namespace ds::gputest {

inline int g_fail = 0;

/// Prints "CHECK <what> PASS|FAIL" (the line format run_all.sh counts) and counts failures.
inline void check(bool ok, const std::string& what) {
  std::printf("CHECK %-72s %s\n", what.c_str(), ok ? "PASS" : "FAIL");
  if (!ok) ++g_fail;
}

/// Owning device allocation of n elements of T (at least one).
template <class T>
struct DevBuf {
  T* p = nullptr;
  size_t n = 0;
  explicit DevBuf(size_t count) : n(count) {
    DS_CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(count, 1) * sizeof(T)));
  }
  DevBuf(const std::vector<T>& h) : DevBuf(h.size()) { upload(h); }
  ~DevBuf() { cudaFree(p); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  void upload(const std::vector<T>& h) {
    DS_CUDA_CHECK(cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    std::vector<T> h(n);
    DS_CUDA_CHECK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
  void poison() { DS_CUDA_CHECK(cudaMemset(p, 0xff, std::max<size_t>(n, 1) * sizeof(T))); }
};

/// ||a - ref|| / ||ref|| in double; infinity if a has a non-finite value.
inline double normwise(const std::vector<float>& a, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    double d = double(a[i]) - ref[i];
    num += d * d;
    den += double(ref[i]) * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

/// Distance in BF16 units in the last place between two finite BF16 values given as floats
/// (0 when equal; +0 and -0 are equal).
inline int64_t bf16_ulps(float a, float b) {
  auto ord = [](float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    int64_t m = int64_t(u >> 16);
    return (m & 0x8000) ? -(m & 0x7fff) : m;
  };
  return std::llabs(ord(a) - ord(b));
}

/// Device-to-device cudaMemcpyAsync bandwidth over 1 GiB, read + write bytes, median of 10 (GB/s).
inline double copy_gbps() {
  const size_t bytes = 1ull << 30;
  DevBuf<uint8_t> a(bytes), b(bytes);
  DS_CUDA_CHECK(cudaMemset(a.p, 0x5a, bytes));
  cudaEvent_t e0, e1;
  DS_CUDA_CHECK(cudaEventCreate(&e0));
  DS_CUDA_CHECK(cudaEventCreate(&e1));
  std::vector<float> t;
  for (int i = 0; i < 12; ++i) {
    DS_CUDA_CHECK(cudaEventRecord(e0));
    DS_CUDA_CHECK(cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice));
    DS_CUDA_CHECK(cudaEventRecord(e1));
    DS_CUDA_CHECK(cudaEventSynchronize(e1));
    float ms;
    DS_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
    if (i >= 2) t.push_back(ms);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  std::sort(t.begin(), t.end());
  return 2.0 * bytes / (t[t.size() / 2] * 1e-3) / 1e9;
}

/// Number of buffer copies so that `bytes_per_copy` * copies >= 4x the L2 (at least 2): rotating
/// over them makes each launch read from DRAM, not from L2.
inline int copies_beyond_l2(size_t bytes_per_copy) {
  int device = 0, l2 = 0;
  DS_CUDA_CHECK(cudaGetDevice(&device));
  DS_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device));
  return int(std::max<size_t>(2, (size_t(4) * l2 + bytes_per_copy - 1) / bytes_per_copy));
}

/// Median microseconds per launch of `launch(stream, copy_index)`: two CUDA graphs of 20 launches
/// each (copy index rotating over `copies`), replayed 30 times alternately.
inline double time_us(const std::function<void(cudaStream_t, int)>& launch, int copies) {
  cudaStream_t st;
  DS_CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  const int per_graph = 20;
  std::vector<cudaGraphExec_t> execs;
  for (int g = 0; g < 2; ++g) {
    cudaGraph_t graph;
    DS_CUDA_CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
    for (int i = 0; i < per_graph; ++i) launch(st, (g * per_graph + i) % copies);
    DS_CUDA_CHECK(cudaStreamEndCapture(st, &graph));
    cudaGraphExec_t ex;
    DS_CUDA_CHECK(cudaGraphInstantiate(&ex, graph, 0));
    DS_CUDA_CHECK(cudaGraphDestroy(graph));
    execs.push_back(ex);
  }
  cudaEvent_t a, b;
  DS_CUDA_CHECK(cudaEventCreate(&a));
  DS_CUDA_CHECK(cudaEventCreate(&b));
  for (auto g : execs) DS_CUDA_CHECK(cudaGraphLaunch(g, st));
  std::vector<float> t;
  for (int i = 0; i < 30; ++i) {
    DS_CUDA_CHECK(cudaEventRecord(a, st));
    DS_CUDA_CHECK(cudaGraphLaunch(execs[i % 2], st));
    DS_CUDA_CHECK(cudaEventRecord(b, st));
    DS_CUDA_CHECK(cudaEventSynchronize(b));
    float ms;
    DS_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms * 1000.0f / per_graph);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  for (auto e : execs) cudaGraphExecDestroy(e);
  cudaStreamDestroy(st);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

/// One perf table row: `bytes` that must move per launch over the median time.
struct PerfRow {
  std::string shape;
  double us, gbps, frac;
};

inline PerfRow perf_row(const std::string& shape, double bytes, double us, double ceiling) {
  const double gbps = bytes / (us * 1e-6) / 1e9;
  return {shape, us, gbps, gbps / ceiling};
}

/// Prints the perf table (lines starting with '|', which run_all.sh puts under the log).
inline void print_perf(const char* op, const std::vector<PerfRow>& rows, double ceiling) {
  std::printf("RESULT copy_d2d_GBps %.0f GB/s (1 GiB cudaMemcpyAsync, read + write bytes)\n", ceiling);
  std::printf("\n| %s shape | time us | GB/s | of copy bw |\n|---|---|---|---|\n", op);
  for (auto& r : rows)
    std::printf("| %s | %.2f | %.0f | %.0f%% |\n", r.shape.c_str(), r.us, r.gbps, 100 * r.frac);
  std::printf("\n");
}

}  // namespace ds::gputest
