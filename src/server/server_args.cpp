#include "server/server_args.h"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>

#include <CLI/CLI.hpp>

namespace ds {

namespace {
using K = FlagKind;
using E = FlagEffect;
}  // namespace

const std::vector<FlagSpec>& serve_flag_table() {
  static const std::vector<FlagSpec> table = {
      // Model and tokenizer.
      {"--model-path,--model", K::Value, "", E::Checked, "model directory (HF layout); omitted: the embedded tiny model. Hub ids are refused (download first)"},
      {"--tokenizer-path", K::Value, "", E::Honoured, "directory or tokenizer.json (default: the model directory)"},
      {"--trust-remote-code", K::Switch, "false", E::NoEffect, "deepserve never runs code from a checkpoint"},
      {"--served-model-name", K::Value, "", E::Honoured, "name listed by /v1/models (default: the model path)"},
      {"--context-length", K::Value, "", E::Honoured, "max prompt + completion tokens (default: config.json max_position_embeddings)"},
      {"--chat-template", K::Value, "", E::Checked, "refused: prompts are rendered by DeepSeek's V3.2 encoder or the V3.1-format encoder (D7); Jinja templates are not supported"},
      {"--sampling-defaults", K::Value, "model", E::Checked, "model (generation_config.json) | openai"},
      // HTTP.
      {"--host", K::Value, "127.0.0.1", E::Honoured, "bind address"},
      {"--port", K::Value, "30000", E::Honoured, "bind port (0: any free port)"},
      {"--api-key", K::Value, "", E::Honoured, "require 'Authorization: Bearer <key>' on every route but /health, /health_generate, /metrics"},
      {"--enable-metrics", K::Switch, "false", E::Honoured, "serve GET /metrics (Prometheus text format, SGLang's sglang: names)"},
      {"--enable-cache-report", K::Switch, "false", E::NoEffect, "usage.prompt_tokens_details.cached_tokens is always reported when the radix cache served tokens (D20)"},
      {"--log-level", K::Value, "info", E::Checked, "trace | debug | info | warning | error | critical"},
      {"--log-requests", K::Switch, "false", E::Honoured, "log one line per request"},
      {"--log-requests-level", K::Value, "2", E::Checked, "0 metadata, 1 +sampling params, 2 +partial IO, 3 full IO"},
      {"--stream-interval", K::Value, "1", E::Honoured, "tokens per streamed chunk"},
      {"--allow-auto-truncate", K::Switch, "false", E::Honoured, "truncate prompts / max_tokens that exceed the context instead of a 400"},
      // Parsers.
      {"--reasoning-parser", K::Value, "", E::Checked, "deepseek-v3 (reasoning_content split out of the output)"},
      {"--tool-call-parser", K::Value, "", E::Checked, "deepseekv32 (DSML; V3.2 encoder) | deepseekv31 (V3.1 format encoder, D7)"},
      {"--debug-inject-output", K::Switch, "false", E::Checked, "test hook: a request's debug_model_text replaces sampling; refused unless DEEPSERVE_ALLOW_TEST_HOOKS=1"},
      // Device and numerics (deepserve's own).
      {"--device", K::Value, "auto", E::Checked, "cuda | cpu (auto: cuda when the build has the CUDA runner and a GPU is present, else cpu)"},
      {"--numerics", K::Value, "official", E::Checked, "official | exact (D23; cpu and cuda: exact is FP32 end to end, on cuda with an FP32 KV cache and no CUDA graphs)"},
      // Parallelism.
      {"--tp,--tp-size", K::Value, "1", E::Checked, "tensor parallel size; only 1"},
      {"--dp,--dp-size", K::Value, "1", E::Checked, "data parallel size; only 1"},
      {"--ep,--ep-size", K::Value, "1", E::Checked, "expert parallel size; only 1"},
      {"--pp,--pp-size", K::Value, "1", E::Checked, "pipeline parallel size; only 1"},
      {"--enable-dp-attention", K::Switch, "false", E::NoEffect, "dp is 1, which turns DP attention off (as SGLang does)"},
      {"--moe-a2a-backend", K::Value, "none", E::NoEffect, "one device: no all-to-all"},
      {"--nnodes", K::Value, "1", E::Checked, "number of nodes; only 1"},
      {"--node-rank", K::Value, "0", E::NoEffect, "single node"},
      {"--dist-init-addr,--nccl-init-addr,--nccl-init", K::Value, "", E::NoEffect, "single node: no distributed init"},
      {"--pp-async-batch-depth", K::Value, "0", E::NoEffect, "no pipeline parallelism"},
      {"--enable-nsa-prefill-context-parallel,--enable-dsa-prefill-context-parallel", K::Switch, "false", E::NoEffect, "one device: no context parallelism"},
      {"--nsa-prefill-cp-mode,--dsa-prefill-cp-mode", K::Value, "", E::NoEffect, "one device: no context parallelism"},
      {"--disaggregation-mode", K::Value, "null", E::Checked, "null only (no prefill/decode disaggregation)"},
      // Memory, batching, kernels.
      {"--page-size", K::Value, "64", E::Honoured, "tokens per KV page (paged KV pool and radix-cache granularity)"},
      {"--mem-fraction-static", K::Value, "", E::Checked, "cuda: fraction of GPU memory for weights + KV pool (default 0.85); cpu: no effect"},
      {"--load-format", K::Value, "auto", E::Checked, "auto | dummy (cuda: random weights of config.json's shapes made on the GPU, no safetensors read)"},
      {"--max-running-requests", K::Value, "64", E::Honoured, "cap on requests in one batch (later ones wait)"},
      {"--max-total-tokens", K::Value, "", E::Honoured, "KV pool size in tokens (CPU; default: 4 x context length, at most 1 GiB of KV)"},
      {"--chunked-prefill-size", K::Value, "8192", E::Honoured, "most prompt tokens of one request per step (-1: no chunking)"},
      {"--max-prefill-tokens", K::Value, "16384", E::Honoured, "most prefill tokens of all requests in one step"},
      {"--disable-radix-cache", K::Switch, "false", E::Honoured, "no prefix sharing between requests"},
      {"--cuda-graph-max-bs", K::Value, "", E::Checked, "cuda: largest captured decode batch (default by GPU memory: 256 on an H200); cpu: no effect"},
      {"--cuda-graph-bs", K::Value, "", E::Checked, "cuda: captured decode batch sizes, e.g. 1,2,4,8 (default: SGLang's list up to --cuda-graph-max-bs); cpu: no effect"},
      {"--disable-cuda-graph", K::Switch, "false", E::Honoured, "cuda: every step runs eagerly (no decode graphs); cpu: no effect"},
      {"--kv-cache-dtype", K::Value, "auto", E::Checked, "auto | bf16 | bfloat16 | fp8_e4m3 (cuda official: the MLA cache record, spec 8.1; cuda exact: auto only (FP32); cpu: follows --numerics)"},
      {"--attention-backend", K::Value, "auto", E::Checked, "auto | nsa | dsa (the CPU backend runs DSA attention)"},
      {"--nsa-prefill-backend,--dsa-prefill-backend", K::Value, "", E::NoEffect, "CUDA kernel choice; the CPU backend has one implementation"},
      {"--nsa-decode-backend,--dsa-decode-backend", K::Value, "", E::NoEffect, "CUDA kernel choice; the CPU backend has one implementation"},
      {"--schedule-policy", K::Value, "fcfs", E::Checked, "fcfs | lpm (longest cached prefix first)"},
      {"--watchdog-timeout", K::Value, "300", E::NoEffect, "no watchdog yet"},
      {"--dtype", K::Value, "auto", E::Checked, "auto | bfloat16 | bf16 (the arithmetic follows --numerics: official stores BF16 where DeepSeek's demo does, exact is FP32)"},
      {"--quantization", K::Value, "", E::Checked, "fp8 or empty: the checkpoint's FP8 weights with their 128x128 block scales are used as stored"},
      {"--enable-mixed-chunk", K::Switch, "false", E::NoEffect, "decode rows and prefill chunks always share a step"},
      {"--disable-overlap-schedule", K::Switch, "false", E::NoEffect, "no overlap scheduler to disable"},
      {"--enable-torch-compile", K::Switch, "false", E::NoEffect, "no PyTorch"},
      {"--skip-server-warmup", K::Switch, "false", E::NoEffect, "the server makes no warmup request"},
      {"--tokenizer-mode", K::Value, "auto", E::NoEffect, "one tokenizer implementation (src/text)"},
      {"--grammar-backend", K::Value, "", E::NoEffect, "deepserve's own constrained decoding serves response_format and tools"},
      {"--random-seed", K::Value, "", E::NoEffect, "a request without `seed` samples from fresh entropy; pass `seed` per request to reproduce"},
      {"--decode-log-interval", K::Value, "40", E::NoEffect, "throughput is in /metrics and the per-request log lines"},
      {"--max-queued-requests", K::Value, "", E::NoEffect, "no queue cap: requests wait until admitted (clients that leave are dropped)"},
      // Speculative decoding (MTP).
      {"--speculative-algorithm", K::Value, "", E::Checked, "refused: MTP/EAGLE speculative decoding is not implemented yet"},
      {"--speculative-num-steps", K::Value, "", E::NoEffect, "no speculative decoding"},
      {"--speculative-eagle-topk", K::Value, "", E::NoEffect, "no speculative decoding"},
      {"--speculative-num-draft-tokens", K::Value, "", E::NoEffect, "no speculative decoding"},
  };
  return table;
}

namespace {

std::string first_name(const char* names) {
  std::string s(names);
  return s.substr(0, s.find(','));
}

int to_int(const std::string& flag, const std::string& v, int lo, int hi) {
  char* end = nullptr;
  errno = 0;
  long x = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno != 0 || x < lo || x > hi)
    throw ArgsError(flag + " " + v + ": expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return int(x);
}

/// A number strictly inside (lo, hi); else ArgsError "<flag> <v>: expected <expected>".
double to_double(const std::string& flag, const std::string& v, double lo, double hi, const std::string& expected) {
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !(x > lo && x < hi)) throw ArgsError(flag + " " + v + ": expected " + expected);
  return x;
}

/// --host must be an IP address or a name that resolves (else a clear error now, not a failed bind
/// that looks like a busy port).
void check_host(const std::string& host) {
  if (host.empty()) throw ArgsError("--host: must not be empty (e.g. 127.0.0.1, 0.0.0.0 or ::)");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (res) freeaddrinfo(res);
  if (rc != 0)
    throw ArgsError("--host " + host + ": not a valid IP address or resolvable host name (" + gai_strerror(rc) + ")");
}

void one_of(const std::string& flag, const std::string& v, std::initializer_list<const char*> ok, const std::string& what) {
  for (const char* o : ok)
    if (v == o) return;
  throw ArgsError(flag + " " + v + ": not supported; " + what);
}

// The value type shown by --help (CLI11 prints TEXT for string options): SGLang's int / float flags.
const char* value_type(const std::string& first) {
  static const std::set<std::string> ints = {
      "--context-length", "--port", "--log-requests-level", "--stream-interval", "--tp", "--dp", "--ep", "--pp",
      "--nnodes", "--node-rank", "--pp-async-batch-depth", "--page-size", "--max-running-requests",
      "--max-total-tokens", "--chunked-prefill-size", "--max-prefill-tokens", "--cuda-graph-max-bs",
      "--speculative-num-steps", "--speculative-eagle-topk", "--speculative-num-draft-tokens", "--random-seed",
      "--decode-log-interval", "--max-queued-requests"};
  static const std::set<std::string> floats = {"--mem-fraction-static", "--watchdog-timeout"};
  if (ints.count(first)) return "INT";
  if (floats.count(first)) return "FLOAT";
  return "TEXT";
}

/// The first argument CLI11 could not place, named plainly ("unknown flag --dtype"), instead of
/// CLI11's list of leftover words (which puts a flag's value before the flag).
std::string unexpected_argument(const CLI::App& app, int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string t = argv[i];
    if (t.size() < 2 || t[0] != '-')
      return "unexpected argument '" + t + "' (flags start with --; `deepserve serve --help` lists them)";
    const std::string name = t.substr(0, t.find('='));
    const CLI::Option* o = app.get_option_no_throw(name);
    if (!o) return "unknown flag " + name + " (`deepserve serve --help` lists the flags deepserve takes)";
    if (o->get_type_size() > 0 && t.find('=') == std::string::npos) ++i;  // skip its value
  }
  return "unexpected arguments (`deepserve serve --help` lists the flags deepserve takes)";
}

}  // namespace

