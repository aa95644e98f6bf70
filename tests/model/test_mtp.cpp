// The MTP module forward (spec/model.md 7.1) on tiny-a (make-model writes the MTP layer,
// model.layers.3.*): forward's final hidden states, the MTP input composition computed by hand,
// cache behaviour (chunked == one pass, batch == solo, main model untouched) and errors.
// Numerics against transformers' decoder layer: test_oracle_mtp.cpp.
#include <gtest/gtest.h>

#include <cmath>

#include "common/numeric.h"
#include "common/safetensors.h"
#include "model/deepseek_v32.h"
#include "model/weights.h"
#include "test_oracle_common.h"

using namespace ds;

namespace {

DeepseekV32& model(Numerics n) {
  static auto exact = DeepseekV32::load(oracle::tiny_a_dir(), Numerics::Exact, /*with_mtp=*/true);
  static auto official = DeepseekV32::load(oracle::tiny_a_dir(), Numerics::Official, /*with_mtp=*/true);
  return n == Numerics::Exact ? *exact : *official;
}

std::vector<int32_t> prompt(int n, int salt) {
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back(int32_t(2 + (i * 37 + salt * 101) % 1000));
  return t;
}

/// Main prefill of `toks`; returns the post-norm hidden of every row and fills `last` with the
/// last-row logits.
ForwardHidden main_hidden(DeepseekV32& m, const std::vector<int32_t>& toks, std::vector<float>* last = nullptr) {
  auto cache = m.new_cache();
  ForwardHidden h;
  Logits lg = m.forward(BatchPlan{{Segment{cache.get(), 0, toks}}}, &h);
  if (last) last->assign(lg.last(0), lg.last(0) + lg.vocab);
  return h;
}

/// Draft-extend inputs: tokens x_1..x_{n-1}, next; rows of h as given.
std::vector<int32_t> shifted(const std::vector<int32_t>& toks, int32_t next) {
  std::vector<int32_t> s(toks.begin() + 1, toks.end());
  s.push_back(next);
  return s;
}

}  // namespace

TEST(ForwardHiddenTest, LogitsUnchangedAndHiddenMatchesTraceAndHead) {
  for (Numerics n : {Numerics::Exact, Numerics::Official}) {
    DeepseekV32& m = model(n);
    const int64_t D = m.config().hidden_size;
    const auto toks = prompt(20, 1);
    auto c1 = m.new_cache();
    ForwardTrace trace;
    m.set_trace(&trace);
    Logits plain = m.forward(BatchPlan{{Segment{c1.get(), 0, toks, true}}});
    m.set_trace(nullptr);
    auto c2 = m.new_cache();
    ForwardHidden h;
    Logits with = m.forward(BatchPlan{{Segment{c2.get(), 0, toks, true}}}, &h);
    // Asking for hidden states changes nothing else (bit for bit).
    EXPECT_EQ(plain.data, with.data) << numerics_name(n);
    ASSERT_EQ(h.pre_norm.size(), toks.size() * size_t(D));
    ASSERT_EQ(h.post_norm.size(), toks.size() * size_t(D));
    // pre_norm is the last layer's residual stream the trace records.
    EXPECT_EQ(h.pre_norm, trace.hidden.back()) << numerics_name(n);
    // post_norm = RMSNorm(pre_norm) * model.norm.weight (spec 4.2); checked on row 7 in double.
    Checkpoint ck = Checkpoint::open(oracle::tiny_a_dir());
    const auto w = tensor_to_f32(ck.get("model.norm.weight"));
    const float* x = h.pre_norm.data() + 7 * D;
    double ss = 0;
    for (int64_t i = 0; i < D; ++i) ss += double(x[i]) * x[i];
    const double inv = 1.0 / std::sqrt(ss / double(D) + 1e-6);
    for (int64_t i = 0; i < D; ++i) {
      const double want = double(x[i]) * inv * w[size_t(i)];
      // exact: FP32 math vs double (rel 1e-5); official: one BF16 rounding (rel 2^-8).
      const double tol = (n == Numerics::Exact ? 1e-5 : 4e-3) * std::fabs(want) + 1e-6;
      ASSERT_NEAR(h.post_norm[size_t(7 * D + i)], want, tol) << numerics_name(n) << " i=" << i;
    }
  }
}

// Rows are causal and independent in their inputs: changing the LAST row's token or its hidden
// leaves every earlier row's draft logits bit-identical and changes the last row's.
TEST(MtpForward, DraftLogitsDependOnBothTokenAndHidden) {
  DeepseekV32& m = model(Numerics::Exact);
  const auto toks = prompt(6, 2);
  auto h = main_hidden(m, toks);
  auto run = [&](const std::vector<int32_t>& t, const std::vector<float>& hh) {
    auto c = m.new_mtp_cache();
    return m.mtp_forward(BatchPlan{{Segment{c.get(), 0, t, true}}}, hh);
  };
  const auto base = run(shifted(toks, 5), h.post_norm);
  auto other_tok = shifted(toks, 6);
  const auto by_tok = run(other_tok, h.post_norm);
  auto h2 = h.post_norm;
  for (size_t i = h2.size() - size_t(m.config().hidden_size); i < h2.size(); ++i) h2[i] *= -1.f;
  const auto by_hidden = run(shifted(toks, 5), h2);
  const size_t V = size_t(base.vocab), last = base.data.size() - V;
  // Rows before the last see the same inputs and (causally) the same keys: identical.
  for (size_t i = 0; i < last; ++i) {
    ASSERT_EQ(base.data[i], by_tok.data[i]) << i;
    ASSERT_EQ(base.data[i], by_hidden.data[i]) << i;
  }
  // The last row changes with its token and with its hidden.
  double dt = 0, dh = 0;
  for (size_t i = last; i < base.data.size(); ++i) {
    dt = std::max(dt, double(std::fabs(base.data[i] - by_tok.data[i])));
    dh = std::max(dh, double(std::fabs(base.data[i] - by_hidden.data[i])));
  }
  EXPECT_GT(dt, 1e-3);
  EXPECT_GT(dh, 1e-3);
}

