// Weight upload (checkpoint -> pinned staging -> device) and dummy weights made on the device
// (see device_weights.h). One cudaMalloc for all weights: a dry pass sizes it, a second pass
// assigns and fills.
#include "cuda/device_weights.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "common/numeric.h"
#include "common/safetensors.h"
#include "cuda/device_memory.h"
#include "kernels/elementwise.h"
#include "model/tensor_names.h"
#include "model/weights.h"

namespace ds::cuda {

struct DeviceWeights::Builder {
  Builder(const ModelConfig& c, const ModelWeights* weights, uint64_t s = 1, bool exact_mode = false)
      : cfg(c), w(weights), seed(s), exact(exact_mode) {}
  const ModelConfig& cfg;
  const ModelWeights* w = nullptr;  // null: dummy
  uint64_t seed = 1;
  bool exact = false;               // exact numerics: W_UK/W_UV stored F32 (unrounded)
  uint8_t* base = nullptr;          // null: dry pass
  size_t used = 0;
  uint64_t tensor_id = 0;
  cudaStream_t stream = nullptr;
  // Upload state: two pinned halves, alternating, each guarded by an event.
  PinnedMem staging;
  cudaEvent_t ev[2] = {nullptr, nullptr};
  int half = 0;
  static constexpr size_t kHalf = size_t(32) << 20;
  size_t uploaded = 0;
  size_t total = 0;  // bytes to upload (from the dry pass), for the progress line
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now(), last_log = t0;

  int64_t weight_bytes = 0;  // bytes of weight tensors (not the ExpertDev arrays)
  uint8_t* take(size_t bytes, bool weight = true) {
    if (weight) weight_bytes += int64_t(bytes);
    const size_t off = used;
    used += (bytes + 255) / 256 * 256;
    return base ? base + off : nullptr;
  }
  void upload(void* dst, const void* src, size_t bytes) {
    if (!base) return;
    const uint8_t* s = static_cast<const uint8_t*>(src);
    uint8_t* d = static_cast<uint8_t*>(dst);
    for (size_t off = 0; off < bytes; off += kHalf) {
      const size_t n = std::min(kHalf, bytes - off);
      DS_CUDA_CHECK(cudaEventSynchronize(ev[half]));  // the previous copy out of this half is done
      uint8_t* st = staging.as<uint8_t>() + size_t(half) * kHalf;
      std::memcpy(st, s + off, n);
      DS_CUDA_CHECK(cudaMemcpyAsync(d + off, st, n, cudaMemcpyHostToDevice, stream));
      DS_CUDA_CHECK(cudaEventRecord(ev[half], stream));
      half ^= 1;
    }
    uploaded += bytes;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_log >= std::chrono::seconds(5)) {  // progress line every 5 s
      const double s_el = std::chrono::duration<double>(now - t0).count();
      spdlog::info("weights: {:.1f} / {:.1f} GB uploaded ({:.0f}%, {:.2f} GB/s)", uploaded / 1e9, total / 1e9,
                   total ? 100.0 * double(uploaded) / double(total) : 0.0, uploaded / 1e9 / std::max(s_el, 1e-9));
      last_log = now;
    }
  }
  uint64_t next_seed() { return seed * 0x100000001b3ull + (++tensor_id) * 0x9e3779b97f4a7c15ull; }

