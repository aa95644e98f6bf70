// Official FP8 block-scaled GEMM, any M, on FP8 tensor cores (mma.sync m16n8k32 e4m3): a
// weight-streaming kernel for M <= 16 rows per tile and a shared-memory tiled kernel for larger
// tiles, both computing the same bits per element (gemm_fp8.h, docs/cuda.md "FP8 GEMM, any M").
//
// Per-element arithmetic, shared by both kernels (this is what makes a row independent of M):
//  - K permutation inside a 128-wide block: lane q (= lane % 4) holds bytes [h*64 + q*16, +16) of
//    its row for the half h; k32 step s = 2h + j feeds bytes j*8..j*8+3 as the first register and
//    j*8+4..+7 as the second (A: a0/a2 for row r, a1/a3 for row r + 8; B: b0/b1). A and B use the
//    same permutation, so the MMA still sums exactly the 128 products of the block.
//  - Block partial c = 4 chained MMAs from 0 (steps s = 0..3); scaled as c * (xs * ws) with
//    separate IEEE multiplies/adds (no FMA contraction), like the CPU twin.
//  - Blocks are summed in ascending order inside G fixed groups (groups depend on K only);
//    group sums are added in ascending group order.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/gemm_fp8.h"

namespace ds::cuda {
namespace {

// Number of K groups (also the warps per row group of the streaming kernel): divides 8.
__device__ __forceinline__ int64_t imin64(int64_t a, int64_t b) { return a < b ? a : b; }
__host__ __device__ inline int k_groups(int64_t kb) { return kb >= 8 ? 8 : kb >= 4 ? 4 : kb >= 2 ? 2 : 1; }
__device__ __forceinline__ int group_begin(int g, int kb, int G) { return int((int64_t(g) * kb) / G); }

__device__ __forceinline__ void mma_e4m3(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// One 128-block partial for a 16x8 tile: A rows r / r+8 and B row given as two 16-byte halves each.
__device__ __forceinline__ void block_mma(float (&c)[4], const uint4 (&ar)[2], const uint4 (&ar8)[2],
                                          const uint4 (&b)[2]) {
  c[0] = c[1] = c[2] = c[3] = 0.f;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    mma_e4m3(c, ar[h].x, ar8[h].x, ar[h].y, ar8[h].y, b[h].x, b[h].y);
    mma_e4m3(c, ar[h].z, ar8[h].z, ar[h].w, ar8[h].w, b[h].z, b[h].w);
  }
}

__device__ __forceinline__ float out_round(float v, bool bf16) {
  return bf16 ? __bfloat162float(__float2bfloat16_rn(v)) : v;
}

// The problem as the kernels see it. Dense: goff == nullptr, rows [0, M). Grouped: see
// gemm_fp8_grouped.
struct Args {
  const uint8_t* xq;
  const float* xs;
  const int32_t* a_rows;
  const int32_t* goff;
  int G;
  int64_t M;
  const Fp8WeightDev* w_base;  // device array (grouped) or nullptr
  int w_stride;
  Fp8WeightDev w;  // dense weight
  int64_t N, K;
  float* y0;
  float* y1;
  bool bf16;
  int ksplit = 1;  // streaming kernel: warps sharing a column tile's K groups (1, 2, 4 or 8; divides G)
};

// Finds the tile `tile` of BM rows among the groups (warp-wide; all lanes get the answer).
// Returns false past the last tile.
__device__ bool find_tile(const Args& a, int BM, int tile, int& g, int64_t& row0, int& rows) {
  const int lane = threadIdx.x & 31;
  if (a.goff == nullptr) {
    row0 = int64_t(tile) * BM;
    if (row0 >= a.M) return false;
    g = 0;
    rows = int(imin64(BM, a.M - row0));
    return true;
  }
  // Rounds of 256 groups, 8 consecutive groups a lane: the 9 offsets of a lane are loaded together
  // (one L2 round trip per round, not one per 32 groups), then a warp scan of tile counts.
  int base = 0;
  for (int g0 = 0; g0 < a.G; g0 += 256) {
    const int gl = g0 + lane * 8;
    int off[9], nt[8], tot = 0;
#pragma unroll
    for (int j = 0; j < 9; ++j) off[j] = gl + j <= a.G ? a.goff[gl + j] : 0;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int c = gl + j < a.G ? off[j + 1] - off[j] : 0;
      nt[j] = c > 0 ? (c + BM - 1) / BM : 0;
      tot += nt[j];
    }
    int inc = tot;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int v = __shfl_up_sync(0xffffffffu, inc, o);
      if (lane >= o) inc += v;
    }
    const int excl = base + inc - tot;
    const unsigned hit = __ballot_sync(0xffffffffu, tile >= excl && tile < base + inc);
    if (hit) {
      const int src = __ffs(hit) - 1;
      int gg = 0, r0 = 0, rr = 0, t0 = excl;
      bool found = false;
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        if (!found && tile < t0 + nt[j]) {
          found = true;
          gg = gl + j;
          r0 = off[j] + (tile - t0) * BM;
          rr = min(BM, off[j + 1] - r0);
        }
        t0 += nt[j];
      }
      g = __shfl_sync(0xffffffffu, gg, src);
      row0 = __shfl_sync(0xffffffffu, r0, src);
      rows = __shfl_sync(0xffffffffu, rr, src);
      return true;
    }
    base += __shfl_sync(0xffffffffu, inc, 31);
  }
  return false;
}

