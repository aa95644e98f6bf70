// Per-row token sampling on the GPU (see sampling.h). One 1024-thread block per row; the
// probabilities are recomputed from the logits in every pass (no workspace), which keeps the kernel
// allocation-free and CUDA-graph capture safe.
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/sampling.h"

namespace ds::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr float kGreedyEps = 1e-6f;     // SGLang's _SAMPLING_EPS, as in src/model/sampler.cpp
constexpr double kFix = 1152921504606846976.0;  // 2^60: fixed-point scale of top-p masses

using Reduce = cub::BlockReduce<double, kThreads>;
using ScanD = cub::BlockScan<double, kThreads>;
using ScanI = cub::BlockScan<int, kThreads>;

struct MaxOp {
  __device__ double operator()(double a, double b) const { return a > b ? a : b; }
};
struct MinOp {
  __device__ double operator()(double a, double b) const { return a < b ? a : b; }
};

struct Shared {
  union {
    Reduce::TempStorage red;
    ScanD::TempStorage scand;
    ScanI::TempStorage scani;
  } cub;
  unsigned int cnt[256];
  unsigned long long mass[256];
  double bcast_d;
  long long bcast_i[4];
};

struct Row {
  const float* l;
  int V;
  double inv_t, max_l, sum;
  __device__ double q(int i) const {
    const float v = l[i];
    // Explicit rounding intrinsics: no FMA contraction, so every pass computes the same bits
    // (and the same expression as the CPU twin, which has no FMA).
    return v != v ? 0.0 : __ddiv_rn(exp(__dsub_rn(__dmul_rn(double(v), inv_t), max_l)), sum);
  }
};

__device__ unsigned long long key(double q) { return static_cast<unsigned long long>(__double_as_longlong(q)); }

// Lowest index of the maximum over non-NaN values (0 if none): the greedy rule of argmax.h.
__device__ int block_argmax(const float* l, int V, Shared& sh) {
  float bv = 0.f;
  long long bi = -1;
  for (int i = threadIdx.x; i < V; i += kThreads) {
    const float v = l[i];
    if (v != v) continue;
    if (bi < 0 || v > bv) bv = v, bi = i;  // ascending i per thread: ties keep the lower index
  }
  // Encode (value order, -index) as one comparable pair through two reductions.
  const double dv = bi < 0 ? -INFINITY : double(bv);
  __syncthreads();
  const double mx = Reduce(sh.cub.red).Reduce(dv, MaxOp());
  if (threadIdx.x == 0) sh.bcast_d = mx;
  __syncthreads();
  const double m = sh.bcast_d;
  const double cand = (bi >= 0 && double(bv) == m) ? double(bi) : double(V);
  __syncthreads();
  const double lo = Reduce(sh.cub.red).Reduce(cand, MinOp());
  if (threadIdx.x == 0) sh.bcast_d = lo;
  __syncthreads();
  const double r = sh.bcast_d;
  __syncthreads();
  return r >= double(V) ? 0 : int(r);
}

__device__ double block_sum(double v, Shared& sh) {
  __syncthreads();
  const double s = Reduce(sh.cub.red).Sum(v);
  if (threadIdx.x == 0) sh.bcast_d = s;
  __syncthreads();
  const double r = sh.bcast_d;
  __syncthreads();
  return r;
}

// Count radix select: the value t of the element at rank `need`-1 in descending q order; returns t's
// bit pattern and leaves in *take how many elements equal to t belong to the top `need`.
__device__ unsigned long long select_rank(const Row& row, long long need, long long* take, Shared& sh) {
  unsigned long long prefix = 0, mask = 0;
  for (int d = 7; d >= 0; --d) {
    for (int b = threadIdx.x; b < 256; b += kThreads) sh.cnt[b] = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < row.V; i += kThreads) {
      const unsigned long long k = key(row.q(i));
      if ((k & mask) == prefix) atomicAdd(&sh.cnt[(k >> (8 * d)) & 255], 1u);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      int b = 255;
      for (; b > 0; --b) {
        if (need <= (long long)sh.cnt[b]) break;
        need -= sh.cnt[b];
      }
      sh.bcast_i[0] = b;
      sh.bcast_i[1] = need;
    }
    __syncthreads();
    prefix |= static_cast<unsigned long long>(sh.bcast_i[0]) << (8 * d);
    mask |= 255ull << (8 * d);
    need = sh.bcast_i[1];
    __syncthreads();
  }
  *take = need;
  return prefix;
}

