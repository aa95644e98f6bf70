// Whole-model GPU benchmark (issue 8 "First numbers", spec/benchmarks.md "Decode step", "Prefill",
// "A full-width model on one GPU"): the CUDA runner (src/cuda/) on a full-width DeepSeek-V3.2
// config with few layers (default bench/configs/dsv32_fullwidth_3d2m.json: 3 dense + 2 MoE layers)
// and --load-format dummy weights (DeviceWeights::dummy: random FP8/BF16 weights made on the GPU).
// Run on the device machine by `BENCH=1 tests/gpu/run_all.sh` from the repository root.
//
// Measures, with CUDA events (warm-up, then the median of N):
//  - decode step time at batch 1/8/64, every sequence one token at position ctx-1 of its own pages
//    (context ~1k per sequence, paged KV, page size 64);
//  - prefill tokens/s of one sequence of 1k and 8k tokens (one plan, start 0).
// Decode is timed eagerly and, when the runner has CUDA graphs, again with the graphs captured for
// exactly these batch sizes and context (a "graph" row only when replays were counted).
// The events sit on the legacy default stream around CudaModel::forward(), which returns after
// synchronizing its own stream: the time is the step as the engine sees it (plan packing, the input
// H2D copy, every kernel, the logits D2H copy into a host vector). The logits copy alone is timed
// separately (same bytes, pinned D2H + host memcpy) and printed next to it.
// KV contents: at contexts <= index_topk the step reads every key (no indexer scoring), so its time
// does not depend on the cache values and the zeroed pool is used as is; at longer contexts the
// contexts are first prefilled for real so the indexer's top-k sees real keys.
// Bytes per decode step (for GB/s): resident weights - embedding table (only B rows are gathered) -
// the routed experts no token picks, taking the expected number of distinct experts under uniform
// routing, E (1 - (1 - k/E)^B) (uniform routing of the random router is assumed, not measured), plus
// the KV records and indexer keys the step reads. FLOPs per prefill token: 2 x the weight elements
// each token multiplies (dense + attention + 8 routed + shared experts + lm_head for the last row),
// plus attention (2 H (C + dr + C) per key) and indexer scoring (2 Hi Di per key) over the causal keys.
//
// Usage: gpu_bench_model [--config FILE_OR_DIR] [--batches 1,8,64] [--context 1024]
//                        [--prefill 1024,8192] [--iters 20] [--prefill-iters 5] [--kv bf16|fp8]
// Prints CHECK and RESULT lines, then ALL PASS/FAILED, then the markdown tables ("## " sections);
// exit 0 iff all checks pass.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "cuda/cuda_model.h"
#include "cuda/device_weights.h"
#include "gpu_test_util.h"

namespace {

namespace fs = std::filesystem;
using namespace ds::gputest;
constexpr int kPage = 64;

struct Options {
  std::string config = "bench/configs/dsv32_fullwidth_3d2m.json";
  std::vector<int> batches{1, 8, 64};
  int context = 1024;
  std::vector<int> prefill{1024, 8192};
  int iters = 20, prefill_iters = 5, warmup = 3;
  std::string kv = "bf16";
};

std::vector<int> int_list(const std::string& s, const std::string& flag) {
  std::vector<int> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const int x = std::atoi(item.c_str());
    if (x < 1) throw std::invalid_argument(flag + ": '" + s + "' is not a list of positive integers");
    v.push_back(x);
  }
  if (v.empty()) throw std::invalid_argument(flag + ": empty list");
  return v;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument(a + ": needs a value (or unknown flag)");
    const std::string v = argv[++i];
    if (a == "--config") o.config = v;
    else if (a == "--batches") o.batches = int_list(v, a);
    else if (a == "--context") o.context = int_list(v, a)[0];
    else if (a == "--prefill") o.prefill = int_list(v, a);
    else if (a == "--iters") o.iters = int_list(v, a)[0];
    else if (a == "--prefill-iters") o.prefill_iters = int_list(v, a)[0];
    else if (a == "--kv") o.kv = v;
    else throw std::invalid_argument("unknown flag " + a);
  }
  if (o.kv != "bf16" && o.kv != "fp8") throw std::invalid_argument("--kv: bf16 or fp8, got " + o.kv);
  return o;
}

/// DeviceWeights::dummy reads <dir>/config.json: a config file is copied into a temporary dir.
std::string model_dir(const std::string& config) {
  if (fs::is_directory(config)) return config;
  if (!fs::is_regular_file(config)) throw std::invalid_argument("--config: " + config + " is not a file or directory");
  const fs::path dir = fs::temp_directory_path() / "ds_gpu_bench_model";
  fs::create_directories(dir);
  fs::copy_file(config, dir / "config.json", fs::copy_options::overwrite_existing);
  return dir.string();
}