__device__ __forceinline__ Fp8WeightDev weight_of(const Args& a, int g, int p) {
  return a.w_base ? a.w_base[int64_t(g) * a.w_stride + p] : a.w;
}

// ---- streaming kernel: tiles of 8 or 16 rows, weights DRAM -> registers -> MMA fragments ----------
// One column strip per block (grid.x = strips, grid.y = row tiles via find_tile, grid.z =
// projection). 8 warps = (8 / S) column groups x S K splits (S = Args::ksplit, chosen by the
// launcher from the parallelism the shape offers: 1 when there are enough column tiles, up to G for
// narrow matrices); warp (cg, ks) computes <= 16 rows x NT * 8 columns over the K groups
// [ks G / S, (ks + 1) G / S), block by block in K order. Each lane loads exactly the 16-byte weight
// pieces it feeds to the MMA (ld.global.nc.L1::no_allocate.L2::256B) into a rolling register
// window of P K-block slots: block i + P is loaded into slot i % P right after block i is computed,
// so P - 1 .. P blocks (NT KB each per warp) are always in flight. The activation fragments and the
// two scales of a block are loaded with its weights (through L1). Pointers advance by constants
// (no division, no 64-bit multiply in the loop). Group sums keep the arithmetic of every path:
// split 0 folds its groups left to right (v = g0, v + g1, ...); the other splits store each group
// sum separately in shared memory and split 0 continues the same left-to-right chain with them
// after the one barrier (none when S = 1). Row tiles have 8 * HALVES rows: with HALVES = 1 the
// MMA rows 8..15 are zero and not loaded (a group of more than 8 rows spans several tiles).
constexpr int kStreamWarps = 8;

