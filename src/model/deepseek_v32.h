// The DeepSeek-V3.2 forward pass on CPU (spec/model.md sections 4-6, 9).
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/batch.h"
#include "model/config.h"
#include "model/kv_pool.h"

namespace ds {

class Checkpoint;
struct ModelWeights;

/// D23. official: BF16 rounding where DeepSeek's demo stores BF16, FP8 E4M3 activation quantization
/// per token per 128 channels with UE8M0 scales, FP8 round trip of the cached latent, FP8 indexer
/// q/k. exact: FP32 end to end on dequantized weights.
enum class Numerics { Official, Exact };
Numerics parse_numerics(const std::string& s);  // throws std::invalid_argument naming the flag
const char* numerics_name(Numerics n);

/// Private (unpaged) KV state of one sequence, for tests and tools: per main layer a KvLayer whose
/// slot i is token position i. Grows by append. The engine uses the paged KvPool instead.
struct SequenceCache {
  using Layer = KvLayer;
  std::vector<Layer> layers;
  int32_t length = 0;  // tokens cached
};

/// Test-only record of one forward step for oracle parity (docs/numerics.md "Oracle parity").
/// Rows are the plan's tokens in segment order (R rows). Filled only while attached with
/// DeepseekV32::set_trace; a forward without a trace does no extra work.
struct ForwardTrace {
  /// [layer][R * hidden_size] FP32: the residual stream after the layer, i.e. the FP32 sum of the
  /// stored residual (BF16 in official mode) and the FFN output, before the next layer's rounding;
  /// what the oracles record (HF decoder-layer output; the demo's Block output x + residual).
  std::vector<std::vector<float>> hidden;
  /// [layer][row]: the indexer's selected key positions (ascending; positions, not slots); empty
  /// where the row has at most index_topk causal keys and attends to all of them (spec 5.3).
  std::vector<std::vector<std::vector<int32_t>>> index_sets;
  /// [layer][row]: the indexer's FP32 scores of positions [0, pos] (what index_sets was selected
  /// from; empty where index_sets is empty). Lets GPU drivers judge top-k boundary near-ties.
  std::vector<std::vector<std::vector<float>>> index_scores;
  /// [layer][R * heads * v_head_dim]: the attention output before o_proj (BF16 values in official
  /// mode), where the documented attention deviations enter.
  std::vector<std::vector<float>> attn;
  /// Per-op records for the op-by-op comparison with the demo's dump
  /// (tests/model/test_oracle_official_dump.cpp, scripts/reference/oracle_official_dump.py): when
  /// record_ops is set, ops["l<layer>.<name>"] holds op `name` of every row, [R * width] FP32, named
  /// as in the dump: resid_in, attn_in (after attn_norm), qr, q ([H, nope + rope] after RoPE),
  /// kv_norm, kv_fp8 (latent after the FP8 round trip), k_pe (after RoPE), wo, resid_attn (BF16
  /// residual after the attention), ffn_in, ffn_out; indexer: idx_k_had / idx_q_had (after the
  /// Hadamard, BF16), idx_k_fp8 / idx_q_fp8 (FP8 values), idx_k_scale / idx_q_scale, idx_w (head
  /// weights times q_scale; rows the indexer does not score keep 0 in idx_q_* and idx_w); demo
  /// emulation only: kv_b ([keys, H * (nope + v)], rows = key positions of a prefill from 0) and
  /// scores_raw / scores / probs ([R, H, max_pos + 1], NaN where the row does not attend).
  /// Nothing is recorded (and nothing extra computed) while record_ops is false.
  bool record_ops = false;
  std::map<std::string, std::vector<float>> ops;
  /// ops["l<layer>.<name>"] resized to n and filled with `fill`; null unless record_ops. Call it
  /// outside parallel loops (threads may then write disjoint rows of the returned array).
  float* op(int layer, const char* name, size_t n, float fill = 0.f) {
    if (!record_ops) return nullptr;
    std::vector<float>& v = ops["l" + std::to_string(layer) + "." + name];
    v.assign(n, fill);
    return v.data();
  }
  /// Switches (read, not written), official mode, private caches only: replace the attention by
  /// an emulation of the demo's (src/model/mla_demo.cpp) to measure the documented deviations
  /// (docs/numerics.md): demo_bf16_scores = BF16 scores and probabilities (deviation 1),
  /// demo_expanded_prefill = prefill in the expanded MHA form over kv_b_proj outputs (deviation 2).
  bool demo_bf16_scores = false;
  bool demo_expanded_prefill = false;
  /// Switch (read, not written): [layer][R * heads * v_head_dim] values that replace the
  /// attention output before o_proj of that layer (an empty or missing entry replaces nothing).
  /// Teacher forcing at the op where two implementations part: a GPU driver feeds the CUDA
  /// runner's attention output here so the rest of the layer is compared on equal inputs
  /// (tests/gpu/gpu_fullwidth.cpp). A size other than R * heads * v_head_dim throws
  /// std::invalid_argument naming the layer.
  std::vector<std::vector<float>> attn_override;
  bool demo_attention() const { return demo_bf16_scores || demo_expanded_prefill; }
};

/// Optional per-row outputs of DeepseekV32::forward: the main model's final hidden states, the
/// input of the MTP module (spec 7.1). Rows are all tokens of the plan in segment order (R rows,
/// every row, not only logit rows), each hidden_size FP32 values.
struct ForwardHidden {
  /// [R * hidden_size] the residual stream after the last layer, before model.norm: the FP32 sum
  /// of the stored residual and the last FFN output (ForwardTrace::hidden of the last layer).
  std::vector<float> pre_norm;
  /// [R * hidden_size] after model.norm (what lm_head multiplies; BF16 values in official mode).
  /// SGLang and vLLM feed this one to the MTP module (spec 7.1).
  std::vector<float> post_norm;
};

/// Loaded model. Thread-compatible: one forward at a time (the engine thread).
class DeepseekV32 {
 public:
  /// Loads and validates weights from a checkpoint directory (config.json + safetensors).
  /// Throws ConfigError / CheckpointError naming the field, file or tensor. FP8 weights stay FP8
  /// in the mmap (D26). `with_mtp` binds the MTP layer too (otherwise its tensors are skipped).
  static std::unique_ptr<DeepseekV32> load(const std::string& dir, Numerics numerics, bool with_mtp = false);
  ~DeepseekV32();