int32_t token(uint32_t i, int vocab) { return int32_t((i * 2654435761u + 977u) % uint32_t(vocab)); }

ds::Segment segment(int start, int n, int first_page, int vocab, uint32_t seed) {
  ds::Segment s;
  s.start_pos = start;
  for (int i = 0; i < n; ++i) s.tokens.push_back(token(seed * 7919u + uint32_t(start + i), vocab));
  for (int p = 0; p < (start + n + kPage - 1) / kPage; ++p) s.page_table.push_back(first_page + p);
  return s;
}

/// Median (and min) milliseconds of `iters` forwards after `warmup`, CUDA events on the default
/// stream around each forward (see the header comment).
struct Timing {
  double median_ms = 0, min_ms = 0;
};
Timing time_forward(ds::cuda::CudaModel& m, const ds::BatchPlan& p, int warmup, int iters) {
  for (int i = 0; i < warmup; ++i) m.forward(p);
  cudaEvent_t a, b;
  DS_CUDA_CHECK(cudaEventCreate(&a));
  DS_CUDA_CHECK(cudaEventCreate(&b));
  std::vector<double> t;
  for (int i = 0; i < iters; ++i) {
    DS_CUDA_CHECK(cudaEventRecord(a, 0));
    ds::Logits l = m.forward(p);
    DS_CUDA_CHECK(cudaEventRecord(b, 0));
    DS_CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    DS_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(t.begin(), t.end());
  return {t[t.size() / 2], t.front()};
}

// CUDA graphs for decode (CudaModel::set_graph_options / use_graphs / graph_replays, when the
// runner has them): detected at compile time so this driver builds with and without them.
template <class F>
struct ArgOf;
template <class R, class C, class A>
struct ArgOf<R (C::*)(const A&)> {
  using type = A;
};
template <class M>
bool setup_graphs(M& m, const std::vector<int>& bs, int context) {
  if constexpr (requires(M& x) { &M::set_graph_options; x.use_graphs(true); x.graph_replays(); }) {
    using O = typename ArgOf<decltype(&M::set_graph_options)>::type;
    if constexpr (requires(O g) { g.bs = bs; g.max_context = context; }) {
      O g;
      g.bs = bs;
      g.max_context = context;
      m.set_graph_options(g);  // captured by init_kv_pool
      return true;
    }
  }
  return false;
}
template <class M>
void use_graphs(M& m, bool on) {
  if constexpr (requires(M& x) { x.use_graphs(on); }) m.use_graphs(on);
}
template <class M>
uint64_t graph_replays(const M& m) {
  if constexpr (requires(const M& x) { x.graph_replays(); }) return uint64_t(m.graph_replays());
  return 0;
}

/// Milliseconds to bring `bytes` of logits to a host vector: pinned D2H + memcpy (median of 10).
double logits_copy_ms(size_t bytes) {
  void *d = nullptr, *h = nullptr;
  DS_CUDA_CHECK(cudaMalloc(&d, bytes));
  DS_CUDA_CHECK(cudaMallocHost(&h, bytes));
  std::vector<double> t;
  for (int i = 0; i < 12; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    DS_CUDA_CHECK(cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost));
    std::vector<float> v(bytes / 4);
    std::memcpy(v.data(), h, bytes);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (i >= 2) t.push_back(ms);
  }
  cudaFree(d);
  cudaFreeHost(h);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

int64_t fp8_bytes(int64_t rows, int64_t cols) { return rows * cols + ((rows + 127) / 128) * ((cols + 127) / 128) * 4; }

/// Weight elements one token multiplies (linear layers only; the lm_head counted separately).
double linear_elems_per_token(const ds::ModelConfig& c) {
  const double D = c.hidden_size, H = c.num_attention_heads;
  const double attn = D * c.q_lora_rank + double(c.q_lora_rank) * H * c.qk_head_dim() +
                      D * (c.kv_lora_rank + c.qk_rope_head_dim) + H * c.v_head_dim * D +
                      2.0 * H * c.qk_nope_head_dim * c.kv_lora_rank /* W_UK, W_UV absorbed */ +
                      D * c.index_head_dim + double(c.q_lora_rank) * c.index_n_heads * c.index_head_dim +
                      D * c.index_n_heads;
  double total = 0;
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    total += attn;
    if (c.is_moe_layer(l))
      total += 3.0 * D * c.moe_intermediate_size * (c.num_experts_per_tok + c.n_shared_experts) + D * c.n_routed_experts;
    else
      total += 3.0 * D * c.intermediate_size;
  }
  return total;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  std::string tables;  // markdown "## " sections, printed last (run_all.sh copies them verbatim)
  try {
    const Options o = parse(argc, argv);
    const std::string dir = model_dir(o.config);
    const ds::ModelConfig cfg = ds::ModelConfig::load(dir);
    int dense = 0, moe = 0;
    for (int l = 0; l < cfg.num_hidden_layers; ++l) (cfg.is_moe_layer(l) ? moe : dense)++;
    const ds::cuda::WeightBytes wb = ds::cuda::expected_weight_bytes(cfg);
    std::printf("config: %s (hidden %d, %d heads, %d dense + %d MoE layers, %d experts top-%d, vocab %d)\n",
                o.config.c_str(), cfg.hidden_size, cfg.num_attention_heads, dense, moe, cfg.n_routed_experts,
                cfg.num_experts_per_tok, cfg.vocab_size);
    std::printf("expected weights: %.3f GB on the device (checkpoint FP8 %.3f GB)\n", wb.device / 1e9,
                wb.checkpoint / 1e9);
    std::fflush(stdout);

    cudaDeviceProp prop{};
    DS_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    std::printf("device: %s, %d SMs, %.1f GiB\n", prop.name, prop.multiProcessorCount,
                prop.totalGlobalMem / double(1ull << 30));
    const double copy_bw = copy_gbps();
    std::printf("ceiling: device copy bandwidth %.0f GB/s (read + write, 1 GiB, median of 10)\n", copy_bw);

    const auto t0 = std::chrono::steady_clock::now();
    auto w = ds::cuda::DeviceWeights::dummy(dir, 1);
    std::printf("dummy weights made in %.2f s\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    check(w->resident_bytes() == wb.device, "resident weight bytes " + std::to_string(w->resident_bytes()) +
                                                " == expected " + std::to_string(wb.device));
    const int64_t resident = w->resident_bytes();
    const auto kvd = o.kv == "fp8" ? ds::cuda::KvCacheDtype::FP8 : ds::cuda::KvCacheDtype::BF16;
    ds::cuda::CudaModel m(std::move(w), kvd);
    const ds::ModelConfig& c = m.config();
    const int V = c.vocab_size, L = c.num_hidden_layers;

    // Pool: the largest batch at the context, or the longest prefill, whichever needs more pages.
    const int ctx_pages = (o.context + kPage - 1) / kPage;
    int64_t pages = int64_t(*std::max_element(o.batches.begin(), o.batches.end())) * ctx_pages;
    for (int T : o.prefill) pages = std::max<int64_t>(pages, (T + kPage - 1) / kPage);
    const bool graphs = setup_graphs(m, o.batches, o.context);
    m.init_kv_pool(kPage, pages);
    std::printf("CUDA graphs: %s\n", graphs ? "captured for the decode batches (both modes timed)"
                                             : "not in this runner (eager only)");
    const int64_t kv_tok = m.kv_bytes_per_token();
    const int64_t slot_bytes = kv_tok / L - c.index_head_dim - 4;
    std::printf("KV pool: %lld pages x %d tokens, %lld bytes/token over %d layers (%s MLA record %lld B)\n",
                (long long)pages, kPage, (long long)kv_tok, L, o.kv.c_str(), (long long)slot_bytes);

    // Decode.
    const bool scored = o.context > c.index_topk;
    const int64_t expert_bytes = 2 * fp8_bytes(c.moe_intermediate_size, c.hidden_size) +
                                 fp8_bytes(c.hidden_size, c.moe_intermediate_size);
    const int64_t embed_bytes = int64_t(V) * c.hidden_size * 2;
    std::vector<std::string> rows;
    for (int B : o.batches) {
      if (scored) {  // real keys for the indexer: prefill every context once (chunks of <= 16k tokens)
        for (int s = 0; s < B;) {
          ds::BatchPlan fill;
          int tokens = 0;
          do {  // at least one sequence per plan
            fill.segments.push_back(segment(0, o.context - 1, s * ctx_pages, V, uint32_t(s)));
            tokens += o.context - 1;
            ++s;
          } while (s < B && tokens + o.context - 1 <= 16384);
          m.forward(fill);
        }
      }
      ds::BatchPlan p;
      for (int s = 0; s < B; ++s) p.segments.push_back(segment(o.context - 1, 1, s * ctx_pages, V, uint32_t(s)));
      const ds::Logits l = m.forward(p);
      bool finite = l.data.size() == size_t(B) * size_t(V);
      for (float v : l.data) finite = finite && std::isfinite(v);
      check(finite, "decode batch " + std::to_string(B) + " ctx " + std::to_string(o.context) + ": finite logits");
      const double distinct = c.n_routed_experts * (1.0 - std::pow(1.0 - double(c.num_experts_per_tok) / c.n_routed_experts, B));
      const int64_t unread = int64_t((c.n_routed_experts - distinct) * double(expert_bytes)) * moe;
      const int64_t keys = std::min<int64_t>(o.context, c.index_topk);
      const int64_t kv_read = int64_t(B) * L * (keys * slot_bytes + (scored ? int64_t(o.context) * (c.index_head_dim + 4) : 0));
      const double bytes = double(resident - embed_bytes - unread + kv_read);
      const double lc = logits_copy_ms(size_t(B) * size_t(V) * 4);
      for (int g = 0; g < (graphs ? 2 : 1); ++g) {
        use_graphs(m, g == 1);
        const uint64_t r0 = graph_replays(m);
        const Timing t = time_forward(m, p, o.warmup, o.iters);
        const uint64_t replays = graph_replays(m) - r0;
        const std::string mode = g == 0 ? "eager" : replays > 0 ? "graph" : "eager (no graph fits)";
        const double gbps = bytes / (t.median_ms * 1e-3) / 1e9;
        rows.push_back("| " + std::to_string(B) + " | " + std::to_string(o.context) + " | " + mode + " | " +
                       fmt("%.3f", t.median_ms) + " | " + fmt("%.3f", t.min_ms) + " | " + fmt("%.3f", lc) + " | " +
                       fmt("%.1f", B / (t.median_ms * 1e-3)) + " | " + fmt("%.0f", distinct) + " | " +
                       fmt("%.2f", bytes / 1e9) + " | " + fmt("%.0f", gbps) + " | " + fmt("%.0f%%", 100.0 * gbps / copy_bw) +
                       " |");
        std::printf("RESULT decode batch %d ctx %d %s: %.3f ms per step (median of %d)\n", B, o.context, mode.c_str(),
                    t.median_ms, o.iters);
        std::fflush(stdout);
      }
      use_graphs(m, true);
    }
    tables += "## Decode step\n\n" + o.kv + " KV cache, page size " + std::to_string(kPage) +
              "; time = CUDA events around forward() (host packing, input copy, kernels, logits to a host vector); median of " +
              std::to_string(o.iters) + " after " + std::to_string(o.warmup) + " warm-up steps.\n\n"
              "| batch | context | mode | step ms (median) | min ms | of which logits to host ms (timed apart) | tokens/s | "
              "experts read per MoE layer (expected) | GB read per step | GB/s | of copy bw |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (const auto& r : rows) tables += r + "\n";

    // Prefill.
    rows.clear();
    const double lin = linear_elems_per_token(c);
    for (int T : o.prefill) {
      ds::BatchPlan p;
      p.segments.push_back(segment(0, T, 0, V, 1000u + uint32_t(T)));
      const ds::Logits l = m.forward(p);
      bool finite = !l.data.empty();
      for (float v : l.data) finite = finite && std::isfinite(v);
      check(finite, "prefill " + std::to_string(T) + " tokens: finite logits");
      const Timing t = time_forward(m, p, 1, o.prefill_iters);
      double attn_flops = 0;
      const double per_key = 2.0 * c.num_attention_heads * (2.0 * c.kv_lora_rank + c.qk_rope_head_dim);
      const double per_idx_key = 2.0 * c.index_n_heads * c.index_head_dim;
      for (int64_t r = 0; r < T; ++r) {
        attn_flops += per_key * double(std::min<int64_t>(r + 1, c.index_topk));
        if (T > c.index_topk) attn_flops += per_idx_key * double(r + 1);
      }
      const double flops = 2.0 * lin * T + L * attn_flops + 2.0 * double(V) * c.hidden_size;
      const double tps = T / (t.median_ms * 1e-3);
      rows.push_back("| " + std::to_string(T) + " | " + fmt("%.2f", t.median_ms) + " | " + fmt("%.2f", t.min_ms) + " | " +
                     fmt("%.0f", tps) + " | " + fmt("%.3f", flops / T / 1e9) + " | " +
                     fmt("%.1f", flops / (t.median_ms * 1e-3) / 1e12) + " |");
      std::printf("RESULT prefill %d tokens: %.2f ms, %.0f tokens/s (median of %d)\n", T, t.median_ms, tps, o.prefill_iters);
      std::fflush(stdout);
    }
    tables += "\n## Prefill\n\nOne sequence, one plan from position 0; time = CUDA events around forward(); median of " +
              std::to_string(o.prefill_iters) + " after 1 warm-up.\n\n"
              "| tokens | ms (median) | min ms | tokens/s | GFLOP per token (linear + attention + indexer) | TFLOP/s |\n"
              "|---|---|---|---|---|---|\n";
    for (const auto& r : rows) tables += r + "\n";
  } catch (const std::exception& e) {
    std::printf("CHECK %-72s FAIL\nerror: %s\n", "gpu_bench_model ran to the end", e.what());
    return 1;
  }
  std::printf("%s\n\n%s", g_fail ? "FAILED" : "ALL PASS", tables.c_str());
  return g_fail ? 1 : 0;
}