  // An FP8 or dense matrix [rows, cols]; `v` (checkpoint) or random (dummy).
  LinearDev linear(const cpu::WeightView* v, int64_t rows, int64_t cols) {
    LinearDev L;
    const bool fp8 = v ? v->fp8() : cfg.fp8;
    if (fp8) {
      const int64_t sb = ((rows + 127) / 128) * ((cols + 127) / 128);
      uint8_t* d = take(size_t(rows * cols));
      float* sc = reinterpret_cast<float*>(take(size_t(sb) * 4));
      L.fp8 = true;
      L.f8 = Fp8WeightDev{d, sc, rows, cols};
      fill_fp8(v, L);
      return L;
    }
    L.dense = dense(v, rows, cols);
    return L;
  }
  // Two FP8 matrices [rows1, cols] and [rows2, cols] stacked into one [rows1 + rows2, cols] weight
  // (one data block, one scale block: rows1 % 128 == 0 keeps the scale rows aligned). Returns the
  // stacked weight; `first` / `second` become views of its row ranges. Filled by fill_fp8.
  LinearDev fp8_pair(int64_t rows1, int64_t rows2, int64_t cols, LinearDev& first, LinearDev& second) {
    const int64_t kb = (cols + 127) / 128, sb1 = rows1 / 128 * kb, sb2 = (rows2 + 127) / 128 * kb;
    uint8_t* d = take(size_t((rows1 + rows2) * cols));
    float* sc = reinterpret_cast<float*>(take(size_t(sb1 + sb2) * 4));
    LinearDev both;
    both.fp8 = first.fp8 = second.fp8 = true;
    both.f8 = Fp8WeightDev{d, sc, rows1 + rows2, cols};
    first.f8 = Fp8WeightDev{d, sc, rows1, cols};
    second.f8 = Fp8WeightDev{d ? d + rows1 * cols : nullptr, sc ? sc + sb1 : nullptr, rows2, cols};
    return both;
  }
  // Fills an FP8 weight (linear()'s, or a view made by fp8_pair) from `v` (checkpoint) or randomly
  // (dummy: one seed per matrix, drawn in allocation order). Nothing while only sizing (no base).
  void fill_fp8(const cpu::WeightView* v, const LinearDev& L) {
    const int64_t rows = L.f8.rows, cols = L.f8.cols, sb = ((rows + 127) / 128) * ((cols + 127) / 128);
    if (!base) return;
    uint8_t* d = const_cast<uint8_t*>(L.f8.data);
    float* sc = const_cast<float*>(L.f8.scale_inv);
    if (v) {
      upload(d, v->data, size_t(rows * cols));
      upload(sc, v->scale_inv, size_t(sb) * 4);
    } else {
      fill_random_fp8(d, rows * cols, next_seed(), stream);
      fill_random_f32(sc, sb, 0, 0.f, float(1.0 / (258.7 * std::sqrt(double(cols)))), stream);
    }
  }
  DenseWeightDev dense(const cpu::WeightView* v, int64_t rows, int64_t cols) {
    const bool bf16 = v ? v->dtype == DType::BF16 : true;
    if (v && v->dtype != DType::BF16 && v->dtype != DType::F32)
      throw std::runtime_error("CUDA runner: dense weight of unsupported dtype (expected BF16 or F32)");
    const size_t bytes = size_t(rows * cols) * (bf16 ? 2 : 4);
    uint8_t* d = take(bytes);
    DenseWeightDev D{d, bf16, rows, cols};
    if (!base) return D;
    if (v) upload(d, v->data, bytes);
    else fill_random_bf16(reinterpret_cast<uint16_t*>(d), rows * cols, next_seed(),
                          float(std::sqrt(3.0 / double(cols))), stream);
    return D;
  }
  // BF16 bits of a norm vector (checkpoint norms are BF16: exact); dummy: 1.
  const uint16_t* norm_bf16(const std::vector<float>* v, int64_t n) {
    uint16_t* d = reinterpret_cast<uint16_t*>(take(size_t(n) * 2));
    if (!base) return d;
    std::vector<uint16_t> h(size_t(n), ds::f32_to_bf16(1.0f));
    if (v) {
      int64_t inexact = 0;
      for (int64_t i = 0; i < n; ++i) {
        h[size_t(i)] = ds::f32_to_bf16((*v)[size_t(i)]);
        inexact += ds::bf16_to_f32(h[size_t(i)]) != (*v)[size_t(i)];
      }
      if (inexact) spdlog::warn("weights: a norm weight has {} non-BF16 values, rounded to BF16 on the device", inexact);
    }
    upload(d, h.data(), h.size() * 2);
    return d;
  }
  const float* vec_f32(const std::vector<float>* v, int64_t n, float dummy_value) {
    float* d = reinterpret_cast<float*>(take(size_t(n) * 4));
    if (!base) return d;
    if (v) upload(d, v->data(), size_t(n) * 4);
    else fill_random_f32(d, n, 0, 0.f, dummy_value, stream);
    return d;
  }
  AbsorbWeightDev absorb(const std::vector<float>* v, int H, int rows, int C) {
    const int64_t n = int64_t(H) * rows * C;
    if (exact) {  // exact numerics: the CPU's FP32 values (fp8 * scale, unrounded)
      float* d = reinterpret_cast<float*>(take(size_t(n) * 4));
      AbsorbWeightDev A{d, false, H, rows, C};
      if (!base) return A;
      if (v) upload(d, v->data(), size_t(n) * 4);
      else fill_random_f32(d, n, next_seed(), float(std::sqrt(3.0 / double(C))), 0.f, stream);
      return A;
    }
    uint16_t* d = reinterpret_cast<uint16_t*>(take(size_t(n) * 2));
    AbsorbWeightDev A{d, true, H, rows, C};
    if (!base) return A;
    if (v) {
      std::vector<uint16_t> h(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) h[size_t(i)] = ds::f32_to_bf16((*v)[size_t(i)]);  // BF16 values already
      upload(d, h.data(), h.size() * 2);
    } else {
      fill_random_bf16(d, n, next_seed(), float(std::sqrt(3.0 / double(C))), stream);
    }
    return A;
  }
  FfnDev ffn(const FfnWeights* f, int64_t inter) {
    const int64_t D = cfg.hidden_size;
    FfnDev o;
    o.gate = linear(f ? &f->gate : nullptr, inter, D);
    o.up = linear(f ? &f->up : nullptr, inter, D);
    o.down = linear(f ? &f->down : nullptr, D, inter);
    return o;
  }