__device__ __forceinline__ uint4 ld_stream16(const uint8_t* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}
// Through L1 (activation rows are shared by the warps of a block). volatile: issued where written,
// together with the weights of the same block, never sunk towards its use.
__device__ __forceinline__ uint4 ld_l1_16(const uint8_t* p) {
  uint4 v;
  asm volatile("ld.global.nc.v4.u32 {%0, %1, %2, %3}, [%4];\n" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}
// Programmatic dependent launch (PTX griddepcontrol; no-ops when launched without the attribute).
__device__ __forceinline__ void pdl_launch_dependents() { asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory"); }
__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;\n" ::: "memory"); }
__device__ __forceinline__ float ld_l1_f32(const float* p) {
  float v;
  asm volatile("ld.global.nc.f32 %0, [%1];\n" : "=f"(v) : "l"(p));
  return v;
}

// One K block's operands for one lane: NT weight tiles (two 16-byte halves each), A fragments of
// rows r (and r + 8), the activation scales of those rows and the weight block scale.
template <int NT, int HALVES>
struct Slot {
  uint4 w[NT][2];
  uint4 a[2], a8[2];
  float sa, sb, ws;
};

template <int NT, int P, int HALVES>
__global__ void __launch_bounds__(kStreamWarps * 32, 2) gemm_fp8_stream_kernel(Args a) {
  constexpr int NACC = 2 * HALVES;  // accumulators per 8-column tile: rows r (and r + 8) x 2 columns
  // Group sums of splits 1.. (G - G / S <= 7 per column group; (8 / S) (G - G / S) <= 16 in all).
  __shared__ float red[16][NT * NACC][32];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int r = lane >> 2, q = lane & 3;
  const int kb = int(a.K / 128), G = k_groups(kb), S = a.ksplit, gps = G / S;
  const int ks = warp % S, cgi = warp / S, ncg = kStreamWarps / S;
  const int gfirst = ks * gps;  // first K group of this warp
  int g;
  int64_t row0;
  int rows;
  // Programmatic dependent launch (the launcher sets the attribute): the next kernel in the stream
  // may start as this one's blocks retire; this kernel waits for its predecessor's results
  // (griddepcontrol.wait) before it reads anything the predecessor may write: at once for grouped
  // launches (group offsets, row indices), after issuing its first weight loads for dense ones
  // (weights and their scales are never written by a kernel).
  pdl_launch_dependents();
  const bool early = a.goff == nullptr && a.a_rows == nullptr;
  if (!early) pdl_wait();
  if (!find_tile(a, 8 * HALVES, blockIdx.y, g, row0, rows)) return;  // uniform over the block
  const int p = blockIdx.z;
  const Fp8WeightDev w = weight_of(a, g, p);
  float* y = p == 0 ? a.y0 : a.y1;
  const int64_t N = a.N, K = a.K;
  const int64_t n0 = (int64_t(blockIdx.x) * ncg + cgi) * (NT * 8);  // first column of this warp
  const int b0 = group_begin(gfirst, kb, G), nb = group_begin(gfirst + gps, kb, G) - b0;

  // Weight rows of this lane, clamped into the matrix (columns >= N compute garbage, not stored).
  const uint8_t* wp[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) wp[t] = w.data + imin64(n0 + t * 8 + r, N - 1) * K + q * 16 + int64_t(b0) * 128;
  // The warp's NT * 8 columns start at a multiple of NT * 8, which divides 128: one scale row.
  const float* wsp = w.scale_inv + (imin64(n0, N - 1) / 128) * kb + b0;
  // Activation rows of this lane, clamped to the tile's last row: an MMA output row depends only on
  // its own A row, so rows >= `rows` may read any real row (they are not stored).
  const int lr = min(r, rows - 1), lr8 = min(r + 8, rows - 1);
  const int64_t ra = a.a_rows ? a.a_rows[row0 + lr] : row0 + lr;
  const int64_t rb = HALVES == 2 ? (a.a_rows ? a.a_rows[row0 + lr8] : row0 + lr8) : ra;
  const uint8_t* xa = a.xq + ra * K + q * 16 + int64_t(b0) * 128;
  const uint8_t* xb = a.xq + rb * K + q * 16 + int64_t(b0) * 128;
  const float* xsa = a.xs + ra * kb + b0;
  const float* xsb = a.xs + rb * kb + b0;

  // Activation fragments and scales of the next block in K order (rows r and r + 8).
  auto load_act = [&](uint4 (&ar)[2], uint4 (&ar8)[2], float& sa, float& sb) {
    ar[0] = ld_l1_16(xa);
    ar[1] = ld_l1_16(xa + 64);
    sa = ld_l1_f32(xsa);
    if (HALVES == 2) {
      ar8[0] = ld_l1_16(xb);
      ar8[1] = ld_l1_16(xb + 64);
      sb = ld_l1_f32(xsb);
    } else {
      ar8[0] = ar8[1] = make_uint4(0, 0, 0, 0);
      sb = 0.f;
    }
    xa += 128;
    xb += 128;
    ++xsa;
    ++xsb;
  };
  // Loads the next block in K order (the pointers advance by one block) into slot s.
  Slot<NT, HALVES> sl[P];
  auto load_w = [&](Slot<NT, HALVES>& s) {
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      s.w[t][0] = ld_stream16(wp[t]);
      s.w[t][1] = ld_stream16(wp[t] + 64);
      wp[t] += 128;
    }
    s.ws = ld_l1_f32(wsp);
    ++wsp;
  };
  auto load = [&](Slot<NT, HALVES>& s) {
    load_w(s);
    load_act(s.a, s.a8, s.sa, s.sb);
  };
#pragma unroll
  for (int s = 0; s < P; ++s)
    if (s < nb) load_w(sl[s]);
  if (early) pdl_wait();
#pragma unroll
  for (int s = 0; s < P; ++s)
    if (s < nb) load_act(sl[s].a, sl[s].a8, sl[s].sa, sl[s].sb);

  float acc[NT][NACC], tot[NT][NACC];
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int i = 0; i < NACC; ++i) acc[t][i] = tot[t][i] = 0.f;
  // Closes K group gcur after its last block: split 0 folds it into tot (tot = g0, then tot + g),
  // the other splits store it for split 0.
  int gcur = gfirst, gend = group_begin(gfirst + 1, kb, G) - b0;  // gend: local index past gcur's blocks
  auto close_group = [&]() {
#pragma unroll
    for (int t = 0; t < NT; ++t)
#pragma unroll
      for (int i = 0; i < NACC; ++i) {
        if (ks == 0) tot[t][i] = gcur == 0 ? acc[t][i] : __fadd_rn(tot[t][i], acc[t][i]);
        else red[cgi * (G - gps) + (gcur - gps)][t * NACC + i][lane] = acc[t][i];
        acc[t][i] = 0.f;
      }
    ++gcur;
    gend = group_begin(gcur + 1, kb, G) - b0;
  };

#pragma unroll 1
  for (int i0 = 0; i0 < nb; i0 += P) {
#pragma unroll
    for (int s = 0; s < P; ++s) {
      if (i0 + s < nb) {  // warp-uniform
        // Block b0 + i0 + s: block partial (4 chained MMAs from 0), then acc += c * (xs * ws).
        const float s0 = __fmul_rn(sl[s].sa, sl[s].ws), s1 = __fmul_rn(sl[s].sb, sl[s].ws);
#pragma unroll
        for (int t = 0; t < NT; ++t) {
          float c[4];
          block_mma(c, sl[s].a, sl[s].a8, sl[s].w[t]);
          acc[t][0] = __fadd_rn(acc[t][0], __fmul_rn(c[0], s0));
          acc[t][1] = __fadd_rn(acc[t][1], __fmul_rn(c[1], s0));
          if (HALVES == 2) {
            acc[t][NACC - 2] = __fadd_rn(acc[t][NACC - 2], __fmul_rn(c[2], s1));
            acc[t][NACC - 1] = __fadd_rn(acc[t][NACC - 1], __fmul_rn(c[3], s1));
          }
        }
        if (i0 + s + P < nb) load(sl[s]);  // refill the slot just read (block i0 + s + P)
        if (i0 + s + 1 == gend) close_group();             // warp-uniform
      }
    }
  }

  // Splits 1.. stored their group sums; split 0 continues the chain v = ((g0 + g1) + ...) with them.
  if (S > 1) __syncthreads();
  if (ks == 0) {
#pragma unroll
    for (int t = 0; t < NT; ++t)
#pragma unroll
      for (int i = 0; i < NACC; ++i) {
        float v = tot[t][i];
        for (int gg = gps; gg < G; ++gg) v = __fadd_rn(v, red[cgi * (G - gps) + (gg - gps)][t * NACC + i][lane]);
        const int row = r + (i >= 2 ? 8 : 0);
        const int64_t n = n0 + t * 8 + q * 2 + (i & 1);
        if (row < rows && n < N) y[(row0 + row) * N + n] = out_round(v, a.bf16);
      }
  }
}

