// One full-width DeepSeek-V3.2 layer against transformers (issue 8, "Correctness"): the checkpoint and
// the oracle come from scripts/reference/fullwidth_layer.py, run first on the GPU machine (real sizes,
// one MoE decoder layer with 256 experts, random FP8 weights in a file on that machine's disk, vocab
// 4096). This driver loads the same directory three ways and runs the same prompts (64 and 2100
// tokens by default; the second is past index_topk 2048, so rows 2048.. use the indexer's top-k):
//   A. the CPU engine in --numerics exact (FP32 on dequantized weights, D23: what transformers
//      computes) against transformers: hidden states after the layer and logits of every row, and
//      the indexer's top-k sets of every sparse row;
//   B. the CPU engine in --numerics official;
//   C. the CUDA runner (official mode; BF16 and FP8 MLA caches) against B (attention output, then the
//      rest of the layer teacher-forced on the GPU's attention output, then the untied logits), and
//      against transformers.
// A pins the layer's math to transformers; C-vs-B pins the GPU to the CPU's official mode (whose
// official-vs-exact difference is by construction: FP8 activation quantization, D23). Together they
// pin the GPU layer. C-vs-transformers directly is the loose check that the issue names.
//
// Tolerances (derived before the run, D24):
//  - kTight = 5e-4 normwise, for A (hidden and logits) and for C-vs-B once both sides have the same
//    attention output (below). A: both sides FP32 on the same weights, different reduction orders;
//    a length-n FP32 dot has a relative error ~sqrt(n) u (n <= 16384 here, u = 6e-8: 7.7e-6); ~10
//    chained GEMM/norm/softmax steps in the layer (x sqrt(10)) and at most ~10x amplification by a
//    random layer: 2.4e-4; margin 2x. Detects: a BF16 rounding exact mode must not do (2^-9 / sqrt(3)
//    ~ 1e-3 on the rounded tensor), a wrong weight, layout, mask, slot or scale (>= 1e-2).
//  - C-vs-B is split at the attention output (before o_proj):
//    (1) the attention kernels on equal inputs: the three CUDA passes (BF16 cache, FP8 cache, FP32
//        CUDA-core attention via set_mla_attention_fp32_only) compute everything before the
//        attention with the same deterministic kernels, so their attention inputs are equal bits.
//        FP8 cache == BF16 cache bit for bit (the 656-byte record is lossless for official
//        latents). Tensor-core vs FP32 path: o_lat within 2e-5 (driver gpu_mla_attention), so its
//        BF16 rounding flips <= 2e-5 / 2^-8 = 0.5% of o_lat elements by one ulp, which moves the
//        W_UV product by ~2^-8 sqrt(0.005) = 2.8e-4 and flips that fraction of its BF16 outputs:
//        every dense row within kAttnRow = 2^-7 (one ulp per element), the dense rows together
//        within kAttnAll = 1e-3 (~1.6e-4 expected);
//    (2) the attention output against the CPU's: the two sides' inputs are NOT equal. FP32 order
//        noise (~1e-7) in q_a / kv_a flips BF16 roundings now and then, which move FP8 codes of
//        q_b's input and of the latent's FP8 round trip (one code = 2^-4..2^-3 of its element), so
//        both the queries and the cached keys / values part by FP8 steps before the attention
//        (the session-3 run: 18-33% of the BF16 attention outputs differ, 1.7e-3..2.8e-3, and the
//        FP32-path pass shows the same numbers as the tensor-core pass). Bar: two computations
//        with independent FP8 rounding noise, sqrt(2) x ||B - A|| of the attention output (A = CPU
//        exact, B = CPU official, both traced in this run);
//    (3) teacher forcing: the CPU official forward with the GPU's attention output put in its place
//        (ForwardTrace::attn_override) against the GPU logits: o_proj, residual, norms, router,
//        experts and lm_head on equal inputs. The median row within kTight (a row with no quantizer
//        flip carries FP32 order noise only); all kept rows within kFp8Flip = 2e-3: the GEMM order
//        noise (~1e-7) flips a BF16 rounding of an expert's gate/up output now and then, which moves
//        an FP8 code of the SwiGLU output with probability 2^-8 / 2^-4 = 1/16, and one such code
//        moves the expert's down output by ~q / sqrt(2048) = 1.3e-3 of its norm (first run: median
//        4.5e-5, kept rows 4.3e-4..6.4e-4). Rows beyond kOutlier are routing flips (as below) or
//        rows that collected several such codes: allowed up to kTfOutliers = 5% per class (routing
//        flips 1-2% + rows with >= 4 codes; measured 2.9% and 3.5% at 2100 tokens; the 3% of the
//        untied rule below was set before any teacher-forced run, for routing flips only);
//    (4) without teacher forcing, the logits are two computations whose FP8 rounding decisions
//        decorrelate (the quantized vector moves by sqrt(d q) per quantizer, and the router turns
//        that into expert swaps; docs/numerics.md, oracle B): bar sqrt(2) x ||B - A|| of the logits.
//    The first version of this driver held the untied logits to 5e-4 and failed (median row 4e-2,
//    row 0 equal: a single key makes the attention exact); (1)-(4) localise the difference instead.
//  - Discrete flips: a row whose routing differs (its 8th and 9th biased router scores within the
//    noise) differs by O(0.1) in that row alone (one layer). Router scores near the top-8 threshold of
//    256 are ~4e-3 apart; CUDA-vs-CPU noise on them is ~2.5e-5 (one BF16 ulp in a few inputs, x 0.02
//    weights, x sigmoid' <= 1/4) -> up to ~1-2% of rows flip; FP32 noise (A) -> far fewer. So rows with
//    error > kOutlier = 10 x kTight are counted, not failed, up to max(2, 3%) of the rows of each class
//    (dense rows p < index_topk, sparse rows p >= index_topk, so a bug confined to sparse rows still
//    fails); the normwise over the other rows and the median row error must meet kTight.
//  - Indexer sets (A): equal to transformers' wherever its relative boundary gap (k-th minus
//    (k+1)-th score over the row's largest |score|) exceeds kEpsGap = 1e-3 (score noise ~sqrt(7168) u
//    = 5e-6 relative, x 100 margin, as oracle_hf.py's EPS_GAP); rows below it may swap one key and are
//    left out of A's row comparisons (counted).
//  - kLoose = 0.5 normwise over all logit rows, official (C) vs transformers: the official FP8
//    activation quantization (UE8M0 scales put a 128-group in (224, 448] x 2^k: ~2.5% rms rounding per
//    element) on ~6 GEMM inputs along the path plus the latent's FP8 round trip gives ~7% on the layer
//    output; that noise on the router inputs (gaps ~4e-3, noise ~1e-2) flips experts of most tokens,
//    changing ~1/4 of their MoE output: expected 0.2-0.3 (cosine >= 0.95); unrelated outputs (wrong
//    weights or layout) give ~sqrt(2) = 1.4.
// Also: resident weight bytes on the device == expected_weight_bytes(cfg).device.
//
// Usage: gpu_fullwidth DIR (DIR/ckpt + DIR/oracle_hf_fullwidth.{json,bin}, from fullwidth_layer.py).
// Prints CHECK / RESULT lines and a table; exit 0 iff all pass. Run by tests/gpu/run_all.sh FULLWIDTH=1.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../model/test_oracle_common.h"
#include "cuda/cuda_model.h"
#include "cuda/device_weights.h"
#include "kernels/mla_attention.h"
#include "gpu_test_util.h"
#include "model/deepseek_v32.h"