  void layer(int i, const LayerWeights* L, LayerDev& o) {
    const ModelConfig& c = cfg;
    const int64_t D = c.hidden_size, H = c.num_attention_heads;
    o.attn_norm = norm_bf16(L ? &L->attn_norm : nullptr, D);
    o.ffn_norm = norm_bf16(L ? &L->ffn_norm : nullptr, D);
    // q_a and kv_a stacked into one FP8 weight when both are FP8 (one GEMM at run time); filled
    // in the order of the unstacked path (q_a, q_b, kv_a), so dummy weights keep their values.
    const int64_t kv_rows = c.kv_lora_rank + c.qk_rope_head_dim;
    const bool q_fp8 = L ? L->q_a.fp8() : cfg.fp8, kv_fp8 = L ? L->kv_a.fp8() : cfg.fp8;
    o.qkv_fused = q_fp8 && kv_fp8 && c.q_lora_rank % 128 == 0 && D % 128 == 0;
    if (o.qkv_fused) {
      o.q_a_kv_a = fp8_pair(c.q_lora_rank, kv_rows, D, o.q_a, o.kv_a);
      fill_fp8(L ? &L->q_a : nullptr, o.q_a);
    } else {
      o.q_a = linear(L ? &L->q_a : nullptr, c.q_lora_rank, D);
    }
    o.q_a_norm = vec_f32(L ? &L->q_a_norm : nullptr, c.q_lora_rank, 1.f);
    o.q_b = linear(L ? &L->q_b : nullptr, H * c.qk_head_dim(), c.q_lora_rank);
    if (o.qkv_fused) fill_fp8(L ? &L->kv_a : nullptr, o.kv_a);
    else o.kv_a = linear(L ? &L->kv_a : nullptr, kv_rows, D);
    o.kv_a_norm = vec_f32(L ? &L->kv_a_norm : nullptr, c.kv_lora_rank, 1.f);
    o.w_uk = absorb(L ? &L->w_uk : nullptr, int(H), c.qk_nope_head_dim, c.kv_lora_rank);
    o.w_uv = absorb(L ? &L->w_uv : nullptr, int(H), c.v_head_dim, c.kv_lora_rank);
    o.o = linear(L ? &L->o : nullptr, D, H * c.v_head_dim);
    o.idx_wq_b = linear(L ? &L->idx_wq_b : nullptr, int64_t(c.index_n_heads) * c.index_head_dim, c.q_lora_rank);
    o.idx_wk = linear(L ? &L->idx_wk : nullptr, c.index_head_dim, D);
    o.idx_k_norm_w = vec_f32(L ? &L->idx_k_norm_w : nullptr, c.index_head_dim, 1.f);
    o.idx_k_norm_b = vec_f32(L ? &L->idx_k_norm_b : nullptr, c.index_head_dim, 0.f);
    o.idx_weights_proj = dense(L ? &L->idx_weights_proj : nullptr, c.index_n_heads, D);
    o.moe = c.is_moe_layer(i);
    if (!o.moe) {
      o.dense = ffn(L ? &L->dense : nullptr, c.intermediate_size);
      return;
    }
    o.router = dense(L ? &L->router : nullptr, c.n_routed_experts, D);
    const bool bias = L ? !L->router_bias.empty() : true;
    o.router_bias = bias ? vec_f32(L ? &L->router_bias : nullptr, c.n_routed_experts, 0.f) : nullptr;
    o.experts_host.clear();
    for (int e = 0; e < c.n_routed_experts; ++e)
      o.experts_host.push_back(ffn(L ? &L->experts[size_t(e)] : nullptr, c.moe_intermediate_size));
    o.has_shared = c.n_shared_experts > 0;
    if (o.has_shared) o.shared = ffn(L ? &L->shared : nullptr, int64_t(c.n_shared_experts) * c.moe_intermediate_size);
    // One shared expert of the routed width, FP8: it joins the routed experts' grouped launches as
    // entry E of the device array (moe_experts' shared_expert; same bits as the dense FFN).
    o.shared_fused = o.has_shared && c.n_shared_experts == 1 && o.shared.gate.fp8 && o.shared.up.fp8 && o.shared.down.fp8;
    // The device array of ExpertDev that moe_experts reads.
    const size_t entries = size_t(c.n_routed_experts) + (o.shared_fused ? 1 : 0);
    ExpertDev* arr = reinterpret_cast<ExpertDev*>(take(sizeof(ExpertDev) * entries, false));
    o.experts = arr;
    if (!base) return;
    std::vector<ExpertDev> h;
    for (const FfnDev& f : o.experts_host) {
      o.all_experts_fp8 = o.all_experts_fp8 && f.gate.fp8 && f.up.fp8 && f.down.fp8;
      h.push_back(ExpertDev{f.gate.f8, f.up.f8, f.down.f8});
    }
    if (o.shared_fused) h.push_back(ExpertDev{o.shared.gate.f8, o.shared.up.f8, o.shared.down.f8});
    upload(arr, h.data(), h.size() * sizeof(ExpertDev));
  }

