// Prometheus text exposition (src/server/metrics.*): HELP/TYPE lines, cumulative buckets ending in
// +Inf, _sum/_count, label escaping, SGLang's metric names (spec/serving.md 7).
#include <gtest/gtest.h>

#include <string>

#include "server/metrics.h"

namespace ds {
namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos &&
         (text.rfind(line + "\n", 0) == 0 || text.find("\n" + line + "\n") != std::string::npos);
}

TEST(Metrics, LabelEscaping) {
  EXPECT_EQ(prom_escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(prom_escape_label("deepseek-v3.2"), "deepseek-v3.2");
}

TEST(Metrics, Numbers) {
  EXPECT_EQ(prom_number(3), "3");
  EXPECT_EQ(prom_number(0.25), "0.25");
  EXPECT_EQ(prom_number(0.1), "0.1");
  EXPECT_EQ(prom_number(1.0 / 0.0), "+Inf");
}

TEST(Metrics, HistogramIsCumulativeWithInf) {
  PromHistogram h({0.1, 1, 10});
  h.observe(0.05);     // bucket le=0.1
  h.observe(0.1);      // le is inclusive: still 0.1
  h.observe(0.5, 2);   // twice into le=1
  h.observe(100);      // only +Inf
  const std::string t = h.render("x_seconds", "help text", "model_name=\"m\"");
  EXPECT_TRUE(has_line(t, "# HELP x_seconds help text")) << t;
  EXPECT_TRUE(has_line(t, "# TYPE x_seconds histogram")) << t;
  EXPECT_TRUE(has_line(t, "x_seconds_bucket{model_name=\"m\",le=\"0.1\"} 2")) << t;
  EXPECT_TRUE(has_line(t, "x_seconds_bucket{model_name=\"m\",le=\"1\"} 4")) << t;
  EXPECT_TRUE(has_line(t, "x_seconds_bucket{model_name=\"m\",le=\"10\"} 4")) << t;
  EXPECT_TRUE(has_line(t, "x_seconds_bucket{model_name=\"m\",le=\"+Inf\"} 5")) << t;
  EXPECT_TRUE(has_line(t, "x_seconds_sum{model_name=\"m\"} 101.15")) << t;  // 0.05+0.1+0.5*2+100
  EXPECT_TRUE(has_line(t, "x_seconds_count{model_name=\"m\"} 5")) << t;
  // No labels: no braces except around le.
  const std::string u = h.render("y", "h", "");
  EXPECT_TRUE(has_line(u, "y_bucket{le=\"+Inf\"} 5")) << u;
  EXPECT_TRUE(has_line(u, "y_count 5")) << u;
}

TEST(Metrics, ServerSeriesUseSglangNames) {
  ServerMetrics m("my \"model\"");
  {
    RequestMetrics r(&m, 10);
    r.tokens(1);  // first token: TTFT
    r.tokens(2);  // two more: inter-token latency observed twice
    EXPECT_EQ(m.active_tokens(), 13);
    r.finish(3, 4, false);
  }
  {
    RequestMetrics aborted(&m, 5);  // destroyed unfinished: counted as aborted
  }
  EXPECT_EQ(m.active_tokens(), 0);
  EngineGauges g;
  g.num_running_reqs = 2;
  g.num_queue_reqs = 1;
  g.token_usage = 0.5;
  const std::string t = m.render(g);
  const std::string L = "{model_name=\"my \\\"model\\\"\"}";
  EXPECT_TRUE(has_line(t, "# TYPE sglang:prompt_tokens_total counter")) << t;
  EXPECT_TRUE(has_line(t, "sglang:prompt_tokens_total" + L + " 15")) << t;
  EXPECT_TRUE(has_line(t, "sglang:generation_tokens_total" + L + " 3")) << t;
  EXPECT_TRUE(has_line(t, "sglang:cached_tokens_total" + L + " 4")) << t;
  EXPECT_TRUE(has_line(t, "sglang:num_requests_total" + L + " 2")) << t;
  EXPECT_TRUE(has_line(t, "sglang:num_aborted_requests_total" + L + " 1")) << t;
  EXPECT_TRUE(has_line(t, "sglang:time_to_first_token_seconds_count" + L + " 1")) << t;
  EXPECT_TRUE(has_line(t, "sglang:inter_token_latency_seconds_count" + L + " 2")) << t;
  EXPECT_TRUE(has_line(t, "sglang:e2e_request_latency_seconds_count" + L + " 2")) << t;
  EXPECT_TRUE(has_line(t, "# TYPE sglang:e2e_request_latency_seconds histogram")) << t;
  EXPECT_TRUE(has_line(t, "sglang:num_running_reqs" + L + " 2")) << t;
  EXPECT_TRUE(has_line(t, "sglang:num_queue_reqs" + L + " 1")) << t;
  EXPECT_TRUE(has_line(t, "sglang:token_usage" + L + " 0.5")) << t;
  EXPECT_TRUE(has_line(t, "sglang:cache_hit_rate" + L + " 0.26666666666666666")) << t;  // 4 / 15
  EXPECT_NE(t.find("# TYPE sglang:gen_throughput gauge"), std::string::npos);
  // Every sample line belongs to a family announced by a TYPE line before it.
  EXPECT_LT(t.find("# TYPE sglang:time_to_first_token_seconds histogram"),
            t.find("sglang:time_to_first_token_seconds_bucket"));
}

}  // namespace
}  // namespace ds