ServerArgs parse_server_args(int argc, const char* const* argv) {
  const auto& table = serve_flag_table();
  CLI::App app{"deepserve serve: OpenAI-compatible server for DeepSeek-V3.2 (SGLang's flags)", "deepserve serve"};
  std::vector<std::string> vals(table.size());
  std::vector<bool> sw(table.size(), false);
  std::vector<CLI::Option*> opts(table.size());
  for (size_t i = 0; i < table.size(); ++i) {
    const FlagSpec& f = table[i];
    std::string help = f.help;
    if (f.effect == FlagEffect::NoEffect) help = "accepted without effect: " + help;
    if (f.kind == FlagKind::Switch) {
      opts[i] = app.add_flag_function(f.names, [&sw, i](int64_t) { sw[i] = true; }, help);
    } else {
      vals[i] = f.default_value;
      opts[i] = app.add_option(f.names, vals[i], help);
      if (*f.default_value) opts[i]->default_str(f.default_value);
      opts[i]->type_name(value_type(first_name(f.names)));
      opts[i]->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // `--tp 1 --tp 2`: 2, as argparse
    }
  }
  bool version = false;
  app.add_flag("--version", version, "print the deepserve version and exit");
  // Numerics switch is ours; --help lists everything.
  ServerArgs a;
  try {
    app.parse(argc, const_cast<char**>(argv));
  } catch (const CLI::CallForHelp&) {
    a.help_requested = true;
    a.help = app.help();
    return a;
  } catch (const CLI::ExtrasError&) {
    throw ArgsError(unexpected_argument(app, argc, argv));
  } catch (const CLI::ParseError& e) {
    throw ArgsError(e.what());
  }
  if (version) {
    a.version_requested = true;
    return a;
  }

  std::map<std::string, size_t> idx;
  for (size_t i = 0; i < table.size(); ++i) idx[first_name(table[i].names)] = i;
  auto given = [&](const char* n) { return opts[idx.at(n)]->count() > 0; };
  auto val = [&](const char* n) -> const std::string& { return vals[idx.at(n)]; };
  auto on = [&](const char* n) { return bool(sw[idx.at(n)]); };

  // Accepted-without-effect flags: one line each, when given.
  for (size_t i = 0; i < table.size(); ++i)
    if (table[i].effect == FlagEffect::NoEffect && opts[i]->count() > 0)
      a.notes.push_back(first_name(table[i].names) + " accepted without effect: " + table[i].help);

  // Model.
  if (given("--model-path")) {
    a.model_path = val("--model-path");
    std::error_code ec;
    if (!std::filesystem::is_directory(a.model_path, ec))
      throw ArgsError("--model-path " + a.model_path +
                      ": not a directory; deepserve loads local checkpoints only (download the model "
                      "first), or omit --model-path to serve the embedded tiny model");
  }
  a.tokenizer_path = val("--tokenizer-path");
  a.served_model_name = val("--served-model-name");
  if (given("--context-length")) a.context_length = to_int("--context-length", val("--context-length"), 2, 1 << 30);
  if (given("--chat-template"))
    throw ArgsError("--chat-template " + val("--chat-template") +
                    ": not supported; deepserve renders prompts with DeepSeek's V3.2 encoder (omit --chat-template)");
  a.sampling_defaults = val("--sampling-defaults");
  one_of("--sampling-defaults", a.sampling_defaults, {"model", "openai"}, "supported: model, openai");

  // HTTP and logging.
  a.host = val("--host");
  check_host(a.host);
  a.port = to_int("--port", val("--port"), 0, 65535);
  a.api_key = val("--api-key");
  a.enable_metrics = on("--enable-metrics");
  a.log_level = val("--log-level");
  if (a.log_level == "warn") a.log_level = "warning";
  one_of("--log-level", a.log_level, {"trace", "debug", "info", "warning", "error", "critical"},
         "supported: trace, debug, info, warning, error, critical");
  a.log_requests = on("--log-requests");
  a.log_requests_level = to_int("--log-requests-level", val("--log-requests-level"), 0, 3);
  a.stream_interval = to_int("--stream-interval", val("--stream-interval"), 1, 1 << 20);
  a.allow_auto_truncate = on("--allow-auto-truncate");
  a.max_running_requests = to_int("--max-running-requests", val("--max-running-requests"), 1, 4096);
  a.page_size = to_int("--page-size", val("--page-size"), 1, 4096);
  if (given("--max-total-tokens")) a.max_total_tokens = to_int("--max-total-tokens", val("--max-total-tokens"), 1, 1 << 30);
  a.chunked_prefill_size = to_int("--chunked-prefill-size", val("--chunked-prefill-size"), -1, 1 << 30);
  if (a.chunked_prefill_size == 0) throw ArgsError("--chunked-prefill-size 0: must be positive or -1 (no chunking)");
  a.max_prefill_tokens = to_int("--max-prefill-tokens", val("--max-prefill-tokens"), 1, 1 << 30);
  a.disable_radix_cache = on("--disable-radix-cache");
  if (given("--cuda-graph-max-bs")) a.cuda_graph_max_bs = to_int("--cuda-graph-max-bs", val("--cuda-graph-max-bs"), 1, 4096);
  a.cuda_graph_bs = val("--cuda-graph-bs");
  if (!a.cuda_graph_bs.empty()) {  // checked on every device (a typo should not wait for a GPU run)
    size_t start = 0;
    for (;;) {
      const size_t comma = a.cuda_graph_bs.find(',', start);
      const std::string item = a.cuda_graph_bs.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      char* end = nullptr;
      errno = 0;
      const long x = std::strtol(item.c_str(), &end, 10);
      if (item.empty() || *end != '\0' || errno != 0 || x < 1 || x > 4096)
        throw ArgsError("--cuda-graph-bs " + a.cuda_graph_bs + ": expected batch sizes in [1, 4096] separated by commas, got '" +
                        item + "'");
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  a.disable_cuda_graph = on("--disable-cuda-graph");

  // Parsers.
  a.reasoning_parser = val("--reasoning-parser");
  if (!a.reasoning_parser.empty()) {
    one_of("--reasoning-parser", a.reasoning_parser, {"deepseek-v3"}, "supported: deepseek-v3");
  }
  a.tool_call_parser = val("--tool-call-parser");
  if (!a.tool_call_parser.empty()) {
    one_of("--tool-call-parser", a.tool_call_parser, {"deepseekv32", "deepseekv31"}, "supported: deepseekv32, deepseekv31");
  }
  a.debug_inject_output = on("--debug-inject-output");
  if (a.debug_inject_output) {
    const char* hooks = std::getenv("DEEPSERVE_ALLOW_TEST_HOOKS");
    if (!hooks || std::string(hooks) != "1")
      throw ArgsError("--debug-inject-output: refused; it is a test hook (set DEEPSERVE_ALLOW_TEST_HOOKS=1 in tests only)");
  }

  // Device, numerics, parallelism.
  a.device = val("--device");
  one_of("--device", a.device, {"auto", "cuda", "cpu"}, "supported: cuda, cpu (auto: cuda when a GPU is present)");
  if (a.device == "auto") a.device.clear();
  a.load_format = val("--load-format");
  one_of("--load-format", a.load_format, {"auto", "dummy"}, "supported: auto, dummy");
  if (given("--watchdog-timeout"))
    to_double("--watchdog-timeout", val("--watchdog-timeout"), 0.0, 1e9, "a number of seconds > 0");
  if (given("--mem-fraction-static")) {
    a.mem_fraction_static = to_double("--mem-fraction-static", val("--mem-fraction-static"), 0.0, 1.0, "a number in (0, 1)");
    if (a.device != "cuda")
      a.notes.push_back("--mem-fraction-static applies to --device cuda only (the CPU KV pool follows --max-total-tokens)");
  }
  a.numerics = val("--numerics");
  one_of("--numerics", a.numerics, {"official", "exact"}, "supported: official, exact");
  one_of("--dtype", val("--dtype"), {"auto", "bfloat16", "bf16"},
         "supported: auto, bfloat16 (the arithmetic follows --numerics: official or exact FP32)");
  one_of("--quantization", val("--quantization"), {"", "fp8"},
         "supported: fp8 (the checkpoint's FP8 block-scaled weights are used as stored)");
  for (const char* f : {"--tp", "--dp", "--ep", "--pp"}) {
    int n = to_int(f, val(f), 1, 1 << 16);
    if (n != 1)
      throw ArgsError(std::string(f) + " " + val(f) + ": not supported; deepserve runs on one device (" + f + " 1)");
  }
  if (to_int("--nnodes", val("--nnodes"), 1, 1 << 16) != 1)
    throw ArgsError("--nnodes " + val("--nnodes") + ": not supported; deepserve runs on one node (--nnodes 1)");
  one_of("--disaggregation-mode", val("--disaggregation-mode"), {"null", ""}, "supported: null (no PD disaggregation)");
  one_of("--kv-cache-dtype", val("--kv-cache-dtype"), {"auto", "bf16", "bfloat16", "fp8_e4m3"},
         "supported for DSA models: auto, bf16, bfloat16, fp8_e4m3");
  a.kv_cache_dtype = val("--kv-cache-dtype");
  for (const char* f : {"--cuda-graph-max-bs", "--cuda-graph-bs", "--disable-cuda-graph"})
    if (given(f) && a.device != "cuda")
      a.notes.push_back(std::string(f) + " applies to --device cuda only (no CUDA graphs on the CPU backend)");
  if (given("--kv-cache-dtype") && a.device != "cuda")
    a.notes.push_back("--kv-cache-dtype applies to --device cuda only (the CPU cache format follows --numerics)");
  one_of("--attention-backend", val("--attention-backend"), {"auto", "nsa", "dsa"}, "supported: auto, nsa, dsa");
  if (given("--attention-backend"))
    a.notes.push_back("--attention-backend accepted without effect: the CPU backend has one DSA implementation");
  a.schedule_policy = val("--schedule-policy");
  one_of("--schedule-policy", a.schedule_policy, {"fcfs", "lpm"}, "supported: fcfs, lpm");
  if (given("--speculative-algorithm"))
    throw ArgsError("--speculative-algorithm " + val("--speculative-algorithm") +
                    ": not supported; speculative decoding (MTP/EAGLE) is not implemented yet (omit the flag)");
  return a;
}

}  // namespace ds