  void all(DeviceWeights& out) {
    const ModelConfig& c = cfg;
    const int64_t V = c.vocab_size, D = c.hidden_size;
    DenseWeightDev emb = dense(w ? &w->embed : nullptr, V, D);
    out.embed_ = emb.data;
    out.embed_bf16_ = emb.bf16;
    out.final_norm_ = norm_bf16(w ? &w->final_norm : nullptr, D);
    out.lm_head_ = dense(w ? &w->lm_head : nullptr, V, D);
    out.layers_.assign(size_t(c.num_hidden_layers), LayerDev{});
    for (int i = 0; i < c.num_hidden_layers; ++i) layer(i, w ? &w->layers[size_t(i)] : nullptr, out.layers_[size_t(i)]);
  }
};

DeviceWeights::~DeviceWeights() {
  if (base_) cudaFree(base_);
}

WeightBytes expected_weight_bytes(const ModelConfig& cfg, Numerics numerics) {
  WeightBytes b;
  for (const ExpectedTensor& e : expected_tensors(cfg)) {
    if (e.mtp) continue;
    int64_t n = 1;
    for (int64_t s : e.shape) n *= s;
    const int64_t bytes = n * int64_t(dtype_size(e.dtype));
    b.checkpoint += bytes;
    const bool kv_b = e.name.find("kv_b_proj") != std::string::npos;
    const bool f32_norm = e.name.find("q_a_layernorm") != std::string::npos ||
                          e.name.find("kv_a_layernorm") != std::string::npos ||
                          e.name.find("indexer.k_norm") != std::string::npos;
    if (kv_b) {
      // W_UK + W_UV (spec 4.7): same element count, BF16 (official) or F32 (exact)
      if (!e.is_scale) b.device += n * (numerics == Numerics::Exact ? 4 : 2);
    } else if (f32_norm) {
      b.device += n * 4;
    } else {
      b.device += bytes;
    }
  }
  return b;
}

