// Routed experts of one MoE layer on the GPU (spec/model.md 6.7), official numerics (D23), launcher
// only: no CUDA headers. CPU twin: the expert loop and combine of src/model/moe.cpp (ds::cpu::gemm
// with GemmOptions{true, true} per projection, SiLU in FP32, BF16 rounding). Design: docs/cuda.md
// ("MoE experts").
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/gemm_fp8_small_m.h"  // Fp8WeightDev

typedef struct CUstream_st* cudaStream_t;  // same declaration as CUDA's driver_types.h

namespace ds::cuda {

/// One routed expert's FP8 weights: gate and up [I, D], down [D, I] (each with its 128x128
/// scale_inv blocks).
struct ExpertDev {
  Fp8WeightDev gate, up, down;
};

/// Bytes of scratch moe_experts needs for T tokens, K experts per token, hidden D, expert width I
/// (and, shared_expert, one more grouped row per token).
size_t moe_workspace_bytes(int64_t T, int K, int64_t D, int64_t I, bool shared_expert = false);

/// Routed experts (spec 6.7): for each token t and k < K, e = ids[t, k] (device int32 [T, K], from
/// moe_route), with the official FP8 activation quantization (spec 9.2) before each FP8 linear:
///   g = bf16(gate_e x_t), u = bf16(up_e x_t), h = bf16(g / (1 + exp(-g)) * u), y_tk = bf16(down_e h);
///   out[t, :] = sum over k in ascending k of y_tk * wts[t, k] (F32, NOT rounded: the runner adds
///   the shared expert and rounds, like src/model/moe.cpp).
/// x: F32 [T, D] device (BF16 values), wts: F32 [T, K] device, experts: DEVICE array of E ExpertDev
/// (uploaded once per layer by the runner; every weight's data 16-byte aligned), out: F32 [T, D]
/// device. D % 128 == 0, I % 128 == 0, E <= 1024.
/// Tokens are grouped by expert on the device (counts, offsets, a stable permutation: no host sync),
/// then one grouped FP8 GEMM launch per projection (gate and up share one launch). Each (t, k)
/// result is bit-identical to running gemm_fp8 on row t alone (batch invariant, D27).
/// ids outside [0, E) make the kernels skip that (t, k) pair (its y_tk counts as 0); the runner
/// must not produce them. workspace: device scratch of at least moe_workspace_bytes(T, K, D, I)
/// bytes, 256-byte aligned. Asynchronous on `stream`. Throws std::invalid_argument naming the
/// argument for bad sizes, null pointers or a small workspace; std::runtime_error for a CUDA error.
/// shared_expert: experts[E] (the array then has E + 1 entries) is the shared expert of the same
/// width I, run on every token in the same grouped launches (one more group: its rows are read in
/// the same weight stream as the routed experts') and added after the routed sum with weight 1:
/// out[t, :] = (sum over k of y_tk * wts[t, k]) + y_shared_t, moe.cpp's `y += shared` (F32). Each
/// y_shared_t is bit-identical to the dense SwiGLU FFN with gemm_fp8 on row t alone.
void moe_experts(const float* x, int64_t T, const int32_t* ids, const float* wts, int K, const ExpertDev* experts,
                 int E, int64_t D, int64_t I, float* out, void* workspace, size_t workspace_bytes,
                 cudaStream_t stream, bool shared_expert = false);

}  // namespace ds::cuda