// ---- tiled kernel: 64 x 64 tiles, 4 warps (2 x 2, 32 x 32 each), 3-stage cp.async pipeline --------
constexpr int kBM = 64, kBN = 64, kStages = 3, kTileThreads = 128;
constexpr int kStageBytes = (kBM + kBN) * 128;

__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0));
}
// Byte offset of 16-byte chunk c (0..7) of tile row `row` (128 bytes a row): odd rows swap their
// 64-byte halves, so the 8 lanes of a quarter warp (rows r, r+1; chunks q or 4+q) hit all 32 banks.
__device__ __forceinline__ int swz(int row, int c) { return row * 128 + ((c ^ ((row & 1) << 2)) << 4); }

__global__ void __launch_bounds__(kTileThreads) gemm_fp8_tiled_kernel(Args a) {
  __shared__ __align__(128) uint8_t smem[kStages * kStageBytes];
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int r = lane >> 2, q = lane & 3;
  const int wm = warp >> 1, wn = warp & 1;
  int g;
  int64_t row0;
  int rows;
  if (!find_tile(a, kBM, blockIdx.y, g, row0, rows)) return;
  const int p = blockIdx.z;
  const Fp8WeightDev w = weight_of(a, g, p);
  float* y = p == 0 ? a.y0 : a.y1;
  const int64_t N = a.N, K = a.K;
  const int kb = int(K / 128), G = k_groups(kb);
  const int64_t n0 = int64_t(blockIdx.x) * kBN;

  // Loader: each thread copies 4 A chunks and 4 B chunks per stage.
  const uint8_t* asrc[4];
  const uint8_t* bsrc[4];
  bool av[4], bv[4];
  int aoff[4], boff[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int id = tid + i * kTileThreads, row = id >> 3, c = id & 7;
    av[i] = row < rows;
    const int64_t ar = av[i] ? (a.a_rows ? a.a_rows[row0 + row] : row0 + row) : 0;
    asrc[i] = a.xq + ar * K + c * 16;
    aoff[i] = swz(row, c);
    bv[i] = n0 + row < N;
    bsrc[i] = w.data + (bv[i] ? n0 + row : 0) * K + c * 16;
    boff[i] = kBM * 128 + swz(row, c);
  }
  const uint32_t sbase = uint32_t(__cvta_generic_to_shared(smem));
  auto load_stage = [&](int b) {
    const uint32_t st = sbase + (b % kStages) * kStageBytes;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      cp_async16(st + aoff[i], asrc[i] + int64_t(b) * 128, av[i]);
      cp_async16(st + boff[i], bsrc[i] + int64_t(b) * 128, bv[i]);
    }
  };
  // Scales: rows of this lane (2 m-tiles x rows r / r+8) and the one weight scale row of the tile.
  int64_t srow[4];
  bool sval[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int row = wm * 32 + (i >> 1) * 16 + r + (i & 1) * 8;
    sval[i] = row < rows;
    srow[i] = sval[i] ? (a.a_rows ? a.a_rows[row0 + row] : row0 + row) : 0;
  }
  const float* wsrow = w.scale_inv + (n0 / 128) * kb;

  float fin[2][4][4], grp[2][4][4];
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int t = 0; t < 4; ++t)
#pragma unroll
      for (int i = 0; i < 4; ++i) fin[mt][t][i] = grp[mt][t][i] = 0.f;

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < kb) load_stage(s);
    asm volatile("cp.async.commit_group;\n" ::);
  }
  int gi = 0, gend = group_begin(1, kb, G);
  for (int b = 0; b < kb; ++b) {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(kStages - 2));
    __syncthreads();
    if (b + kStages - 1 < kb) load_stage(b + kStages - 1);
    asm volatile("cp.async.commit_group;\n" ::);
    const uint8_t* st = smem + (b % kStages) * kStageBytes;
    uint4 ar[2][2], ar8[2][2], bw[4][2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
        const int row = wm * 32 + mt * 16 + r;
        ar[mt][h] = *reinterpret_cast<const uint4*>(st + swz(row, h * 4 + q));
        ar8[mt][h] = *reinterpret_cast<const uint4*>(st + swz(row + 8, h * 4 + q));
      }