namespace {

using namespace ds::gputest;
constexpr double kTight = 5e-4;
constexpr double kOutlier = 10 * kTight;
constexpr double kEpsGap = 1e-3;
constexpr double kLoose = 0.5;
constexpr double kAttnRow = 1.0 / 128;  // one BF16 ulp (<= 2^-7 relative) on every element of a row
constexpr double kAttnAll = 1e-3;       // dense rows together (expected ~1.6e-4, derivation above)
constexpr double kFp8Flip = 2e-3;       // teacher-forced rows with a few FP8 code flips in the MoE path (above)
constexpr int kTfOutlierPct = 5;        // teacher-forced outlier rows per class, percent (above)
constexpr int kPage = 64;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Per-row comparison of a [rows, width] block against a reference.
struct RowStats {
  int rows = 0, excluded = 0, outliers = 0, outliers_sparse = 0, rows_sparse = 0;
  double all = 0, kept = 0, median = 0, max = 0, cosine = 0;
  std::vector<int> outlier_rows;
};

RowStats row_stats(const float* a, const float* ref, int rows, int width, int sparse_from,
                   const std::vector<char>& exclude) {
  RowStats s;
  s.rows = rows;
  double num_all = 0, den_all = 0, num_kept = 0, den_kept = 0, dot = 0, na = 0;
  std::vector<double> per_row;
  for (int r = 0; r < rows; ++r) {
    const float* x = a + size_t(r) * width;
    const float* y = ref + size_t(r) * width;
    double num = 0, den = 0;
    for (int i = 0; i < width; ++i) {
      const double d = std::isfinite(x[i]) ? double(x[i]) - y[i] : INFINITY;
      num += d * d;
      den += double(y[i]) * y[i];
      dot += double(x[i]) * y[i];
      na += double(x[i]) * x[i];
    }
    num_all += num;
    den_all += den;
    const bool sparse = r >= sparse_from;
    s.rows_sparse += sparse;
    if (!exclude.empty() && exclude[size_t(r)]) {
      ++s.excluded;
      continue;
    }
    const double e = std::sqrt(num / std::max(den, 1e-300));
    per_row.push_back(e);
    s.max = std::max(s.max, e);
    if (e > kOutlier) {
      ++s.outliers;
      s.outliers_sparse += sparse;
      s.outlier_rows.push_back(r);
      continue;
    }
    num_kept += num;
    den_kept += den;
  }
  s.all = std::sqrt(num_all / std::max(den_all, 1e-300));
  s.kept = std::sqrt(num_kept / std::max(den_kept, 1e-300));
  s.cosine = dot / std::sqrt(std::max(na * den_all, 1e-300));
  if (!per_row.empty()) {
    std::nth_element(per_row.begin(), per_row.begin() + long(per_row.size() / 2), per_row.end());
    s.median = per_row[per_row.size() / 2];
  }
  return s;
}

std::vector<std::string> g_table;

/// The tight comparison of a block (kTight on the kept rows and the median, outliers within the allowance).
void tight(const std::string& what, const float* a, const float* ref, int rows, int width, int sparse_from,
           const std::vector<char>& exclude = {}, double kept_bar = kTight, int outlier_pct = 3) {
  const RowStats s = row_stats(a, ref, rows, width, sparse_from, exclude);
  const int dense_rows = s.rows - s.rows_sparse, dense_out = s.outliers - s.outliers_sparse;
  const bool out_ok = dense_out <= std::max(2, dense_rows * outlier_pct / 100) &&
                      s.outliers_sparse <= std::max(2, s.rows_sparse * outlier_pct / 100);
  const bool ok = s.kept <= kept_bar && s.median <= kTight && out_ok;
  char buf[512];
  std::snprintf(buf, sizeof buf, "%s: normwise %.2e <= %.0e (median row %.2e <= %.0e), %d flip rows", what.c_str(),
                s.kept, kept_bar, s.median, kTight, s.outliers);
  check(ok, buf);
  std::string rows_list;
  for (size_t i = 0; i < s.outlier_rows.size() && i < 12; ++i) rows_list += " " + std::to_string(s.outlier_rows[i]);
  std::printf("RESULT %s: rows %d, excluded %d (index near-ties), normwise all rows %.3e, kept %.3e, median %.3e, "
              "max row %.3e, flip rows (> %.0e) %d (sparse %d):%s\n",
              what.c_str(), s.rows, s.excluded, s.all, s.kept, s.median, s.max, kOutlier, s.outliers,
              s.outliers_sparse, rows_list.c_str());
  std::snprintf(buf, sizeof buf, "| %s | %d | %.2e | %.2e | %.2e | %d / %d | %d | %.0e | %s |", what.c_str(), s.rows,
                s.kept, s.median, s.all, s.outliers, s.outliers_sparse, s.excluded, kept_bar, ok ? "PASS" : "FAIL");
  g_table.push_back(buf);
}

/// The loose comparison (official vs transformers): normwise over all rows <= kLoose.
void loose(const std::string& what, const float* a, const float* ref, int rows, int width, bool is_check) {
  const RowStats s = row_stats(a, ref, rows, width, rows, {});
  char buf[512];
  std::snprintf(buf, sizeof buf, "%s: normwise %.3f <= %.1f (cosine %.4f)", what.c_str(), s.all, kLoose, s.cosine);
  if (is_check) check(s.all <= kLoose, buf);
  else std::printf("RESULT %s\n", buf);
  std::snprintf(buf, sizeof buf, "| %s | %d | - | %.2e | %.2e | - | - | %s | %s |", what.c_str(), s.rows, s.median,
                s.all, is_check ? "0.5" : "info", !is_check ? "-" : s.all <= kLoose ? "PASS" : "FAIL");
  g_table.push_back(buf);
}

/// Two attention outputs (BF16 values) from equal inputs: dense rows (p < topk) each
/// within kAttnRow and together within kAttnAll; sparse rows beyond kAttnRow (a near-tie key of the
/// top-k set) counted, up to max(2, 3%).
void attention_check(const std::string& what, const float* a, const float* ref, int rows, int width, int sparse_from) {
  int bad_dense = 0, bad_sparse = 0, rows_sparse = 0;
  int64_t differ = 0;
  double worst_dense = 0, num = 0, den = 0, num_d = 0, den_d = 0;
  for (int r = 0; r < rows; ++r) {
    double rn = 0, rd = 0;
    for (int i = 0; i < width; ++i) {
      const double x = a[size_t(r) * width + i], y = ref[size_t(r) * width + i];
      const double d = std::isfinite(x) ? x - y : INFINITY;
      differ += d != 0;
      rn += d * d;
      rd += y * y;
    }
    num += rn;
    den += rd;
    const double e = std::sqrt(rn / std::max(rd, 1e-300));
    if (r >= sparse_from) {
      ++rows_sparse;
      bad_sparse += !(e <= kAttnRow);
    } else {
      num_d += rn;
      den_d += rd;
      worst_dense = std::max(worst_dense, e);
      bad_dense += !(e <= kAttnRow);
    }
  }
  const double all = std::sqrt(num / std::max(den, 1e-300)), dense = std::sqrt(num_d / std::max(den_d, 1e-300));
  const bool ok = bad_dense == 0 && dense <= kAttnAll && bad_sparse <= std::max(2, rows_sparse * 3 / 100);
  char buf[512];
  std::snprintf(buf, sizeof buf, "%s: dense %.2e <= 1e-3, rows <= 2^-7 (worst %.2e), %d sparse rows beyond",
                what.c_str(), dense, worst_dense, bad_sparse);
  check(ok, buf);
  std::printf("RESULT %s: normwise %.3e, elements that differ %lld of %lld (%.3f%%), dense rows beyond %d, "
              "sparse rows beyond %d of %d\n",
              what.c_str(), all, (long long)differ, (long long)rows * width,
              100.0 * double(differ) / (double(rows) * width), bad_dense, bad_sparse, rows_sparse);
  std::snprintf(buf, sizeof buf, "| %s | %d | %.2e (dense rows) | %.2e (worst dense row) | %.2e | %d / %d | - | 1e-3; 2^-7 per row | %s |",
                what.c_str(), rows, dense, worst_dense, all, bad_dense + bad_sparse, bad_sparse, ok ? "PASS" : "FAIL");
  g_table.push_back(buf);
}

/// RESULT line: the fraction of attention-output elements (BF16 values) that differ.
void attention_stats(const std::string& what, const float* a, const float* ref, int rows, int width) {
  int64_t differ = 0;
  for (int64_t i = 0; i < int64_t(rows) * width; ++i) differ += a[i] != ref[i];
  std::printf("RESULT %s: elements that differ %lld of %lld (%.3f%%)\n", what.c_str(), (long long)differ,
              (long long)rows * width, 100.0 * double(differ) / (double(rows) * width));
}

/// Untied official-mode values: normwise over all rows <= bar (sqrt(2) x ||official - exact||).
void decorrelated(const std::string& what, const float* a, const float* ref, int rows, int width, double bar) {
  const RowStats s = row_stats(a, ref, rows, width, rows, {});
  char buf[512];
  std::snprintf(buf, sizeof buf, "%s: normwise %.3e <= %.3e (sqrt 2 x official vs exact)", what.c_str(), s.all, bar);
  check(s.all <= bar, buf);
  std::snprintf(buf, sizeof buf, "| %s | %d | - | %.2e | %.2e | - | - | %.2e | %s |", what.c_str(), s.rows, s.median,
                s.all, bar, s.all <= bar ? "PASS" : "FAIL");
  g_table.push_back(buf);
}

ds::Segment private_seg(ds::SequenceCache* c, const std::vector<int32_t>& toks) {
  ds::Segment s;
  s.cache = c;
  s.tokens = toks;
  s.all_logits = true;
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::printf("usage: gpu_fullwidth DIR  (DIR from scripts/reference/fullwidth_layer.py)\n");
    return 2;
  }
  try {
    const std::string dir = argv[1], ckpt = dir + "/ckpt";
    if (!std::filesystem::exists(dir + "/oracle_hf_fullwidth.json"))
      throw std::runtime_error("cannot open " + dir + "/oracle_hf_fullwidth.json (run scripts/reference/fullwidth_layer.py first)");
    const oracle::Fixture fx = oracle::load_fixture_at(dir + "/oracle_hf_fullwidth");
    std::printf("oracle: %s, transformers %s, torch %s, %s\n", fx.meta.value("oracle", "?").c_str(),
                fx.meta.value("transformers", "?").c_str(), fx.meta.value("torch", "?").c_str(),
                fx.meta.value("device", "?").c_str());
    std::vector<std::vector<int32_t>> prompts;
    for (const auto& p : fx.meta["prompts"]) prompts.push_back(p["tokens"].get<std::vector<int32_t>>());
    const size_t P = prompts.size();
    std::vector<std::vector<float>> exact_logits(P), official_logits(P), exact_attn(P);
    int V = 0, H = 0, topk = 0;
    auto tag = [&](size_t i) { return "p" + std::to_string(i) + " (" + std::to_string(prompts[i].size()) + " tok)"; };

    // A. CPU exact vs transformers.
    {
      auto t0 = std::chrono::steady_clock::now();
      auto m = ds::DeepseekV32::load(ckpt, ds::Numerics::Exact);
      const ds::ModelConfig& c = m->config();
      V = c.vocab_size, H = c.hidden_size, topk = c.index_topk;
      check(c.num_hidden_layers == 1 && c.first_k_dense_replace == 0 && c.n_routed_experts == 256 &&
                H == 7168 && c.num_attention_heads == 128 && topk == 2048,
            "checkpoint is one full-width MoE layer (256 experts, hidden 7168, 128 heads, index_topk 2048)");
      std::printf("RESULT cpu exact load %.1f s\n", seconds_since(t0));
      for (size_t i = 0; i < P; ++i) {
        const int T = int(prompts[i].size());
        auto cache = m->new_cache();
        ds::BatchPlan plan;
        plan.segments.push_back(private_seg(cache.get(), prompts[i]));
        ds::ForwardTrace trace;
        m->set_trace(&trace);
        t0 = std::chrono::steady_clock::now();
        exact_logits[i] = m->forward(plan).data;
        m->set_trace(nullptr);
        exact_attn[i] = trace.attn.at(0);
        std::printf("RESULT cpu exact forward %s: %.1f s\n", tag(i).c_str(), seconds_since(t0));
        // Indexer sets of the sparse rows.
        const auto& e = fx.meta["prompts"][i];
        const auto pos = e["index_pos"].get<std::vector<int>>();
        const auto gaps = e["index_gaps"].get<std::vector<double>>();
        std::vector<char> exclude(size_t(T), 0);
        int differ = 0, differ_strict = 0;
        if (!pos.empty()) {
          const auto sets = fx.array("p" + std::to_string(i) + ".index");
          for (size_t j = 0; j < pos.size(); ++j) {
            std::vector<int32_t> want(static_cast<size_t>(topk));
            for (int t = 0; t < topk; ++t) want[size_t(t)] = int32_t(sets[j * size_t(topk) + size_t(t)]);
            if (trace.index_sets.at(0).at(size_t(pos[j])) == want) continue;
            ++differ;
            if (gaps[j] > kEpsGap) ++differ_strict;
            else exclude[size_t(pos[j])] = 1;
          }
        }
        check(differ_strict == 0, "cpu exact vs hf " + tag(i) + ": indexer top-k sets equal on " +
                                      std::to_string(pos.size()) + " sparse rows where the gap > 1e-3 (" +
                                      std::to_string(differ) + " differ)");
        const auto hidden = fx.array("p" + std::to_string(i) + ".hidden");
        const auto logits = fx.array("p" + std::to_string(i) + ".logits");
        if (trace.hidden.at(0).size() != hidden.size() || exact_logits[i].size() != logits.size())
          throw std::runtime_error("oracle arrays of prompt " + std::to_string(i) + " have the wrong size");
        tight("cpu exact vs hf hidden " + tag(i), trace.hidden[0].data(), hidden.data(), T, H, topk, exclude);
        tight("cpu exact vs hf logits " + tag(i), exact_logits[i].data(), logits.data(), T, V, topk, exclude);
      }
    }
    // B. CPU official (kept loaded: C teacher-forces it with the GPU's attention output).
    auto official = ds::DeepseekV32::load(ckpt, ds::Numerics::Official);
    std::vector<std::vector<float>> official_attn(P);
    std::vector<double> official_vs_exact(P);
    {
      ds::DeepseekV32* m = official.get();
      for (size_t i = 0; i < P; ++i) {
        auto cache = m->new_cache();
        ds::BatchPlan plan;
        plan.segments.push_back(private_seg(cache.get(), prompts[i]));
        ds::ForwardTrace trace;
        m->set_trace(&trace);
        const auto t0 = std::chrono::steady_clock::now();
        official_logits[i] = m->forward(plan).data;
        m->set_trace(nullptr);
        official_attn[i] = trace.attn.at(0);
        std::printf("RESULT cpu official forward %s: %.1f s\n", tag(i).c_str(), seconds_since(t0));
        const int T = int(prompts[i].size());
        loose("cpu official vs hf logits " + tag(i), official_logits[i].data(),
              fx.array("p" + std::to_string(i) + ".logits").data(), T, V, false);
        loose("cpu official vs cpu exact logits " + tag(i), official_logits[i].data(), exact_logits[i].data(), T, V,
              false);
        official_vs_exact[i] = row_stats(official_logits[i].data(), exact_logits[i].data(), T, V, T, {}).all;
      }
    }
    // C. CUDA official (BF16 and FP8 MLA caches) vs B and vs transformers.
    // The third pass runs the FP32 CUDA-core attention (set_mla_attention_fp32_only) instead of the
    // tensor-core kernel: it tells the tensor-core path's rounding from differences upstream of it.
    struct Pass {
      ds::cuda::KvCacheDtype kv;
      bool fp32_attention;
    };
    std::vector<std::vector<float>> first_attn(P);  // the first pass's attention outputs (kv-bf16, tensor cores)
    for (const Pass pass : {Pass{ds::cuda::KvCacheDtype::BF16, false}, Pass{ds::cuda::KvCacheDtype::FP8, false},
                            Pass{ds::cuda::KvCacheDtype::BF16, true}}) {
      const auto kv = pass.kv;
      const std::string kvs = std::string(kv == ds::cuda::KvCacheDtype::BF16 ? "kv-bf16" : "kv-fp8") +
                              (pass.fp32_attention ? " fp32-attention" : "");
      ds::cuda::set_mla_attention_fp32_only(pass.fp32_attention);
      auto t0 = std::chrono::steady_clock::now();
      auto w = ds::cuda::DeviceWeights::load(ckpt);
      const double up = seconds_since(t0);
      const ds::cuda::WeightBytes wb = ds::cuda::expected_weight_bytes(w->config());
      std::printf("RESULT cuda %s weight upload %.1f s (%.2f GB resident)\n", kvs.c_str(), up,
                  double(w->resident_bytes()) / 1e9);
      check(w->resident_bytes() == wb.device, "cuda " + kvs + " resident weight bytes " +
                                                  std::to_string(w->resident_bytes()) + " == expected " +
                                                  std::to_string(wb.device));
      ds::cuda::CudaModel gpu(std::move(w), kv);
      int64_t pages = 0;
      for (const auto& p : prompts) pages += (int64_t(p.size()) + kPage - 1) / kPage;
      gpu.init_kv_pool(kPage, pages + 1);
      int32_t next_page = 0;
      for (size_t i = 0; i < P; ++i) {
        const int T = int(prompts[i].size());
        ds::Segment s;
        s.tokens = prompts[i];
        s.all_logits = true;
        for (int k = 0; k < (T + kPage - 1) / kPage; ++k) s.page_table.push_back(next_page++);
        ds::BatchPlan plan;
        plan.segments.push_back(s);
        ds::cuda::CudaModel::LayerCapture cap;
        gpu.set_layer_capture(&cap);
        t0 = std::chrono::steady_clock::now();
        const ds::Logits g = gpu.forward(plan);
        gpu.set_layer_capture(nullptr);
        std::printf("RESULT cuda %s forward %s: %.3f s (host time incl. logits copy, per-layer capture)\n",
                    kvs.c_str(), tag(i).c_str(), seconds_since(t0));
        if (g.data.size() != official_logits[i].size()) throw std::runtime_error("cuda logits have the wrong size");
        if (cap.attn.size() != 1 || cap.attn[0].size() != official_attn[i].size())
          throw std::runtime_error("cuda layer capture has the wrong size");
        // (1) the attention kernels on equal inputs, (2) the attention output vs the CPU's, (3) the
        // rest of the layer on the GPU's attention output, (4) untied logits.
        const int aw = int(official_attn[i].size() / size_t(T));
        if (first_attn[i].empty()) {
          first_attn[i] = cap.attn[0];
        } else if (!pass.fp32_attention) {
          check(cap.attn[0] == first_attn[i],
                "cuda " + kvs + " attention output == kv-bf16's bit for bit " + tag(i) + " (lossless FP8 record)");
        } else {
          attention_check("cuda " + kvs + " vs tensor-core attention output, equal inputs " + tag(i),
                          cap.attn[0].data(), first_attn[i].data(), T, aw, topk);
        }
        const double attn_bar =
            std::sqrt(2.0) * row_stats(official_attn[i].data(), exact_attn[i].data(), T, aw, T, {}).all;
        decorrelated("cuda " + kvs + " vs cpu official attention output " + tag(i), cap.attn[0].data(),
                     official_attn[i].data(), T, aw, attn_bar);
        attention_stats("cuda " + kvs + " vs cpu official attention output " + tag(i), cap.attn[0].data(),
                        official_attn[i].data(), T, aw);
        {
          auto cache = official->new_cache();
          ds::BatchPlan cplan;
          cplan.segments.push_back(private_seg(cache.get(), prompts[i]));
          ds::ForwardTrace forced;
          forced.attn_override = {cap.attn[0]};
          official->set_trace(&forced);
          const std::vector<float> tf = official->forward(cplan).data;
          official->set_trace(nullptr);
          tight("cuda " + kvs + " vs cpu official logits, teacher-forced attention " + tag(i), g.data.data(),
                tf.data(), T, V, topk, {}, kFp8Flip, kTfOutlierPct);
        }
        decorrelated("cuda " + kvs + " vs cpu official logits, untied " + tag(i), g.data.data(),
                     official_logits[i].data(), T, V, std::sqrt(2.0) * official_vs_exact[i]);
        loose("cuda " + kvs + " vs hf logits " + tag(i), g.data.data(),
              fx.array("p" + std::to_string(i) + ".logits").data(), T, V, true);
      }
    }
    ds::cuda::set_mla_attention_fp32_only(false);
  } catch (const std::exception& e) {
    std::printf("CHECK %-72s FAIL\nerror: %s\n", "gpu_fullwidth ran to the end", e.what());
    return 1;
  }
  std::printf("\n| comparison | rows | normwise (kept rows) | median row | normwise all rows | flip rows / sparse |"
              " index near-tie rows | bar | result |\n|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& l : g_table) std::printf("%s\n", l.c_str());
  std::printf("%s\n", g_fail ? "FAILED" : "ALL PASS");
  return g_fail ? 1 : 0;
}
