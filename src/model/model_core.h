// Internal to the model layer: the loaded model state shared by deepseek_v32.cpp, mla.cpp,
// indexer.cpp and moe.cpp, and the flattened rows of one forward step (spec/model.md 4-6).
#pragma once
#include <cstdint>
#include <string>
#include <memory>
#include <vector>

#include "common/safetensors.h"
#include "kernels/cpu/gemm.h"
#include "model/batch.h"
#include "model/config.h"
#include "model/deepseek_v32.h"
#include "model/weights.h"

namespace ds {

/// Everything a forward needs besides the caches.
struct ModelCore {
  ModelConfig cfg;
  Checkpoint ckpt;
  ModelWeights w;
  bool official = true;            // Numerics::Official (D23)
  std::vector<float> rope_freqs;   // [qk_rope_head_dim / 2], YaRN (spec 4.4)
  float softmax_scale = 0.f;       // spec 4.5

  /// GEMM options of an "FP8 linear" slot (spec 9.1): official = FP8 activations if the weight is
  /// FP8, BF16 output; exact = FP32 in, FP32 out.
  cpu::GemmOptions lin(const cpu::WeightView& w) const {
    return official ? cpu::GemmOptions{w.fp8(), true} : cpu::GemmOptions{false, false};
  }
  /// Rounds to BF16 in official mode (the demo's BF16 stores), identity in exact mode.
  float rnd(float x) const { return official ? round_bf16(x) : x; }
  /// Decoder-layer weights of layer index `layer`: main layers [0, num_hidden_layers), then the MTP
  /// layers (index num_hidden_layers + k, spec 7; bound only when loaded with_mtp).
  const LayerWeights& layer_weights(int layer) const {
    return layer < cfg.num_hidden_layers ? w.layers[size_t(layer)] : w.mtp.at(size_t(layer - cfg.num_hidden_layers)).layer;
  }
};

/// DeepseekV32's private state (defined here so deepseek_v32.cpp and mtp.cpp share it).
struct DeepseekV32::Impl {
  ModelCore core;
  std::unique_ptr<KvPool> pool;
};

/// Where one segment's KV lives: `layers` (a private cache or the pool) and its page table
/// (`pages` null = identity, slot == position).
struct KvView {
  std::vector<KvLayer>* layers = nullptr;
  const int32_t* pages = nullptr;
  int page_size = 1;
  int64_t slot(int64_t pos) const { return pages ? int64_t(pages[pos / page_size]) * page_size + pos % page_size : pos; }
};

/// The tokens of a forward step, flattened over segments: row r belongs to segment seg[r] at
/// absolute position pos[r]; cos/sin of the RoPE angles per row ([R, rope_dim/2] each).
struct StepRows {
  int64_t R = 0;
  std::vector<int> seg;
  std::vector<int32_t> pos;
  std::vector<KvView> kv;              // per segment
  std::vector<int64_t> seg_begin = {0};  // [S + 1] row offsets
  std::vector<float> cos, sin;         // [R, n_freq]
  ForwardTrace* trace = nullptr;       // test-only (DeepseekV32::set_trace); index_sets sized [L][R]

  /// Appends segment s (its KV view and one row per token at positions start_pos..) to the step;
  /// collects its token ids into `tokens` and its logit rows (last, or every row if all_logits)
  /// into `logit_rows`, and closes its range in out.row_begin.
  void add_segment(int s, const Segment& sg, const KvView& view, std::vector<int32_t>& tokens,
                   std::vector<int64_t>& logit_rows, Logits& out) {
    kv.push_back(view);
    for (size_t i = 0; i < sg.tokens.size(); ++i) {
      const int64_t r = int64_t(tokens.size());
      tokens.push_back(sg.tokens[i]);
      seg.push_back(s);
      pos.push_back(sg.start_pos + int32_t(i));
      if (sg.all_logits || i + 1 == sg.tokens.size()) logit_rows.push_back(r);
    }
    seg_begin.push_back(int64_t(tokens.size()));
    out.row_begin.push_back(int(logit_rows.size()));
  }
  /// Sets R from the rows added and fills cos/sin of every row's position (spec 4.4).
  void finish(const std::vector<float>& rope_freqs);
};

/// ForwardTrace::op of the step's trace; null without a trace or while it records no ops.
inline float* trace_op(const StepRows& rows, int layer, const char* name, size_t n, float fill = 0.f) {
  return rows.trace ? rows.trace->op(layer, name, n, fill) : nullptr;
}

/// Empty logits of one step over a vocabulary of `vocab` (row_begin = {0}; add_segment extends it).
inline Logits step_logits(int vocab) {
  Logits out;
  out.vocab = vocab;
  out.row_begin.push_back(0);
  return out;
}

/// Throws std::invalid_argument "<where>: token id T outside the vocabulary [0, vocab)" for the
/// first token of `seg` outside the vocabulary.
void check_segment_tokens(const std::string& where, const Segment& seg, int vocab);

/// Grows a private cache layer to n token slots (latent, rope key, indexer key and scale).
void resize_private_layer(KvLayer& l, const ModelConfig& c, size_t n);

/// MLA block of layer `layer` (spec 4.3-4.8 with the indexer of spec 5): a [R, hidden] normed
/// input -> out [R, hidden]. Writes the rows' latent, k_pe and indexer keys into their slots.
void mla_forward(const ModelCore& m, int layer, const StepRows& rows, const float* a, float* out);

/// Lightning indexer (spec 5) for all rows: writes index keys into the rows' slots, then fills
/// selection[r] with the selected key SLOTS (ascending positions mapped through the page table) of rows whose causal key count
/// pos + 1 exceeds index_topk; other rows get an empty list (= every causal key, spec 5.3).
void indexer_forward(const ModelCore& m, int layer, const StepRows& rows, const float* a, const float* qr,
                     std::vector<std::vector<int32_t>>& selection);

/// Absorbed attention of one query row (spec 4.7): q [H, nope + rope] (RoPE applied) against
/// the layer cache slots `idx` (in ascending position order); out [H * v_head_dim] (BF16-rounded
/// in official mode).
void mla_attend(const ModelCore& m, const LayerWeights& L, const float* q, const SequenceCache::Layer& cache,
                const int32_t* idx, int n, float* out);

/// Test-only (ForwardTrace::demo_attention(), mla_demo.cpp): the demo's attention for all rows,
/// q [R, H, nope + rope] -> o [R, H * v_head_dim]; private caches only (throws otherwise).
void mla_demo_attention(const ModelCore& m, int layer, const StepRows& rows, const float* q,
                        const std::vector<std::vector<int32_t>>& selection, float* o);

/// FFN of a layer (dense SwiGLU or MoE, spec 6): b [R, hidden] -> out [R, hidden].
void ffn_forward(const ModelCore& m, const LayerWeights& L, const float* b, int64_t R, float* out);

}  // namespace ds
