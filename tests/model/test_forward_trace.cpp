// ForwardTrace::attn_override (src/model/deepseek_v32.h): the teacher-forcing hook that GPU drivers
// use to compare the rest of a layer on equal attention outputs (tests/gpu/gpu_fullwidth.cpp).
// Checked on tiny-a (official mode): feeding a forward its own attention outputs gives bit-identical
// logits; replacing one layer's output changes the logits of that forward and is what the trace
// records; a wrong size throws naming the layer.
#include <gtest/gtest.h>

#include <stdexcept>

#include "model/deepseek_v32.h"
#include "tiny_model_util.h"

namespace {

using ds::BatchPlan;
using ds::ForwardTrace;
using ds::Segment;

struct TracedRun {
  ds::Logits logits;
  ForwardTrace trace;
};

TracedRun run(ds::DeepseekV32& m, const std::vector<int32_t>& toks, ForwardTrace trace) {
  auto cache = m.new_cache();
  m.set_trace(&trace);
  TracedRun r;
  try {
    r.logits = m.forward(BatchPlan{{Segment{cache.get(), 0, toks, true}}});
  } catch (...) {
    m.set_trace(nullptr);
    throw;
  }
  m.set_trace(nullptr);
  r.trace = std::move(trace);
  return r;
}

TEST(ForwardTraceOverride, OwnAttentionOutputsGiveBitIdenticalLogits) {
  auto m = tinyutil::tiny_a("ds_trace_override");
  const auto toks = tinyutil::prompt(23, 5);
  const TracedRun base = run(*m, toks, {});
  ASSERT_EQ(base.trace.attn.size(), size_t(m->config().num_hidden_layers));
  ForwardTrace forced;
  forced.attn_override = base.trace.attn;
  const TracedRun again = run(*m, toks, forced);
  EXPECT_EQ(again.logits.data, base.logits.data);
  EXPECT_EQ(again.trace.hidden, base.trace.hidden);
}

TEST(ForwardTraceOverride, ReplacedLayerOutputIsUsedAndRecorded) {
  auto m = tinyutil::tiny_a("ds_trace_override");
  const auto toks = tinyutil::prompt(23, 6);
  const TracedRun base = run(*m, toks, {});
  ForwardTrace forced;
  forced.attn_override.resize(2);  // layer 0 untouched (empty entry), layer 1 replaced
  forced.attn_override[1] = base.trace.attn[1];
  for (size_t i = 0; i < forced.attn_override[1].size(); i += 3) forced.attn_override[1][i] *= 2.0f;
  const TracedRun again = run(*m, toks, forced);
  EXPECT_EQ(again.trace.attn[0], base.trace.attn[0]);
  EXPECT_EQ(again.trace.hidden[0], base.trace.hidden[0]);  // layer 0 computed as before
  EXPECT_EQ(again.trace.attn[1], forced.attn_override[1]);  // the trace records what o_proj saw
  EXPECT_NE(again.trace.hidden[1], base.trace.hidden[1]);
  EXPECT_NE(again.logits.data, base.logits.data);
}

TEST(ForwardTraceOverride, WrongSizeThrowsNamingTheLayer) {
  auto m = tinyutil::tiny_a("ds_trace_override");
  const auto toks = tinyutil::prompt(9, 7);
  ForwardTrace forced;
  forced.attn_override.assign(1, std::vector<float>(5, 0.f));
  try {
    run(*m, toks, forced);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("attn_override: layer 0 has 5 values"), std::string::npos) << e.what();
  }
}

}  // namespace