#pragma unroll
      for (int t = 0; t < 4; ++t) {
        const int row = wn * 32 + t * 8 + r;
        bw[t][h] = *reinterpret_cast<const uint4*>(st + kBM * 128 + swz(row, h * 4 + q));
      }
    }
    const float ws = wsrow[b];
    float sc[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) sc[i] = __fmul_rn(sval[i] ? a.xs[srow[i] * kb + b] : 0.f, ws);
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
      for (int t = 0; t < 4; ++t) {
        float c[4];
        const uint4 aa[2] = {ar[mt][0], ar[mt][1]}, a8[2] = {ar8[mt][0], ar8[mt][1]};
        const uint4 bb[2] = {bw[t][0], bw[t][1]};
        block_mma(c, aa, a8, bb);
        grp[mt][t][0] = __fadd_rn(grp[mt][t][0], __fmul_rn(c[0], sc[mt * 2]));
        grp[mt][t][1] = __fadd_rn(grp[mt][t][1], __fmul_rn(c[1], sc[mt * 2]));
        grp[mt][t][2] = __fadd_rn(grp[mt][t][2], __fmul_rn(c[2], sc[mt * 2 + 1]));
        grp[mt][t][3] = __fadd_rn(grp[mt][t][3], __fmul_rn(c[3], sc[mt * 2 + 1]));
      }
    if (b + 1 == gend) {  // close K group gi: fin = g0, then fin + g1, ...
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int t = 0; t < 4; ++t)
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            fin[mt][t][i] = gi == 0 ? grp[mt][t][i] : __fadd_rn(fin[mt][t][i], grp[mt][t][i]);
            grp[mt][t][i] = 0.f;
          }
      ++gi;
      gend = group_begin(gi + 1, kb, G);
    }
  }
  asm volatile("cp.async.wait_group 0;\n" ::);
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int t = 0; t < 4; ++t)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int row = wm * 32 + mt * 16 + r + (i >= 2 ? 8 : 0);
        const int64_t n = n0 + wn * 32 + t * 8 + q * 2 + (i & 1);
        if (row < rows && n < N) y[(row0 + row) * N + n] = out_round(fin[mt][t][i], a.bf16);
      }
}