  const ModelConfig& config() const;
  Numerics numerics() const { return numerics_; }
  std::unique_ptr<SequenceCache> new_cache() const;

  /// Allocates the paged KV pool: `num_pages` pages of `page_size` tokens (replacing any earlier
  /// pool; page contents start at zero). Throws std::invalid_argument naming the flag.
  void init_kv_pool(int page_size, int64_t num_pages);
  /// The pool (null before init_kv_pool).
  const KvPool* kv_pool() const;

  /// Runs all segments of `plan`; writes their tokens' keys (private cache: append; paged: into
  /// the page-table slots); returns logits (last token per segment unless all_logits). Throws
  /// std::invalid_argument, before touching any KV state, on a plan whose start_pos does not match
  /// its private cache length, whose page table is short, out of range or writes a page another
  /// segment writes, that uses pages without a pool, or that has an out-of-vocab token.
  /// `hidden` (optional) receives the final hidden states of every row (ForwardHidden).
  Logits forward(const BatchPlan& plan, ForwardHidden* hidden = nullptr);

  /// True when loaded with_mtp from a checkpoint with num_nextn_predict_layers >= 1.
  bool has_mtp() const;
  /// A private KV cache for the MTP layer (its own MLA latent/rope-key and indexer keys, spec 7.1
  /// step 4): a SequenceCache with num_hidden_layers + 1 layers of which only the last is used.
  /// Throws std::logic_error when !has_mtp().
  std::unique_ptr<SequenceCache> new_mtp_cache() const;

  /// One MTP step (spec 7.1) over `plan`, whose segments use caches made by new_mtp_cache (private
  /// caches only; start_pos == the cache length). Row i of a segment pairs the token
  /// tokens[i] at position start_pos + i with hidden row i of `h` ([R * hidden_size], rows in
  /// segment order like the plan's tokens): u = eh_proj([enorm(embed(tok)); hnorm(h)]) (embedding
  /// first), one decoder layer (layer num_hidden_layers: MLA with its own cache + indexer + MoE,
  /// the main layers' code), shared_head.norm, shared_head.head -> draft logits (last row per
  /// segment unless all_logits), FP32. Positions: for draft-extend after a prefill of x_0..x_{n-1}
  /// with target hidden H_0..H_{n-1}, row p (position p) takes (x_{p+1}, H_p) and predicts x_{p+2}
  /// (SGLang's convention; any consistent shift gives the same logits since RoPE is relative).
  /// Which target hidden to pass (ForwardHidden::post_norm as SGLang/vLLM, or pre_norm) is the
  /// caller's choice. No embedding zeroing at position 0 (vLLM does it, SGLang does not).
  /// `mtp_hidden` (optional) gets [R * hidden_size] after shared_head.norm for every row (the
  /// hidden of a chained draft step in SGLang). Same numerics switch as forward (D23).
  /// Throws std::logic_error without MTP weights; std::invalid_argument, before touching any
  /// cache, on a segment without an MTP cache, a cache used twice or not made by new_mtp_cache, a
  /// start_pos that is not the cache length, an out-of-vocab token, or h of the wrong size.
  Logits mtp_forward(const BatchPlan& plan, const std::vector<float>& h, std::vector<float>* mtp_hidden = nullptr);

  /// Attaches (or, with null, detaches) a test-only trace that later forwards overwrite.
  void set_trace(ForwardTrace* t) { trace_ = t; }

  /// Tokens run through the layers since load (prefill + decode), for tests and metrics.
  uint64_t tokens_processed() const { return tokens_processed_.load(); }

 private:
  DeepseekV32() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Numerics numerics_ = Numerics::Official;
  ForwardTrace* trace_ = nullptr;
  std::atomic<uint64_t> tokens_processed_{0};
};

}  // namespace ds