TEST(MtpForward, ChunkedEqualsOnePassAndBatchEqualsSolo) {
  for (Numerics n : {Numerics::Exact, Numerics::Official}) {
    DeepseekV32& m = model(n);
    const int64_t D = m.config().hidden_size;
    // 40 rows > index_topk 16: the MTP layer's own indexer selects keys from its own cache.
    const auto toks = prompt(40, 3);
    const auto h = main_hidden(m, toks).post_norm;
    const auto mt = shifted(toks, 9);
    auto one = m.new_mtp_cache();
    std::vector<float> hid_one;
    Logits a = m.mtp_forward(BatchPlan{{Segment{one.get(), 0, mt, true}}}, h, &hid_one);
    EXPECT_EQ(one->length, 40);
    ASSERT_EQ(hid_one.size(), size_t(40 * D));
    // Same rows in two chunks (24 + 16) against the MTP cache.
    auto two = m.new_mtp_cache();
    std::vector<int32_t> t1(mt.begin(), mt.begin() + 24), t2(mt.begin() + 24, mt.end());
    std::vector<float> h1(h.begin(), h.begin() + 24 * D), h2(h.begin() + 24 * D, h.end());
    Logits b1 = m.mtp_forward(BatchPlan{{Segment{two.get(), 0, t1, true}}}, h1);
    Logits b2 = m.mtp_forward(BatchPlan{{Segment{two.get(), 24, t2, true}}}, h2);
    std::vector<float> joined = b1.data;
    joined.insert(joined.end(), b2.data.begin(), b2.data.end());
    EXPECT_EQ(joined, a.data) << numerics_name(n);  // row-wise math, same keys: bit-identical
    // In a batch with another sequence: the same rows, bit for bit (D27).
    const auto other = prompt(7, 4);
    const auto ho = main_hidden(m, other).post_norm;
    auto c3 = m.new_mtp_cache(), c4 = m.new_mtp_cache();
    std::vector<float> hb = ho;
    hb.insert(hb.end(), h.begin(), h.end());
    Logits batch = m.mtp_forward(BatchPlan{{Segment{c3.get(), 0, shifted(other, 3), false},
                                            Segment{c4.get(), 0, mt, true}}}, hb);
    ASSERT_EQ(batch.row_begin, (std::vector<int>{0, 1, 41}));
    EXPECT_TRUE(std::equal(a.data.begin(), a.data.end(), batch.row(1))) << numerics_name(n);
  }
}

TEST(MtpForward, MainModelUntouchedByMtp) {
  DeepseekV32& m = model(Numerics::Official);
  const auto toks = prompt(12, 5);
  std::vector<float> before, after;
  const auto h = main_hidden(m, toks, &before);
  auto c = m.new_mtp_cache();
  m.mtp_forward(BatchPlan{{Segment{c.get(), 0, shifted(toks, 2)}}}, h.post_norm);
  main_hidden(m, toks, &after);
  EXPECT_EQ(before, after);
  // The MTP cache holds only the MTP layer.
  for (int l = 0; l < m.config().num_hidden_layers; ++l) EXPECT_TRUE(c->layers[size_t(l)].latent.empty()) << l;
  EXPECT_EQ(c->layers.back().latent.size(), size_t(12 * m.config().kv_lora_rank));
}

TEST(MtpForward, ErrorsNameTheProblem) {
  DeepseekV32& m = model(Numerics::Exact);
  const int64_t D = m.config().hidden_size;
  std::vector<float> h(size_t(3 * D), 0.5f);
  auto expect_msg = [](auto fn, const std::string& what) {
    try {
      fn();
      FAIL() << "no exception, wanted: " << what;
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  auto mc = m.new_mtp_cache();
  expect_msg([&] { m.mtp_forward(BatchPlan{{Segment{mc.get(), 0, {4, 5}}}}, h); }, "h has 768 floats, expected 2 rows");
  auto main_cache = m.new_cache();
  expect_msg([&] { m.mtp_forward(BatchPlan{{Segment{main_cache.get(), 0, {4, 5, 6}}}}, h); }, "not made by new_mtp_cache");
  expect_msg([&] { m.mtp_forward(BatchPlan{{Segment{nullptr, 0, {4, 5, 6}}}}, h); }, "no cache");
  expect_msg([&] { m.mtp_forward(BatchPlan{{Segment{mc.get(), 1, {4, 5, 6}}}}, h); }, "start_pos 1 does not match the cache length 0");
  expect_msg([&] { m.mtp_forward(BatchPlan{{Segment{mc.get(), 0, {4, 5, 1024}}}}, h); }, "token id 1024 outside");
  EXPECT_EQ(mc->length, 0);  // nothing written by a refused plan
  auto no_mtp = DeepseekV32::load(oracle::tiny_a_dir(), Numerics::Exact);
  EXPECT_FALSE(no_mtp->has_mtp());
  EXPECT_THROW(no_mtp->new_mtp_cache(), std::logic_error);
  EXPECT_THROW(no_mtp->mtp_forward(BatchPlan{}, {}), std::logic_error);
}