namespace {

void start(DeviceWeights::Builder& b) {
  b.staging.ensure(2 * DeviceWeights::Builder::kHalf);
  DS_CUDA_CHECK(cudaStreamCreateWithFlags(&b.stream, cudaStreamNonBlocking));
  DS_CUDA_CHECK(cudaEventCreate(&b.ev[0]));
  DS_CUDA_CHECK(cudaEventCreate(&b.ev[1]));
  DS_CUDA_CHECK(cudaEventRecord(b.ev[0], b.stream));
  DS_CUDA_CHECK(cudaEventRecord(b.ev[1], b.stream));
  b.t0 = std::chrono::steady_clock::now();
}

double finish(DeviceWeights::Builder& b) {
  DS_CUDA_CHECK(cudaStreamSynchronize(b.stream));
  cudaEventDestroy(b.ev[0]);
  cudaEventDestroy(b.ev[1]);
  cudaStreamDestroy(b.stream);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - b.t0).count();
}

}  // namespace

std::unique_ptr<DeviceWeights> DeviceWeights::load(const std::string& dir, Numerics numerics) {
  auto out = std::unique_ptr<DeviceWeights>(new DeviceWeights());
  out->cfg_ = ModelConfig::load(dir);
  out->numerics_ = numerics;
  const bool exact = numerics == Numerics::Exact;
  Checkpoint ckpt = Checkpoint::open(dir);
  ModelWeights w;
  bind_weights(ckpt, out->cfg_, false, !exact, w);
  Builder dry{out->cfg_, &w, 1, exact};
  dry.all(*out);
  void* base = nullptr;
  const cudaError_t e = cudaMalloc(&base, dry.used);
  if (e != cudaSuccess)
    throw std::runtime_error("CUDA runner: cannot allocate " + std::to_string(dry.used) + " bytes of weights for " + dir +
                             ": " + cudaGetErrorString(e));
  out->base_ = base;
  Builder b{out->cfg_, &w, 1, exact};
  b.base = static_cast<uint8_t*>(base);
  b.total = dry.used;
  start(b);
  b.all(*out);
  const double s = finish(b);
  spdlog::info("weights: {:.3f} GB uploaded from {} in {:.2f} s ({:.2f} GB/s through pinned staging)", b.uploaded / 1e9,
               dir, s, b.uploaded / 1e9 / std::max(s, 1e-9));
  out->resident_ = b.weight_bytes;
  out->ckpt_bytes_ = expected_weight_bytes(out->cfg_, numerics).checkpoint;
  return out;
}

std::unique_ptr<DeviceWeights> DeviceWeights::dummy(const std::string& dir, uint64_t seed, Numerics numerics) {
  auto out = std::unique_ptr<DeviceWeights>(new DeviceWeights());
  out->cfg_ = ModelConfig::load(dir);
  out->numerics_ = numerics;
  const bool exact = numerics == Numerics::Exact;
  Builder dry{out->cfg_, nullptr, seed, exact};
  dry.all(*out);
  void* base = nullptr;
  const cudaError_t e = cudaMalloc(&base, dry.used);
  if (e != cudaSuccess)
    throw std::runtime_error("CUDA runner: cannot allocate " + std::to_string(dry.used) +
                             " bytes of dummy weights for " + dir + ": " + cudaGetErrorString(e));
  out->base_ = base;
  Builder b{out->cfg_, nullptr, seed, exact};
  b.base = static_cast<uint8_t*>(base);
  start(b);
  b.all(*out);
  finish(b);
  const WeightBytes wb = expected_weight_bytes(out->cfg_, numerics);
  out->resident_ = b.weight_bytes;
  out->ckpt_bytes_ = wb.checkpoint;
  spdlog::info("weights: dummy (--load-format dummy), {:.3f} GB made on the device from {}/config.json", b.weight_bytes / 1e9,
               dir);
  return out;
}

}  // namespace ds::cuda
