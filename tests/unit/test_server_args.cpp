// serve flags: the seed's SGLang commands parse; unsupported values are refused naming the flag.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "server/server_args.h"

namespace {

ds::ServerArgs parse(std::vector<std::string> args) {
  args.insert(args.begin(), "serve");
  std::vector<const char*> argv;
  for (auto& a : args) argv.push_back(a.c_str());
  return ds::parse_server_args(int(argv.size()), argv.data());
}

std::string refusal(std::vector<std::string> args) {
  try {
    parse(std::move(args));
  } catch (const ds::ArgsError& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(ServerArgs, ParsersAndTestHook) {
  EXPECT_EQ(parse({"--tool-call-parser", "deepseekv31"}).tool_call_parser, "deepseekv31");
  EXPECT_EQ(parse({"--reasoning-parser", "deepseek-v3"}).reasoning_parser, "deepseek-v3");
  EXPECT_FALSE(parse({}).debug_inject_output);
  ::setenv("DEEPSERVE_ALLOW_TEST_HOOKS", "1", 1);
  EXPECT_TRUE(parse({"--debug-inject-output"}).debug_inject_output);
  ::setenv("DEEPSERVE_ALLOW_TEST_HOOKS", "yes", 1);  // only "1" enables it
  EXPECT_EQ(refusal({"--debug-inject-output"}).rfind("--debug-inject-output: refused", 0), 0u);
  ::unsetenv("DEEPSERVE_ALLOW_TEST_HOOKS");
}

TEST(ServerArgs, Defaults) {
  auto a = parse({});
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 30000);
  EXPECT_EQ(a.model_path, "");
  EXPECT_EQ(a.numerics, "official");
  EXPECT_EQ(a.max_running_requests, 64);
  EXPECT_TRUE(a.notes.empty());
}

// A repeated option takes its last value, as argparse (SGLang) does; CLI11's default refused it
// with "At Most 1 required but received 2" (new-user trial).
TEST(ServerArgs, RepeatedOptionTakesTheLastValue) {
  EXPECT_EQ(refusal({"--tp", "1", "--tp", "1"}), "(accepted)");
  EXPECT_EQ(refusal({"--tp", "1", "--tp", "2"}), "--tp 2: not supported; deepserve runs on one device (--tp 1)");
  EXPECT_EQ(refusal({"--tp", "2", "--tp-size", "1"}), "(accepted)");  // aliases are one option
  EXPECT_EQ(parse({"--port", "8080", "--port", "8081"}).port, 8081);
  EXPECT_EQ(parse({"--host", "0.0.0.0", "--host", "::1"}).host, "::1");
}

TEST(ServerArgs, HonouredValues) {
  auto a = parse({"--model", DEEPSERVE_SOURCE_DIR, "--host", "0.0.0.0", "--port", "8080", "--served-model-name", "m",
                  "--context-length", "65536", "--max-running-requests", "128", "--allow-auto-truncate",
                  "--log-requests", "--numerics", "exact", "--api-key", "k", "--stream-interval", "2"});
  EXPECT_EQ(a.model_path, DEEPSERVE_SOURCE_DIR);
  EXPECT_EQ(a.host, "0.0.0.0");
  EXPECT_EQ(a.port, 8080);
  EXPECT_EQ(a.served_model_name, "m");
  EXPECT_EQ(a.context_length, 65536);
  EXPECT_EQ(a.max_running_requests, 128);
  EXPECT_TRUE(a.allow_auto_truncate);
  EXPECT_TRUE(a.log_requests);
  EXPECT_EQ(a.numerics, "exact");
  EXPECT_EQ(a.api_key, "k");
  EXPECT_EQ(a.stream_interval, 2);
}

TEST(ServerArgs, SeedCommandFlagsParseWithOneNoteEach) {
  // The seed's single-node flags with deepserve-compatible values (tp/dp/ep 1, no speculative).
  auto a = parse({"--trust-remote-code", "--nccl-init", "10.0.0.1:5000", "--nnodes", "1", "--node-rank", "0",
                  "--tp", "1", "--dp", "1", "--enable-dp-attention", "--page-size", "64", "--ep-size", "1",
                  "--moe-a2a-backend", "deepep", "--pp-size", "1", "--pp-async-batch-depth", "1",
                  "--chunked-prefill-size", "16384", "--attention-backend", "nsa", "--nsa-prefill-backend",
                  "flashmla_sparse", "--nsa-decode-backend", "flashmla_sparse",
                  "--enable-nsa-prefill-context-parallel", "--nsa-prefill-cp-mode", "round-robin-split",
                  "--cuda-graph-max-bs", "128", "--kv-cache-dtype", "fp8_e4m3", "--enable-metrics",
                  "--speculative-num-steps", "2", "--mem-fraction-static", "0.9",
                  "--tool-call-parser", "deepseekv32", "--reasoning-parser", "deepseek-v3"});
  auto has = [&](const std::string& flag) {
    for (const auto& n : a.notes)
      if (n.rfind(flag + " ", 0) == 0) return true;
    return false;
  };
  EXPECT_EQ(a.page_size, 64);
  EXPECT_EQ(a.chunked_prefill_size, 16384);
  for (const char* f : {"--trust-remote-code", "--dist-init-addr", "--node-rank", "--enable-dp-attention",
                        "--moe-a2a-backend", "--attention-backend", "--nsa-prefill-backend",
                        "--nsa-decode-backend", "--enable-nsa-prefill-context-parallel", "--nsa-prefill-cp-mode",
                        "--cuda-graph-max-bs", "--kv-cache-dtype", "--speculative-num-steps",
                        "--mem-fraction-static"})
    EXPECT_TRUE(has(f)) << f;
  EXPECT_EQ(a.tool_call_parser, "deepseekv32");
}

TEST(ServerArgs, CommonSglangLaunchFlagsAreTaken) {
  // Flags of SGLang launch commands a new-user trial used; each is taken, and the ones without an
  // effect here say so in a startup note.
  auto a = parse({"--dtype", "bfloat16", "--quantization", "fp8", "--random-seed", "42", "--grammar-backend", "xgrammar",
                  "--disable-overlap-schedule", "--enable-torch-compile", "--skip-server-warmup", "--tokenizer-mode",
                  "auto", "--max-queued-requests", "10", "--decode-log-interval", "40", "--enable-mixed-chunk"});
  for (const char* f : {"--random-seed", "--grammar-backend", "--disable-overlap-schedule", "--enable-torch-compile",
                        "--skip-server-warmup", "--tokenizer-mode", "--max-queued-requests", "--decode-log-interval",
                        "--enable-mixed-chunk"}) {
    bool noted = false;
    for (const auto& n : a.notes) noted = noted || n.rfind(std::string(f) + " accepted without effect: ", 0) == 0;
    EXPECT_TRUE(noted) << f;
  }
  EXPECT_EQ(refusal({"--dtype", "auto", "--quantization", "fp8"}), "(accepted)");
  EXPECT_EQ(refusal({"--dtype=bf16"}), "(accepted)");
}

TEST(ServerArgs, RefusalsNameTheFlag) {
  EXPECT_EQ(refusal({"--tp", "8"}), "--tp 8: not supported; deepserve runs on one device (--tp 1)");
  EXPECT_EQ(refusal({"--tp-size", "2"}), "--tp 2: not supported; deepserve runs on one device (--tp 1)");
  EXPECT_EQ(refusal({"--dp", "2"}), "--dp 2: not supported; deepserve runs on one device (--dp 1)");
  EXPECT_EQ(refusal({"--ep", "8"}), "--ep 8: not supported; deepserve runs on one device (--ep 1)");
  EXPECT_EQ(refusal({"--nnodes", "2"}), "--nnodes 2: not supported; deepserve runs on one node (--nnodes 1)");
  EXPECT_EQ(refusal({"--speculative-algorithm", "EAGLE"}),
            "--speculative-algorithm EAGLE: not supported; speculative decoding (MTP/EAGLE) is not implemented yet (omit the flag)");
  EXPECT_EQ(refusal({"--model-path", "deepseek-ai/DeepSeek-V3.2"}).rfind("--model-path deepseek-ai/DeepSeek-V3.2: not a directory", 0), 0u);
  EXPECT_EQ(refusal({"--device", "tpu"}), "--device tpu: not supported; supported: cuda, cpu (auto: cuda when a GPU is present)");
  EXPECT_EQ(refusal({"--load-format", "pt"}), "--load-format pt: not supported; supported: auto, dummy");
  EXPECT_EQ(refusal({"--mem-fraction-static", "1.5"}), "--mem-fraction-static 1.5: expected a number in (0, 1)");
  EXPECT_EQ(refusal({"--mem-fraction-static", "0.5x"}), "--mem-fraction-static 0.5x: expected a number in (0, 1)");
  EXPECT_EQ(refusal({"--numerics", "fast"}), "--numerics fast: not supported; supported: official, exact");
  EXPECT_EQ(refusal({"--kv-cache-dtype", "fp8_e5m2"}),
            "--kv-cache-dtype fp8_e5m2: not supported; supported for DSA models: auto, bf16, bfloat16, fp8_e4m3");
  EXPECT_EQ(refusal({"--tool-call-parser", "deepseekv3"}), "--tool-call-parser deepseekv3: not supported; supported: deepseekv32, deepseekv31");
  ::unsetenv("DEEPSERVE_ALLOW_TEST_HOOKS");
  EXPECT_EQ(refusal({"--debug-inject-output"}),
            "--debug-inject-output: refused; it is a test hook (set DEEPSERVE_ALLOW_TEST_HOOKS=1 in tests only)");
  EXPECT_EQ(refusal({"--chat-template", "x.jinja"}).rfind("--chat-template x.jinja: not supported", 0), 0u);
  EXPECT_EQ(refusal({"--port", "70000"}), "--port 70000: expected an integer in [0, 65535]");
  EXPECT_EQ(refusal({"--context-length", "abc"}), "--context-length abc: expected an integer in [2, 1073741824]");
  EXPECT_EQ(refusal({"--no-such-flag"}), "unknown flag --no-such-flag (`deepserve serve --help` lists the flags deepserve takes)");
  EXPECT_EQ(refusal({"--port", "0", "--no-such-flag=3"}),
            "unknown flag --no-such-flag (`deepserve serve --help` lists the flags deepserve takes)");
  EXPECT_EQ(refusal({"--port", "0", "stray"}),
            "unexpected argument 'stray' (flags start with --; `deepserve serve --help` lists them)");
  EXPECT_EQ(refusal({"--dtype", "float16"}),
            "--dtype float16: not supported; supported: auto, bfloat16 (the arithmetic follows --numerics: official or exact FP32)");
  EXPECT_EQ(refusal({"--quantization", "awq"}),
            "--quantization awq: not supported; supported: fp8 (the checkpoint's FP8 block-scaled weights are used as stored)");
  // Session 3: every value range checked at start, with the flag and the value named.
  EXPECT_EQ(refusal({"--host", "999.1.1.1"}).rfind("--host 999.1.1.1: not a valid IP address or resolvable host name (", 0), 0u);
  EXPECT_EQ(refusal({"--host", ""}), "--host: must not be empty (e.g. 127.0.0.1, 0.0.0.0 or ::)");
  EXPECT_EQ(refusal({"--host", "::"}), "(accepted)");
  EXPECT_EQ(refusal({"--host", "0.0.0.0"}), "(accepted)");
  EXPECT_EQ(refusal({"--cuda-graph-bs", "1,0,8"}),
            "--cuda-graph-bs 1,0,8: expected batch sizes in [1, 4096] separated by commas, got '0'");
  EXPECT_EQ(refusal({"--cuda-graph-bs", "1,,8"}),
            "--cuda-graph-bs 1,,8: expected batch sizes in [1, 4096] separated by commas, got ''");
  EXPECT_EQ(refusal({"--cuda-graph-bs", "1,2,4,8"}), "(accepted)");
  EXPECT_EQ(refusal({"--watchdog-timeout", "-1"}), "--watchdog-timeout -1: expected a number of seconds > 0");
  EXPECT_EQ(refusal({"--watchdog-timeout", "600"}), "(accepted)");
}

TEST(ServerArgs, DeviceFlags) {
  auto d = parse({});
  EXPECT_EQ(d.device, "");  // auto
  EXPECT_EQ(d.load_format, "auto");
  EXPECT_EQ(d.mem_fraction_static, 0.0);
  EXPECT_EQ(d.kv_cache_dtype, "auto");
  auto a = parse({"--device", "cuda", "--load-format", "dummy", "--mem-fraction-static", "0.7", "--kv-cache-dtype",
                  "fp8_e4m3"});
  EXPECT_EQ(a.device, "cuda");
  EXPECT_EQ(a.load_format, "dummy");
  EXPECT_EQ(a.mem_fraction_static, 0.7);
  EXPECT_EQ(a.kv_cache_dtype, "fp8_e4m3");
  EXPECT_TRUE(a.notes.empty());  // honoured with --device cuda: no "applies to cuda only" notes
  EXPECT_EQ(parse({"--device", "cpu"}).device, "cpu");
  EXPECT_EQ(parse({"--device", "auto"}).device, "");
}

TEST(ServerArgs, TableHasEverySection5Flag) {
  std::string all;
  for (const auto& f : ds::serve_flag_table()) all += std::string(f.names) + ",";
  for (const char* f : {"--model-path", "--model", "--tokenizer-path", "--trust-remote-code", "--host", "--port",
                        "--served-model-name", "--tp", "--tp-size", "--dp", "--dp-size", "--enable-dp-attention", "--ep",
                        "--ep-size", "--moe-a2a-backend", "--pp", "--pp-size", "--page-size", "--context-length",
                        "--max-running-requests", "--max-total-tokens", "--chunked-prefill-size", "--max-prefill-tokens",
                        "--cuda-graph-max-bs", "--cuda-graph-bs", "--mem-fraction-static", "--kv-cache-dtype",
                        "--attention-backend", "--nsa-prefill-backend", "--nsa-decode-backend",
                        "--enable-nsa-prefill-context-parallel", "--nsa-prefill-cp-mode", "--speculative-algorithm",
                        "--speculative-num-steps", "--speculative-eagle-topk", "--speculative-num-draft-tokens",
                        "--reasoning-parser", "--tool-call-parser", "--chat-template", "--sampling-defaults",
                        "--log-requests", "--log-requests-level", "--enable-metrics", "--enable-cache-report",
                        "--allow-auto-truncate", "--nnodes", "--node-rank", "--dist-init-addr", "--nccl-init-addr",
                        "--disaggregation-mode", "--stream-interval", "--watchdog-timeout", "--schedule-policy",
                        "--log-level", "--api-key", "--numerics", "--device"})
    EXPECT_NE(all.find(std::string(f) + ","), std::string::npos) << f;
}

}  // namespace