void require(bool ok, const char* fn, const std::string& what) {
  if (!ok) throw std::invalid_argument(std::string(fn) + ": " + what);
}
bool aligned(const void* p, size_t a) { return (reinterpret_cast<uintptr_t>(p) % a) == 0; }

int sm_count() {
  static int n = [] {
    int dev = 0, c = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&c, cudaDevAttrMultiProcessorCount, dev) !=
                                                  cudaSuccess)
      return 132;
    return c;
  }();
  return n;
}

// Streaming kernel forms: NT tiles of 8 columns per warp, register window of P K blocks. P is as
// deep as 2 blocks of 256 threads per SM allow without spills (<= 128 registers, checked with
// -Xptxas -v: the emulated e4m3 MMA needs its f16-unpacked operands in registers too). No L2
// prefetch (D = 0): prefetching D = 8 / NT - P blocks ahead measured slower on every shape on the
// H200 (M = 1: o 68% -> 78% of copy bandwidth without it, q_b 43% -> 48%, grouped gate+up T = 1
// 68% -> 77%): the 4 lanes of a row each asked L2 for the same line.
template <int NT, int HALVES>
void launch_stream(const Args& a, dim3 grid, cudaStream_t stream) {
  constexpr int P = HALVES == 1 ? (NT == 2 ? 2 : 4) : (NT == 2 ? 1 : 2);
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = dim3(kStreamWarps * 32);
  cfg.stream = stream;
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = &attr;
  cfg.numAttrs = 1;
  DS_CUDA_CHECK(cudaLaunchKernelEx(&cfg, gemm_fp8_stream_kernel<NT, P, HALVES>, a));
}