// Top-p count: the number of ranks r (descending q, ascending id) whose mass before r is < P
// (fixed point). Radix descent keeping the last bin whose first member still starts below P.
__device__ long long top_p_count(const Row& row, unsigned long long P, Shared& sh) {
  unsigned long long prefix = 0, mask = 0, mass_above = 0;
  long long cnt_above = 0;
  for (int d = 7; d >= 0; --d) {
    for (int b = threadIdx.x; b < 256; b += kThreads) sh.cnt[b] = 0, sh.mass[b] = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < row.V; i += kThreads) {
      const double q = row.q(i);
      const unsigned long long k = key(q);
      if ((k & mask) == prefix) {
        const int b = int((k >> (8 * d)) & 255);
        atomicAdd(&sh.cnt[b], 1u);
        atomicAdd(&sh.mass[b], static_cast<unsigned long long>(q * kFix));
      }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      unsigned long long M = mass_above;
      long long C = cnt_above;
      int chosen = -1;
      unsigned long long chosen_M = M;
      long long chosen_C = C;
      for (int b = 255; b >= 0; --b) {
        if (sh.cnt[b] == 0) continue;
        if (M >= P) break;
        chosen = b, chosen_M = M, chosen_C = C;
        M += sh.mass[b];
        C += sh.cnt[b];
      }
      sh.bcast_i[0] = chosen;
      sh.bcast_i[1] = static_cast<long long>(chosen_M);
      sh.bcast_i[2] = chosen_C;
    }
    __syncthreads();
    if (sh.bcast_i[0] < 0) return cnt_above;  // nothing in range starts below P
    prefix |= static_cast<unsigned long long>(sh.bcast_i[0]) << (8 * d);
    mask |= 255ull << (8 * d);
    mass_above = static_cast<unsigned long long>(sh.bcast_i[1]);
    cnt_above = sh.bcast_i[2];
    __syncthreads();
  }
  // The tie group at value `prefix`: member j (ascending id) starts at mass_above + j * f.
  const double t = __longlong_as_double(static_cast<long long>(prefix));
  const unsigned long long f = static_cast<unsigned long long>(t * kFix);
  unsigned int g = 0;
  for (int i = threadIdx.x; i < row.V; i += kThreads) g += key(row.q(i)) == prefix;
  const double gs = block_sum(double(g), sh);
  const long long group = (long long)gs;
  long long j = group;
  if (f > 0) j = min(group, (long long)((P - mass_above + f - 1) / f));
  return cnt_above + max(j, 1ll);
}

