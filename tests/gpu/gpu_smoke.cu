// D31 pipeline smoke test (docs/cuda.md): a trivial kernel checked element by element, the device
// copy and streaming-read bandwidth ceilings, and (built with -DDS_WITH_CUBLAS -lcublas on the device
// machine) a cuBLAS bf16 GEMM ceiling. Prints "RESULT <name> <value> <unit>" lines that
// tests/gpu/smoke.sh turns into a table; exit code 0 only when every check passed.
//
// Usage: gpu_smoke [--quick]   (--quick: small sizes, for compute-sanitizer and ncu runs)
#include <cuda_runtime.h>
#ifdef DS_WITH_CUBLAS
#include <cublas_v2.h>
#include <cuda_bf16.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "kernels/cuda_check.h"

namespace {

// splitmix64-style hash -> uniform float in [-1, 1): random, never-zero-heavy test data.
__host__ __device__ inline float hash_unit(uint64_t i, uint64_t seed) {
  uint64_t z = i + seed * 0x9E3779B97F4A7C15ull + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return float(z >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

__global__ void fill_f32(float* p, size_t n, uint64_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    p[i] = hash_unit(i, seed);
}

__global__ void axpb(const float* x, float* y, float a, float b, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    y[i] = __fmaf_rn(a, x[i], b);
}

// 16-byte copy, grid-stride, 4 loads in flight per thread.
__global__ void copy16(const uint4* __restrict__ src, uint4* __restrict__ dst, size_t n) {
  size_t stride = size_t(gridDim.x) * blockDim.x;
  size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  for (; i + 3 * stride < n; i += 4 * stride) {
    uint4 a = src[i], b = src[i + stride], c = src[i + 2 * stride], d = src[i + 3 * stride];
    dst[i] = a; dst[i + stride] = b; dst[i + 2 * stride] = c; dst[i + 3 * stride] = d;
  }
  for (; i < n; i += stride) dst[i] = src[i];
}

// Streaming read: xor of all 16-byte words, one word written per thread (keeps the loads alive).
__global__ void read16(const uint4* __restrict__ src, size_t n, uint32_t* out) {
  size_t stride = size_t(gridDim.x) * blockDim.x;
  size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  uint32_t acc = 0;
  for (; i + 3 * stride < n; i += 4 * stride) {
    uint4 a = src[i], b = src[i + stride], c = src[i + 2 * stride], d = src[i + 3 * stride];
    acc ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w ^ c.x ^ c.y ^ c.z ^ c.w ^ d.x ^ d.y ^ d.z ^ d.w;
  }
  for (; i < n; i += stride) acc ^= src[i].x ^ src[i].y ^ src[i].z ^ src[i].w;
  out[blockIdx.x * blockDim.x + threadIdx.x] = acc;
}

template <class F>
double median_ms(F&& launch, int warmup, int reps) {
  cudaEvent_t a, b;
  DS_CUDA_CHECK(cudaEventCreate(&a));
  DS_CUDA_CHECK(cudaEventCreate(&b));
  for (int i = 0; i < warmup; ++i) launch();
  DS_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<float> t(reps);
  for (int i = 0; i < reps; ++i) {
    DS_CUDA_CHECK(cudaEventRecord(a));
    launch();
    DS_CUDA_CHECK(cudaEventRecord(b));
    DS_CUDA_CHECK(cudaEventSynchronize(b));
    DS_CUDA_CHECK(cudaEventElapsedTime(&t[i], a, b));
  }
  DS_CUDA_CHECK(cudaEventDestroy(a));
  DS_CUDA_CHECK(cudaEventDestroy(b));
  std::sort(t.begin(), t.end());
  return t[reps / 2];
}

int g_failures = 0;
void result(const char* name, double v, const char* unit) { std::printf("RESULT %s %.4g %s\n", name, v, unit); }
void check(bool ok, const char* what) {
  std::printf("CHECK %s %s\n", what, ok ? "PASS" : "FAIL");
  if (!ok) ++g_failures;
}

}  // namespace

int main(int argc, char** argv) try {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  int dev = 0, driver = 0, runtime = 0;
  DS_CUDA_CHECK(cudaSetDevice(dev));
  cudaDeviceProp p{};
  DS_CUDA_CHECK(cudaGetDeviceProperties(&p, dev));
  DS_CUDA_CHECK(cudaDriverGetVersion(&driver));
  DS_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
  int clock_khz = 0, mem_clock_khz = 0;
  DS_CUDA_CHECK(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, dev));
  DS_CUDA_CHECK(cudaDeviceGetAttribute(&mem_clock_khz, cudaDevAttrMemoryClockRate, dev));
  std::printf("DEVICE %s cc %d.%d, %d SMs, L2 %d MiB, %.1f GiB, smem/block optin %zu KiB, "
              "SM clock %d MHz, driver %d, runtime %d\n",
              p.name, p.major, p.minor, p.multiProcessorCount, p.l2CacheSize >> 20,
              p.totalGlobalMem / 1073741824.0, p.sharedMemPerBlockOptin >> 10, clock_khz / 1000,
              driver, runtime);
  check(p.major == 9 && p.minor == 0, "compute capability 9.0 (sm_90a code runs)");

  // 1. Trivial kernel, every element checked against the host (same fused multiply-add).
  {
    const size_t n = (1u << 20) + 123;  // not a multiple of the block size
    float *x, *y;
    DS_CUDA_CHECK(cudaMalloc(&x, n * 4));
    DS_CUDA_CHECK(cudaMalloc(&y, n * 4));
    fill_f32<<<256, 256>>>(x, n, 7);
    DS_CUDA_CHECK_LAUNCH("fill_f32");
    DS_CUDA_CHECK(cudaMemset(y, 0xff, n * 4));  // poison: NaN
    axpb<<<512, 256>>>(x, y, 1.5f, -0.25f, n);
    DS_CUDA_CHECK_LAUNCH("axpb");
    std::vector<float> hy(n);
    DS_CUDA_CHECK(cudaMemcpy(hy.data(), y, n * 4, cudaMemcpyDeviceToHost));
    size_t bad = 0;
    for (size_t i = 0; i < n; ++i)
      if (hy[i] != std::fma(1.5f, hash_unit(i, 7), -0.25f)) ++bad;
    std::printf("trivial kernel: %zu of %zu elements differ\n", bad, n);
    check(bad == 0, "trivial kernel bit-exact");
    DS_CUDA_CHECK(cudaFree(x));
    DS_CUDA_CHECK(cudaFree(y));
  }

  // 2. Copy and read bandwidth (bytes counted: read + written for copies, read for reads).
  {
    const size_t bytes = quick ? (64ull << 20) : (2ull << 30);
    const size_t n16 = bytes / 16;
    const int warm = quick ? 1 : 3, reps = quick ? 3 : 20;
    uint4 *a, *b;
    uint32_t* sink;
    DS_CUDA_CHECK(cudaMalloc(&a, bytes));
    DS_CUDA_CHECK(cudaMalloc(&b, bytes));
    const int blocks = p.multiProcessorCount * 8, threads = 256;
    DS_CUDA_CHECK(cudaMalloc(&sink, size_t(blocks) * threads * 4));
    fill_f32<<<1024, 256>>>(reinterpret_cast<float*>(a), bytes / 4, 11);
    DS_CUDA_CHECK_LAUNCH("fill_f32");
    double t_memcpy = median_ms([&] { DS_CUDA_CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice)); }, warm, reps);
    double t_copy = median_ms([&] { copy16<<<blocks, threads>>>(a, b, n16); }, warm, reps);
    DS_CUDA_CHECK_LAUNCH("copy16");
    double t_read = median_ms([&] { read16<<<blocks, threads>>>(a, n16, sink); }, warm, reps);
    DS_CUDA_CHECK_LAUNCH("read16");
    // The copy must be exact: compare a sample of words.
    std::vector<uint4> ha(4096), hb(4096);
    DS_CUDA_CHECK(cudaMemcpy(ha.data(), a + n16 - 4096, 4096 * 16, cudaMemcpyDeviceToHost));
    DS_CUDA_CHECK(cudaMemcpy(hb.data(), b + n16 - 4096, 4096 * 16, cudaMemcpyDeviceToHost));
    check(std::memcmp(ha.data(), hb.data(), 4096 * 16) == 0, "copy16 copies exactly (last 64 KiB)");
    std::printf("bandwidth over %.2f GiB, median of %d:\n", bytes / 1073741824.0, reps);
    result("memcpy_d2d_GBps", 2.0 * bytes / t_memcpy / 1e6, "GB/s");
    result("copy_kernel_GBps", 2.0 * bytes / t_copy / 1e6, "GB/s");
    result("read_kernel_GBps", 1.0 * bytes / t_read / 1e6, "GB/s");
    DS_CUDA_CHECK(cudaFree(a));
    DS_CUDA_CHECK(cudaFree(b));
    DS_CUDA_CHECK(cudaFree(sink));
  }