// Launches one of the two kernels for nproj projections. max_tile_rows (a hint, any value is
// correct) picks the kernel and the streaming form: 8-row tiles (HALVES = 1) when it is <= 8, else
// 16-row tiles. tile_bound8/16/64 bound the number of row tiles of 8, 16 and 64 rows (grid.y).
void launch(const Args& a, int64_t max_tile_rows, int64_t tile_bound8, int64_t tile_bound16, int64_t tile_bound64,
            int nproj, cudaStream_t stream) {
  const int64_t kb = a.K / 128;
  // The streaming kernel for M <= 16, and up to 64 rows when the 64 x 64 tiles would not give 2
  // blocks per SM (kv_a at M = 64: 9 blocks): it then reads the weight once per 16-row tile,
  // concurrently, mostly from L2. Both kernels give the same bits, so this is a speed choice only.
  const int64_t tiled_blocks = (a.N + kBN - 1) / kBN * tile_bound64 * nproj;
  if (max_tile_rows <= 16 || (max_tile_rows <= 64 && tiled_blocks < 2 * sm_count())) {
    // Columns per warp NT * 8: with S = 1, NT = 2 (the widest form without spills) unless NT = 1
    // fills the waves clearly better (below); otherwise 1 when NT = 2 would give fewer than 2
    // blocks per SM (fused q_a + kv_a, kv_a, dense expert gate/up). H200, M = 1, S = 1: q_b 48%
    // (NT = 1, 384 blocks, 1.45 waves) -> 63% (NT = 2, 192 blocks); grouped gate+up T = 1 77% ->
    // 91%. With S = G, NT = 2 measured 2-4 points slower.
    // NT only decides which warp computes a column, never the arithmetic of an element.
    // K splits S (warps sharing a column tile's K groups): 1 when the shape has at least 16 column
    // tiles per SM (a whole row of K per warp, no reduction, no barrier: q_b, the grouped experts),
    // else G. Measured on the H200 (M = 1, fraction of copy bandwidth, S = 1 / 2 / 4 against S = G):
    // grouped down T = 1 65% vs 43%, grouped gate+up 66% vs 60%, q_b 43% either way; o 62% (S = 2)
    // vs 68%, q_a + kv_a 35% (S = 4) vs 44%. Like NT, S only decides which warp computes which
    // blocks: the group arithmetic and order are the same for every S (see the kernel), so the bits
    // do not depend on it.
    const int G = k_groups(kb);
    const bool two = max_tile_rows > 8;
    const int64_t tiles = two ? tile_bound16 : tile_bound8;
    const int64_t row_tiles = std::min<int64_t>(tiles, 8) * nproj;
    const int64_t col_tiles = (a.N + 7) / 8;
    const int S = col_tiles * row_tiles >= int64_t(16) * sm_count() ? 1 : G;
    const int ncg = kStreamWarps / S;
    auto blocks_of = [&](int t) { return (a.N + ncg * t * 8 - 1) / (ncg * t * 8); };
    // With S = 1, NT = 1 only when it fills the waves of 2 blocks per SM clearly better (the grouped
    // gate+up with the shared expert at T = 1: 9 groups x 16 strips x 2 = 288 blocks on 264 slots,
    // 55% of 2 waves, measured 65% of copy bandwidth against 90% for the 256 blocks without it).
    // Working row tiles are estimated as min(tile bound, rows): a tile holds at least one row.
    auto wave_fill = [&](int t) {
      const int64_t blocks = blocks_of(t) * std::min<int64_t>(tiles, a.M) * nproj, slots = 2 * sm_count();
      return double(blocks) / double((blocks + slots - 1) / slots * slots);
    };
    const int nt = S == 1 ? (wave_fill(1) > wave_fill(2) + 0.1 ? 1 : 2) : blocks_of(2) * row_tiles >= 2 * sm_count() ? 2 : 1;
    require(tiles <= 65535, "gemm_fp8", "too many row tiles");
    require(blocks_of(nt) < (int64_t(1) << 31), "gemm_fp8", "too many column strips");
    dim3 grid{unsigned(blocks_of(nt)), unsigned(tiles), unsigned(nproj)};
    Args as = a;
    as.ksplit = S;
    switch (nt * 2 + (two ? 1 : 0)) {
      case 2: launch_stream<1, 1>(as, grid, stream); break;
      case 3: launch_stream<1, 2>(as, grid, stream); break;
      case 4: launch_stream<2, 1>(as, grid, stream); break;
      default: launch_stream<2, 2>(as, grid, stream); break;
    }
    DS_CUDA_CHECK_LAUNCH("gemm_fp8_stream_kernel");
  } else {
    require(tile_bound64 <= 65535, "gemm_fp8", "too many row tiles");
    dim3 grid{unsigned((a.N + kBN - 1) / kBN), unsigned(tile_bound64), unsigned(nproj)};
    gemm_fp8_tiled_kernel<<<grid, kTileThreads, 0, stream>>>(a);
    DS_CUDA_CHECK_LAUNCH("gemm_fp8_tiled_kernel");
  }
}

}  // namespace

