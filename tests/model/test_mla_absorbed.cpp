// The absorbed (MQA) MLA attention used for every position equals the expanded MHA form of
// spec/model.md 4.6 (a test-only reference written here) on tiny-a's real kv_b_proj weights.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "model/model_core.h"
#include "tools/make_model.h"

namespace fs = std::filesystem;
using namespace ds;

namespace {

// Expanded MHA reference (spec 4.6) in double precision: k_nope = W_UK c, v = W_UV c,
// logits = scale * (q_nope·k_nope + q_pe·k_pe), softmax, o = sum p v.
std::vector<double> expanded_mha(const ModelConfig& c, const std::vector<float>& kv_b, const float* q,
                                 const std::vector<float>& latent, const std::vector<float>& k_pe,
                                 const std::vector<int32_t>& idx, double scale) {
  const int H = c.num_attention_heads, dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim, dv = c.v_head_dim;
  const int C = c.kv_lora_rank;
  std::vector<double> out(size_t(H * dv), 0.0);
  for (int h = 0; h < H; ++h) {
    const float* wk = kv_b.data() + size_t(h) * (dn + dv) * C;
    const float* wv = wk + size_t(dn) * C;
    const float* qn = q + h * (dn + dr);
    std::vector<double> logits, vs;
    for (int32_t s : idx) {
      const float* cs = latent.data() + size_t(s) * C;
      double dot = 0;
      for (int d = 0; d < dn; ++d) {
        double k = 0;
        for (int j = 0; j < C; ++j) k += double(wk[d * C + j]) * cs[j];
        dot += qn[d] * k;
      }
      for (int d = 0; d < dr; ++d) dot += double(qn[dn + d]) * k_pe[size_t(s) * dr + d];
      logits.push_back(dot * scale);
    }
    const double mx = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (auto& l : logits) sum += (l = std::exp(l - mx));
    for (size_t i = 0; i < idx.size(); ++i) {
      const float* cs = latent.data() + size_t(idx[i]) * C;
      for (int d = 0; d < dv; ++d) {
        double v = 0;
        for (int j = 0; j < C; ++j) v += double(wv[d * C + j]) * cs[j];
        out[size_t(h * dv + d)] += logits[i] / sum * v;
      }
    }
  }
  return out;
}

}  // namespace

// Exact mode (FP32): the absorbed form reassociates the sums of the expanded form, so the two agree
// to FP32 rounding: normwise 1e-5 (K <= 192-term dot products, eps 6e-8, sqrt growth ~ 1e-6, with
// margin). Also with a sparse selection (every other key).
TEST(MlaAbsorbed, EqualsExpandedMhaForm) {
  fs::path dir = fs::temp_directory_path() / ("ds_mla_test_" + std::to_string(::getpid()));
  make_model("tiny-a", dir.string());
  ModelCore m;
  m.cfg = ModelConfig::load(dir.string());
  m.ckpt = Checkpoint::open(dir.string());
  m.official = false;
  bind_weights(m.ckpt, m.cfg, false, false, m.w);
  m.softmax_scale = float(m.cfg.softmax_scale());
  const ModelConfig& c = m.cfg;
  const LayerWeights& L = m.w.layers[1];
  std::vector<float> kv_b(size_t(L.kv_b.rows * L.kv_b.cols));
  cpu::dequantize_rows(L.kv_b, 0, L.kv_b.rows, kv_b.data());

  const int n_keys = 23, H = c.num_attention_heads, dq = c.qk_head_dim();
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 1.f);
  SequenceCache::Layer cache;
  cache.latent.resize(size_t(n_keys * c.kv_lora_rank));
  cache.k_pe.resize(size_t(n_keys * c.qk_rope_head_dim));
  for (auto& x : cache.latent) x = nd(rng);
  for (auto& x : cache.k_pe) x = nd(rng);
  std::vector<float> q(size_t(H * dq));
  for (auto& x : q) x = nd(rng);

  for (int stride : {1, 2}) {
    std::vector<int32_t> idx;
    for (int s = 0; s < n_keys; s += stride) idx.push_back(s);
    std::vector<float> got(size_t(H * c.v_head_dim));
    mla_attend(m, L, q.data(), cache, idx.data(), int(idx.size()), got.data());
    auto ref = expanded_mha(c, kv_b, q.data(), cache.latent, cache.k_pe, idx, m.softmax_scale);
    double num = 0, den = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      num += (got[i] - ref[i]) * (got[i] - ref[i]);
      den += ref[i] * ref[i];
    }
    EXPECT_GT(den, 0.0);
    EXPECT_LT(std::sqrt(num / den), 1e-5) << "stride " << stride;
  }
  fs::remove_all(dir);
}