#ifdef DS_WITH_CUBLAS
  // 3. cuBLAS bf16 GEMM ceiling on random data (8192^3, FP32 accumulate).
  if (!quick) {
    const int n = 8192;
    const size_t e = size_t(n) * n;
    float* tmp;
    __nv_bfloat16 *A, *B, *C;
    DS_CUDA_CHECK(cudaMalloc(&tmp, e * 4));
    DS_CUDA_CHECK(cudaMalloc(&A, e * 2));
    DS_CUDA_CHECK(cudaMalloc(&B, e * 2));
    DS_CUDA_CHECK(cudaMalloc(&C, e * 2));
    std::vector<__nv_bfloat16*> AB = {A, B};
    for (int k = 0; k < 2; ++k) {
      fill_f32<<<1024, 256>>>(tmp, e, 100 + k);
      DS_CUDA_CHECK_LAUNCH("fill_f32");
      std::vector<float> h(e);
      DS_CUDA_CHECK(cudaMemcpy(h.data(), tmp, e * 4, cudaMemcpyDeviceToHost));
      std::vector<__nv_bfloat16> hb(e);
      for (size_t i = 0; i < e; ++i) hb[i] = __float2bfloat16(h[i]);
      DS_CUDA_CHECK(cudaMemcpy(AB[k], hb.data(), e * 2, cudaMemcpyHostToDevice));
    }
    cublasHandle_t h;
    if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) throw std::runtime_error("cublasCreate failed");
    const float one = 1.0f, zero = 0.0f;
    cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
    auto gemm = [&] {
      st = cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &one, A, CUDA_R_16BF, n, B, CUDA_R_16BF, n,
                        &zero, C, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    };
    double t = median_ms(gemm, 3, 10);
    check(st == CUBLAS_STATUS_SUCCESS, "cublasGemmEx bf16 status");
    result("cublas_bf16_gemm_8192_TFLOPs", 2.0 * n * double(n) * n / t / 1e9, "TFLOP/s");
    cublasDestroy(h);
    DS_CUDA_CHECK(cudaFree(tmp));
    DS_CUDA_CHECK(cudaFree(A));
    DS_CUDA_CHECK(cudaFree(B));
    DS_CUDA_CHECK(cudaFree(C));
  }
#endif
  DS_CUDA_CHECK(cudaDeviceSynchronize());
  std::printf("SMOKE %s (%d failed checks)\n", g_failures ? "FAIL" : "PASS", g_failures);
  return g_failures ? 1 : 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "gpu_smoke: %s\n", e.what());
  return 2;
}