__global__ void __launch_bounds__(kThreads)
sample_kernel(const float* __restrict__ logits, int V, const SampleRowParams* __restrict__ params, int32_t* ids) {
  __shared__ Shared sh;
  const SampleRowParams p = params[blockIdx.x];
  Row row{logits + int64_t(blockIdx.x) * V, V, 0.0, 0.0, 1.0};
  if (!(p.temperature >= kGreedyEps)) {
    const int g = block_argmax(row.l, V, sh);
    if (threadIdx.x == 0) ids[blockIdx.x] = g;
    return;
  }
  row.inv_t = 1.0 / double(p.temperature);
  double mx = -INFINITY;
  for (int i = threadIdx.x; i < V; i += kThreads) {
    const float v = row.l[i];
    if (v == v) mx = fmax(mx, __dmul_rn(double(v), row.inv_t));
  }
  __syncthreads();
  mx = Reduce(sh.cub.red).Reduce(mx, MaxOp());
  if (threadIdx.x == 0) sh.bcast_d = mx;
  __syncthreads();
  row.max_l = sh.bcast_d;
  if (!isfinite(row.max_l)) {  // all -inf / NaN / +inf: greedy, as the CPU sampler
    const int g = block_argmax(row.l, V, sh);
    if (threadIdx.x == 0) ids[blockIdx.x] = g;
    return;
  }
  double s = 0.0;
  for (int i = threadIdx.x; i < V; i += kThreads) {
    const float v = row.l[i];
    if (v == v) s += exp(__dsub_rn(__dmul_rn(double(v), row.inv_t), row.max_l));
  }
  row.sum = block_sum(s, sh);

  const bool use_k = p.top_k > 0 && p.top_k < V, use_p = p.top_p < 1.0f, use_m = p.min_p > 0.0f;
  const bool filtered = use_k || use_p || use_m;
  long long keep = use_k ? p.top_k : V;
  if (use_p) {
    const double pf = double(p.top_p) * kFix;
    const unsigned long long P = pf > 0 ? static_cast<unsigned long long>(pf) : 0ull;
    const long long np = P == 0 ? 1 : top_p_count(row, P, sh);
    keep = max(1ll, min(keep, np));
  }
  if (use_m) {
    const double thresh = double(p.min_p) * (1.0 / row.sum);
    unsigned int c = 0;
    for (int i = threadIdx.x; i < V; i += kThreads) c += row.q(i) >= thresh;
    const long long nm = (long long)block_sum(double(c), sh);
    keep = max(1ll, min(keep, nm));
  }
  // Cut: everything above t, plus the first `take` elements equal to t (ascending id).
  unsigned long long t = 0;
  long long take = V;
  const bool cut = filtered && keep < V;
  if (cut) t = select_rank(row, keep, &take, sh);

  // Contiguous chunks per thread for the ordered passes (tie ranks and the CDF).
  const int chunk = (V + kThreads - 1) / kThreads;
  const int b0 = min(V, int(threadIdx.x) * chunk), b1 = min(V, b0 + chunk);
  int ties = 0;
  if (cut)
    for (int i = b0; i < b1; ++i) ties += key(row.q(i)) == t;
  int tie_off = 0;
  __syncthreads();
  ScanI(sh.cub.scani).ExclusiveSum(ties, tie_off);
  __syncthreads();
  auto kept_q = [&](int i, int& tr) -> double {  // q_i if kept else 0; tr = running tie rank
    const double q = row.q(i);
    if (!cut) return q;
    const unsigned long long k = key(q);
    if (k > t) return q;
    if (k == t) return tr++ < take ? q : 0.0;
    return 0.0;
  };
  double kept_local = 0.0;
  {
    int tr = tie_off;
    for (int i = b0; i < b1; ++i) kept_local += kept_q(i, tr);
  }
  const double kept = filtered ? block_sum(kept_local, sh) : 1.0;
  double mine = 0.0;
  {
    int tr = tie_off;
    for (int i = b0; i < b1; ++i) {
      const double q = kept_q(i, tr);
      if (q > 0.0) mine += q / kept;
    }
  }
  double before = 0.0;
  __syncthreads();
  ScanD(sh.cub.scand).ExclusiveSum(mine, before);
  __syncthreads();
  // Inverse CDF in ascending ids: the first i with u < cum; else the last kept nonzero id.
  long long found = V, last_nz = -1;
  {
    int tr = tie_off;
    double cum = before;
    for (int i = b0; i < b1; ++i) {
      const double q = kept_q(i, tr);
      if (!(q > 0.0)) continue;
      const double pn = q / kept;
      last_nz = i;
      cum += pn;
      if (p.u < cum) {
        found = i;
        break;
      }
    }
  }
  __syncthreads();
  const double f = Reduce(sh.cub.red).Reduce(double(found), MinOp());
  if (threadIdx.x == 0) sh.bcast_d = f;
  __syncthreads();
  const double fmin = sh.bcast_d;
  __syncthreads();
  const double lz = Reduce(sh.cub.red).Reduce(double(last_nz), MaxOp());
  if (threadIdx.x == 0) ids[blockIdx.x] = fmin < double(V) ? int32_t(fmin) : (lz >= 0 ? int32_t(lz) : 0);
}

}  // namespace

void sample_rows(const float* logits, int64_t rows, int64_t vocab, const SampleRowParams* params, int32_t* ids,
                 cudaStream_t stream) {
  if (rows < 0 || rows > 0x7fffffff || vocab < 1 || vocab > 0x7fffffff)
    throw std::invalid_argument("sample_rows: bad shape rows=" + std::to_string(rows) +
                                " vocab=" + std::to_string(vocab));
  if (!logits || !params || !ids) throw std::invalid_argument("sample_rows: null logits, params or ids pointer");
  if (rows == 0) return;
  sample_kernel<<<unsigned(rows), kThreads, 0, stream>>>(logits, int(vocab), params, ids);
  DS_CUDA_CHECK_LAUNCH("sample_kernel");
}

}  // namespace ds::cuda
