// Small row-wise and elementwise ops of the CUDA model runner (src/cuda/), launcher only: no CUDA
// headers. Each op mirrors a CPU twin of the official-mode forward (src/model/*.cpp, D23) in order
// and rounding; where the twin's order is reproduced the result is bit-identical (stated per op).
// Official-mode activations are F32 buffers holding BF16-rounded values; BF16 storage (uint16_t
// bits) only where an argument says so. All launches are asynchronous on `stream`; every function
// throws std::invalid_argument naming the argument for negative sizes / null pointers, and
// std::runtime_error for a CUDA launch error. Driver: tests/gpu/gpu_elementwise.cpp.
#pragma once
#include <cstdint>

typedef struct CUstream_st* cudaStream_t;  // same declaration as CUDA's driver_types.h

namespace ds::cuda {

/// Embedding lookup (spec 4.1): out[r, :] = bf16(table[ids[r], :]); table [V, D] BF16 bits
/// (table_bf16) or F32; ids int32 device [R] (caller validated < V); out BF16 bits [R, D].
/// Twin: cpu::dequantize_rows + round (exact).
void embed_gather(const void* table, bool table_bf16, const int32_t* ids, int64_t R, int64_t D, uint16_t* out,
                  cudaStream_t stream);

/// RMSNorm without residual (q_a_norm, kv_a_norm; spec 4.3): for each row r of x (row stride ldx
/// floats), y[r, i] = w[i] * (x[r, i] * inv), inv = 1 / sqrt(ss / n + eps), ss the sum of squares
/// in cpu::dot_fixed's order (16 strided lane sums, fixed tree, then the tail), no FMA; rounded to
/// BF16 if bf16_out. y (stride ldy) may alias x. w F32 [n]. Bit-identical to cpu::rmsnorm up to
/// sqrt (IEEE on both sides): the test expects equality.
void rmsnorm_f32(const float* x, int64_t ldx, const float* w, int64_t R, int64_t n, float eps, float* y,
                 int64_t ldy, bool bf16_out, cudaStream_t stream);

/// Indexer-key LayerNorm (spec 5.2 step 4), rows contiguous [R, n]: sequential FP32 sum for the
/// mean and the biased variance (the twin's order), y = (x - mean) * inv * w + b, BF16 if bf16_out.
/// y may alias x. w, b F32 [n]. Twin: cpu::layernorm (bit-identical).
void layernorm_f32(const float* x, const float* w, const float* b, int64_t R, int64_t n, float eps, float* y,
                   bool bf16_out, cudaStream_t stream);

/// Walsh-Hadamard rotation (spec 5.2 step 6) of each contiguous row of n floats
/// (n a power of two, 2..1024) in place: the twin's butterfly stages (h = 1, 2, ..), then
/// x *= scale, then rounded to BF16 if bf16_out. Twin: cpu::hadamard_transform + round_bf16
/// (bit-identical).
void hadamard_rows(float* x, int64_t R, int n, float scale, bool bf16_out, cudaStream_t stream);

/// FP8 E4M3 quantize-dequantize round trip per row per 128-channel group, UE8M0 scales (spec 4.3
/// step 6, the cached-latent simulation): x <- e4m3(clamp(x / s)) * s on the first `cols` values
/// of each row (stride ldx). cols % 128 == 0. Twin: cpu::fp8_round_trip (bit-identical).
void fp8_round_trip(float* x, int64_t ldx, int64_t R, int64_t cols, cudaStream_t stream);

/// SwiGLU gate (spec 6.7): h[i] = bf16?(g[i] / (1 + expf(-g[i])) * u[i]) over n values; h may
/// alias g. Twin: the loop in src/model/moe.cpp swiglu() (expf differs by <= 2 ulp from glibc).
void swiglu(const float* g, const float* u, int64_t n, float* h, bool bf16_out, cudaStream_t stream);

/// out[i] = bf16(a[i] + b[i]) (b may be null: bf16(a[i])) as BF16 bits: the MoE combine of the
/// routed sum with the shared expert (spec 6.9, moe.cpp) and F32 -> BF16 conversion (RNE).
void add_to_bf16(const float* a, const float* b, int64_t n, uint16_t* out, cudaStream_t stream);

/// x[i] <- bf16(x[i]) in place (F32 storage, round to nearest even): the runner's rounding of the
/// attention output o_lat (mla.cpp: m.rnd(o_lat)).
void round_to_bf16(float* x, int64_t n, cudaStream_t stream);

/// y[i] = float(x[i]) for BF16 bits x (exact).
void bf16_to_f32(const uint16_t* x, int64_t n, float* y, cudaStream_t stream);

/// y[i, :] = float(x[rows[i], :]) for i < n_rows: BF16 bits [*, D] -> F32 [n_rows, D] (exact);
/// rows int32 device.
void gather_bf16_rows_f32(const uint16_t* x, const int32_t* rows, int64_t n_rows, int64_t D, float* y,
                          cudaStream_t stream);

/// Indexer head weights (spec 5.2 step 9, indexer.cpp): out[i] = w[i] * head_scale * q_scale[i] *
/// dim_scale, multiplied left to right in FP32 (the twin's order), n values.
void index_head_weights(const float* w, const float* q_scale, int64_t n, float head_scale, float dim_scale,
                        float* out, cudaStream_t stream);

/// Random weights for --load-format dummy (deterministic in seed and index, counter-based):
/// FP8 E4M3 bytes e4m3(u * 448) with u uniform in [-1, 1) (never NaN).
void fill_random_fp8(uint8_t* p, int64_t n, uint64_t seed, cudaStream_t stream);
/// BF16 bits of u * amp, u uniform in [-1, 1).
void fill_random_bf16(uint16_t* p, int64_t n, uint64_t seed, float amp, cudaStream_t stream);
/// F32 values u * amp + offset, u uniform in [-1, 1) (amp 0: a constant).
void fill_random_f32(float* p, int64_t n, uint64_t seed, float amp, float offset, cudaStream_t stream);

}  // namespace ds::cuda
