#include "kernels/cpu/gemm.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/act_quant.h"
#include "kernels/cpu/parallel.h"

// Every clone below must compute the same bits as the baseline: no mul+add contraction into FMA
// (AVX-512F has FMA, and GCC contracts by default in C++). Lanes are independent, so 16 SSE/AVX2/
// AVX-512 lanes give the same per-lane sums.
#pragma GCC optimize("fp-contract=off")

namespace ds::cpu {
namespace {

constexpr int64_t kPanelRows = 16;  // W rows dequantized together and reused across the M rows

// Decodes rows [r0, r0+n) of w into out[n, cols]; if `scaled` FP8 codes are multiplied by their
// block scale, else left as raw FP8 values (the official path applies scales per K block).
void decode_rows(const WeightView& w, int64_t r0, int64_t n, float* out, bool scaled) {
  const int64_t K = w.cols;
  switch (w.dtype) {
    case DType::F8_E4M3: {
      const int64_t kb = (K + 127) / 128;
      for (int64_t i = 0; i < n; ++i) {
        const uint8_t* src = w.data + (r0 + i) * K;
        float* dst = out + i * K;
        for (int64_t k = 0; k < K; ++k) dst[k] = kFp8E4M3Table[src[k]];
        if (scaled) {
          const float* s = w.scale_inv + ((r0 + i) / 128) * kb;
          for (int64_t b = 0; b < kb; ++b) {
            const int64_t end = std::min<int64_t>(K, (b + 1) * 128);
            const float sb = s[b];
            for (int64_t k = b * 128; k < end; ++k) dst[k] *= sb;
          }
        }
      }
      break;
    }
    case DType::BF16: {
      thread_local std::vector<uint16_t> raw;
      raw.resize(size_t(K));
      for (int64_t i = 0; i < n; ++i) {
        std::memcpy(raw.data(), w.data + (r0 + i) * K * 2, size_t(K) * 2);  // data may be unaligned
        const uint16_t* src = raw.data();
        float* dst = out + i * K;
        for (int64_t k = 0; k < K; ++k) {
          uint32_t u = uint32_t(src[k]) << 16;
          std::memcpy(dst + k, &u, 4);
        }
      }
      break;
    }
    case DType::F32:
      std::memcpy(out, w.data + r0 * K * 4, size_t(n * K) * 4);
      break;
    default:
      throw std::invalid_argument("gemm: unsupported weight dtype " + std::string(dtype_name(w.dtype)));
  }
}

// 16 FP32 lanes as one GCC vector (lowered to 1 zmm, 2 ymm or 4 xmm by each clone; lanes are
// independent, so every lowering gives the same per-lane bits).
typedef float V16 __attribute__((vector_size(64)));
typedef float V8 __attribute__((vector_size(32)));
typedef float V4 __attribute__((vector_size(16)));

// The fixed 16-lane tree of dot_fixed (j += j+8, j += j+4, 0 += 2, 1 += 3, then 0 + 1) for four
// accumulators at once through shuffles: the same additions with the same operands.
[[gnu::always_inline]] inline V4 tree4(V16 c0, V16 c1, V16 c2, V16 c3) {
  // j += j + 8: outputs 0|1 and 2|3 packed 8 lanes each.
  const V16 s01 = __builtin_shufflevector(c0, c1, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
                  __builtin_shufflevector(c0, c1, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  const V16 s23 = __builtin_shufflevector(c2, c3, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
                  __builtin_shufflevector(c2, c3, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  // j += j + 4: outputs 0..3 packed 4 lanes each.
  const V16 t = __builtin_shufflevector(s01, s23, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) +
                __builtin_shufflevector(s01, s23, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
  // 0 += 2, 1 += 3: 2 lanes each.
  const V8 u = __builtin_shufflevector(t, t, 0, 1, 4, 5, 8, 9, 12, 13) +
               __builtin_shufflevector(t, t, 2, 3, 6, 7, 10, 11, 14, 15);
  return __builtin_shufflevector(u, u, 0, 2, 4, 6) + __builtin_shufflevector(u, u, 1, 3, 5, 7);
}

// Four dot products a·w0..a·w3 sharing the loads of a; each output uses exactly the arithmetic of
// dot_fixed (lane j sums k = j mod 16 in order; then lanes j += j+8, j += j+4, 0 += 2, 1 += 3, and
// (0 + 1) + tail), so results are identical to four dot_fixed calls. The tree runs on the four
// outputs at once through shuffles (same additions, same operands).
[[gnu::always_inline]] inline void dot4_fixed(const float* a, const float* w0, const float* w1, const float* w2,
                                              const float* w3, int64_t n, float* out) {
  V16 c0 = {}, c1 = {}, c2 = {}, c3 = {};
  int64_t k = 0;
  for (; k + 16 <= n; k += 16) {
    V16 x, v0, v1, v2, v3;  // unaligned loads
    std::memcpy(&x, a + k, sizeof x);
    std::memcpy(&v0, w0 + k, sizeof x);
    std::memcpy(&v1, w1 + k, sizeof x);
    std::memcpy(&v2, w2 + k, sizeof x);
    std::memcpy(&v3, w3 + k, sizeof x);
    c0 += x * v0;
    c1 += x * v1;
    c2 += x * v2;
    c3 += x * v3;
  }
  V4 tail = {};
  const float* ws[4] = {w0, w1, w2, w3};
  for (int r = 0; r < 4; ++r)
    for (int64_t t = k; t < n; ++t) tail[r] += a[t] * ws[r][t];
  const V4 d = tree4(c0, c1, c2, c3) + tail;  // (0 + 1) + tail
  std::memcpy(out, &d, sizeof d);
}

// Non-FP8 rows of one panel against all M rows of x. Compiled for AVX2 and baseline (no FMA in
// either, so both give the same bits).
[[gnu::target_clones("avx512f", "avx2", "default")]] void panel_fp32(const float* x, int64_t M, int64_t N, int64_t K,
                                                          const float* panel, int64_t r0, int64_t nr,
                                                          bool bf16_out, float* y) {
  for (int64_t m = 0; m < M; ++m) {
    const float* a = x + m * K;
    float* ym = y + m * N + r0;
    int64_t i = 0;
    float o[4];
    for (; i + 4 <= nr; i += 4) {
      const float* p = panel + i * K;
      dot4_fixed(a, p, p + K, p + 2 * K, p + 3 * K, K, o);
      for (int r = 0; r < 4; ++r) ym[i + r] = bf16_out ? round_bf16(o[r]) : o[r];
    }
    for (; i < nr; ++i) {
      const float* p = panel + i * K;
      dot4_fixed(a, p, p, p, p, K, o);
      ym[i] = bf16_out ? round_bf16(o[0]) : o[0];
    }
  }
}

// Two activation rows against four weight rows: eight independent accumulators, enough to keep
// both AVX-512 add ports busy (four leave them waiting on the add latency). Per output the same
// arithmetic as dot4_fixed / dot_fixed, so the same bits.
[[gnu::always_inline]] inline void dot2x4_fixed(const float* a0, const float* a1, const float* w, int64_t K,
                                                float* o0, float* o1) {
  V16 c0 = {}, c1 = {}, c2 = {}, c3 = {}, d0 = {}, d1 = {}, d2 = {}, d3 = {};
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    V16 x, y, v0, v1, v2, v3;  // unaligned loads
    std::memcpy(&x, a0 + k, sizeof x);
    std::memcpy(&y, a1 + k, sizeof x);
    std::memcpy(&v0, w + k, sizeof x);
    std::memcpy(&v1, w + K + k, sizeof x);
    std::memcpy(&v2, w + 2 * K + k, sizeof x);
    std::memcpy(&v3, w + 3 * K + k, sizeof x);
    // Keep the weights in registers for both rows (else each product reloads them: Zen 4 loads
    // one zmm per cycle, which would bound the loop).
    asm("" : "+v"(v0), "+v"(v1), "+v"(v2), "+v"(v3));
    c0 += x * v0;
    c1 += x * v1;
    c2 += x * v2;
    c3 += x * v3;
    d0 += y * v0;
    d1 += y * v1;
    d2 += y * v2;
    d3 += y * v3;
  }
  V4 t0 = {}, t1 = {};
  for (int r = 0; r < 4; ++r)
    for (int64_t t = k; t < K; ++t) {
      t0[r] += a0[t] * w[r * K + t];
      t1[r] += a1[t] * w[r * K + t];
    }
  const V4 e0 = tree4(c0, c1, c2, c3) + t0, e1 = tree4(d0, d1, d2, d3) + t1;
  std::memcpy(o0, &e0, sizeof e0);
  std::memcpy(o1, &e1, sizeof e1);
}

// panel_fp32 for machines with AVX-512F and M >= 2: activation rows in pairs (dot2x4_fixed), an
// odd last row and a last partial quad through dot4_fixed. Same bits as panel_fp32.
[[gnu::target("avx512f")]] void panel_fp32_pairs(const float* x, int64_t M, int64_t N, int64_t K,
                                                 const float* panel, int64_t r0, int64_t nr, bool bf16_out,
                                                 float* y) {
  auto put = [&](int64_t m, int64_t i, const float* o, int n) {
    float* ym = y + m * N + r0 + i;
    for (int r = 0; r < n; ++r) ym[r] = bf16_out ? round_bf16(o[r]) : o[r];
  };
  int64_t m = 0;
  float o0[4], o1[4];
  for (; m + 2 <= M; m += 2) {
    const float* a0 = x + m * K;
    const float* a1 = a0 + K;
    int64_t i = 0;
    for (; i + 4 <= nr; i += 4) {
      dot2x4_fixed(a0, a1, panel + i * K, K, o0, o1);
      put(m, i, o0, 4);
      put(m + 1, i, o1, 4);
    }
    for (; i < nr; ++i) {
      const float* p = panel + i * K;
      dot4_fixed(a0, p, p, p, p, K, o0);
      dot4_fixed(a1, p, p, p, p, K, o1);
      put(m, i, o0, 1);
      put(m + 1, i, o1, 1);
    }
  }
  for (; m < M; ++m) {
    const float* a = x + m * K;
    int64_t i = 0;
    for (; i + 4 <= nr; i += 4) {
      const float* p = panel + i * K;
      dot4_fixed(a, p, p + K, p + 2 * K, p + 3 * K, K, o0);
      put(m, i, o0, 4);
    }
    for (; i < nr; ++i) {
      const float* p = panel + i * K;
      dot4_fixed(a, p, p, p, p, K, o0);
      put(m, i, o0, 1);
    }
  }
}

// One 128-wide K block of the official FP8 path (16 lanes, fixed tree; no tail).
[[gnu::always_inline]] inline float dot128(const float* a, const float* b) {
  float acc[16] = {};
  for (int k = 0; k < 128; k += 16)
    for (int j = 0; j < 16; ++j) acc[j] += a[k + j] * b[k + j];
  for (int j = 0; j < 8; ++j) acc[j] += acc[j + 8];
  for (int j = 0; j < 4; ++j) acc[j] += acc[j + 4];
  acc[0] += acc[2];
  acc[1] += acc[3];
  return acc[0] + acc[1];
}

// dot128 of `a` against four weight rows at once (same lanes, same tree, so the same bits).
[[gnu::always_inline]] inline V4 dot4_128(const float* a, const float* w0, const float* w1, const float* w2,
                                          const float* w3) {
  V16 c0 = {}, c1 = {}, c2 = {}, c3 = {};
  for (int k = 0; k < 128; k += 16) {
    V16 x, v0, v1, v2, v3;  // unaligned loads
    std::memcpy(&x, a + k, sizeof x);
    std::memcpy(&v0, w0 + k, sizeof x);
    std::memcpy(&v1, w1 + k, sizeof x);
    std::memcpy(&v2, w2 + k, sizeof x);
    std::memcpy(&v3, w3 + k, sizeof x);
    c0 += x * v0;
    c1 += x * v1;
    c2 += x * v2;
    c3 += x * v3;
  }
  return tree4(c0, c1, c2, c3);
}

// FP8 weight rows of one panel (raw E4M3 values in `panel`) against all M rows of the quantized
// activations (official path, spec 9.2): per-K-block FP32 partial sums times (a_scale * w_scale).
// Cloned like panel_fp32; every clone gives the same bits.
[[gnu::target_clones("avx512f", "avx2", "default")]] void panel_fp8(const float* xq, const float* xs, int64_t M,
                                                                     int64_t N, int64_t K, const float* panel,
                                                                     const float* scale_inv, int64_t r0, int64_t nr,
                                                                     bool bf16_out, float* y) {
  const int64_t kb = K / 128;
  for (int64_t m = 0; m < M; ++m) {
    float* ym = y + m * N + r0;
    const float* a = xq + m * K;
    const float* as = xs + m * kb;
    int64_t i = 0;
    for (; i + 4 <= nr; i += 4) {
      const float* wr = panel + i * K;
      const float* ws[4];
      for (int r = 0; r < 4; ++r) ws[r] = scale_inv + ((r0 + i + r) / 128) * kb;
      float acc[4] = {0.f, 0.f, 0.f, 0.f};
      for (int64_t b = 0; b < kb; ++b) {
        const V4 part = dot4_128(a + b * 128, wr + b * 128, wr + K + b * 128, wr + 2 * K + b * 128,
                                 wr + 3 * K + b * 128);
        for (int r = 0; r < 4; ++r) acc[r] += part[r] * (as[b] * ws[r][b]);
      }
      for (int r = 0; r < 4; ++r) ym[i + r] = bf16_out ? round_bf16(acc[r]) : acc[r];
    }
    for (; i < nr; ++i) {
      const float* ws = scale_inv + ((r0 + i) / 128) * kb;
      const float* wr = panel + i * K;
      float acc = 0.f;
      for (int64_t b = 0; b < kb; ++b) {
        float part = dot128(a + b * 128, wr + b * 128);
        acc += part * (as[b] * ws[b]);
      }
      ym[i] = bf16_out ? round_bf16(acc) : acc;
    }
  }
}

}  // namespace

float dot_fixed(const float* a, const float* b, int64_t n) {
  float acc[16] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int64_t k = 0;
  for (; k + 16 <= n; k += 16)
    for (int j = 0; j < 16; ++j) acc[j] += a[k + j] * b[k + j];
  float tail = 0.f;
  for (; k < n; ++k) tail += a[k] * b[k];
  for (int j = 0; j < 8; ++j) acc[j] += acc[j + 8];
  for (int j = 0; j < 4; ++j) acc[j] += acc[j + 4];
  acc[0] += acc[2];
  acc[1] += acc[3];
  return (acc[0] + acc[1]) + tail;
}

void dequantize_rows(const WeightView& w, int64_t r0, int64_t n, float* out) {
  decode_rows(w, r0, n, out, true);
}

void gemm(const float* x, int64_t M, const WeightView& w, float* y, GemmOptions opt) {
  const int64_t N = w.rows, K = w.cols;
  if (M <= 0 || N <= 0) return;
  const bool fp8_path = opt.fp8_activations;
  if (fp8_path && (!w.fp8() || K % 128 != 0))
    throw std::invalid_argument("gemm: FP8 activation path needs an FP8 weight with K % 128 == 0 (K = " +
                                std::to_string(K) + ")");
  // Official path: quantize activations once (row-local, so batch invariant).
  std::vector<float> xq, xs;
  const int64_t kb = (K + 127) / 128;
  if (fp8_path) {
    xq.resize(size_t(M * K));
    xs.resize(size_t(M * kb));
    act_quant(x, M, K, xq.data(), xs.data());
  }
  const int64_t panels = (N + kPanelRows - 1) / kPanelRows;
  static const bool has_avx512 = __builtin_cpu_supports("avx512f");
  const bool pairs = has_avx512 && M >= 2;
  auto task = [&](int64_t p) {
    const int64_t r0 = p * kPanelRows;
    const int64_t nr = std::min(kPanelRows, N - r0);
    thread_local std::vector<float> panel;
    panel.resize(size_t(nr * K));
    decode_rows(w, r0, nr, panel.data(), !fp8_path);
    if (!fp8_path) {
      if (pairs)
        panel_fp32_pairs(x, M, N, K, panel.data(), r0, nr, opt.bf16_output, y);
      else
        panel_fp32(x, M, N, K, panel.data(), r0, nr, opt.bf16_output, y);
      return;
    }
    panel_fp8(xq.data(), xs.data(), M, N, K, panel.data(), w.scale_inv, r0, nr, opt.bf16_output, y);
  };
  // Small problems run on the calling thread (the result is the same either way).
  if (M * N * K < (int64_t(1) << 18)) {
    for (int64_t p = 0; p < panels; ++p) task(p);
  } else {
    parallel_for(panels, task);
  }
}

}  // namespace ds::cpu