void gemm_fp8(const uint8_t* xq, const float* xs, int64_t M, const Fp8WeightDev& w, float* y, bool bf16_output,
              cudaStream_t stream) {
  const char* fn = "gemm_fp8";
  require(M >= 1, fn, "M must be >= 1 (got " + std::to_string(M) + ")");
  require(w.rows >= 1 && w.cols >= 128, fn, "empty weight (w.rows/w.cols)");
  require(w.cols % 128 == 0, fn, "K = w.cols must be a multiple of 128 (got " + std::to_string(w.cols) + ")");
  require(w.cols <= (int64_t(1) << 28), fn, "K = w.cols must be <= 2^28");
  require(xq && xs && y && w.data && w.scale_inv, fn, "null pointer (xq, xs, y, w.data or w.scale_inv)");
  require(aligned(xq, 16) && aligned(w.data, 16), fn, "xq and w.data must be 16-byte aligned");
  require(aligned(xs, 4) && aligned(y, 4) && aligned(w.scale_inv, 4), fn, "xs, y, w.scale_inv must be 4-byte aligned");
  Args a{xq, xs, nullptr, nullptr, 1, M, nullptr, 0, w, w.rows, w.cols, y, y, bf16_output};
  launch(a, M, (M + 7) / 8, (M + 15) / 16, (M + kBM - 1) / kBM, 1, stream);
}

void gemm_fp8_grouped(const uint8_t* xq, const float* xs, const int32_t* a_rows, int64_t max_rows,
                      const int32_t* goff, int G, const Fp8WeightDev* w_base, int w_stride, int nproj, int64_t N,
                      int64_t K, float* const* y, int64_t max_group_rows, bool bf16_output, cudaStream_t stream) {
  const char* fn = "gemm_fp8_grouped";
  require(max_rows >= 0 && G >= 1 && N >= 1 && K >= 128 && K % 128 == 0 && K <= (int64_t(1) << 28), fn,
          "bad sizes (max_rows, G, N, K % 128 == 0, K <= 2^28)");
  require(nproj == 1 || nproj == 2, fn, "nproj must be 1 or 2");
  require(w_stride >= nproj, fn, "w_stride must be >= nproj");
  require(xq && xs && goff && w_base && y && y[0] && (nproj == 1 || y[1]), fn, "null pointer");
  require(aligned(xq, 16), fn, "xq must be 16-byte aligned");
  if (max_rows == 0) return;
  Args a{xq, xs, a_rows, goff, G, max_rows, w_base, w_stride, Fp8WeightDev{}, N, K, y[0],
         nproj == 2 ? y[1] : y[0], bf16_output};
  // Tiles: sum over groups of ceil(rows_g / BM) <= ceil(max_rows / BM) + (non-empty groups), and
  // at most min(G, max_rows) groups are non-empty (at T = 1, top-8: 9 tiles, not 257).
  const int64_t partial = std::min<int64_t>(G, max_rows);
  launch(a, std::max<int64_t>(max_group_rows, 1), (max_rows + 7) / 8 + partial, (max_rows + 15) / 16 + partial,
         (max_rows + kBM - 1) / kBM + partial, nproj, stream);
}

}  // namespace ds::cuda
