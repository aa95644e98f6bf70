// `deepserve serve`: parse SGLang's flags, load the model (or make the embedded tiny one), start
// the engine thread and the HTTP server, stop gracefully on SIGINT/SIGTERM.
#include <pthread.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "common/version.h"
#include "engine/engine.h"
#include "model/config.h"
#include "model/deepseek_v32.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/serve_device.h"
#include "server/server_args.h"
#include "tools/commands.h"
#include "tools/make_model.h"

namespace ds {

namespace fs = std::filesystem;

namespace {

constexpr const char* kDefaultModelName = "deepseek-v3.2-tiny";
constexpr const char* kCompleteMarker = ".deepserve-complete";

/// Cache root (docs/decisions.md P5): $DEEPSERVE_CACHE_DIR, else $XDG_CACHE_HOME/deepserve, else
/// ~/.cache/deepserve.
fs::path cache_root() {
  if (const char* d = std::getenv("DEEPSERVE_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "deepserve";
  if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".cache" / "deepserve";
  throw std::runtime_error("no cache directory: set DEEPSERVE_CACHE_DIR (or HOME), or pass --model-path");
}

/// The embedded default: `tiny` made once into <cache>/tiny-v1 (written to a temporary sibling and
/// renamed, so a half-written directory is never served).
std::string ensure_default_model() {
  fs::path dir = cache_root() / "tiny-v1";
  std::error_code ec;
  if (fs::exists(dir / kCompleteMarker, ec)) return dir.string();
  fs::create_directories(dir.parent_path(), ec);
  if (ec) {
    const char* env = std::getenv("DEEPSERVE_CACHE_DIR");
    const std::string via = env && *env ? "DEEPSERVE_CACHE_DIR" : std::getenv("XDG_CACHE_HOME") ? "XDG_CACHE_HOME" : "HOME";
    throw std::runtime_error("cannot create the cache directory " + dir.parent_path().string() + " (from " + via +
                             "): " + ec.message() + "; set DEEPSERVE_CACHE_DIR to a writable directory or pass --model-path");
  }
  fs::path tmp = dir.parent_path() / ("tiny-v1.tmp-" + std::to_string(::getpid()));
  spdlog::info("making the embedded tiny model in {} (once)", dir.string());
  fs::remove_all(tmp);
  make_model("tiny", tmp.string());
  std::ofstream(tmp / kCompleteMarker) << "tiny\n";
  if (fs::exists(dir / kCompleteMarker)) {  // another process finished first
    fs::remove_all(tmp, ec);
    return dir.string();
  }
  fs::remove_all(dir, ec);  // an incomplete earlier attempt
  fs::rename(tmp, dir, ec);
  if (ec && !fs::exists(dir / kCompleteMarker))
    throw std::runtime_error("cannot move " + tmp.string() + " to " + dir.string() + ": " + ec.message());
  fs::remove_all(tmp, ec);
  return dir.string();
}

/// --sampling-defaults model: temperature/top_p/top_k from generation_config.json when present.
SamplingParams sampling_defaults(const ServerArgs& a, const std::string& dir, std::vector<int32_t>& eos) {
  SamplingParams p;
  fs::path gc = fs::path(dir) / "generation_config.json";
  if (!fs::exists(gc)) return p;
  nlohmann::json j;
  try {
    std::ifstream in(gc);
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw std::runtime_error(gc.string() + ": invalid JSON: " + e.what());
  }
  if (j.contains("eos_token_id")) {
    const auto& e = j["eos_token_id"];
    if (e.is_number_integer()) eos.push_back(e.get<int32_t>());
    if (e.is_array())
      for (const auto& v : e)
        if (v.is_number_integer()) eos.push_back(v.get<int32_t>());
  }
  if (a.sampling_defaults != "model") return p;
  if (j.contains("temperature") && j["temperature"].is_number()) p.temperature = j["temperature"].get<float>();
  if (j.contains("top_p") && j["top_p"].is_number()) p.top_p = j["top_p"].get<float>();
  if (j.contains("top_k") && j["top_k"].is_number_integer()) p.top_k = j["top_k"].get<int>();
  return p;
}

/// D7: the V3.1-format encoder when --tool-call-parser deepseekv31, or when the model directory's
/// tokenizer_config.json has a chat_template and --tool-call-parser is not deepseekv32; else DSV3.2.
PromptFormat prompt_format(const ServerArgs& a, const std::string& model_dir) {
  if (a.tool_call_parser == "deepseekv31") return PromptFormat::V31;
  if (a.tool_call_parser == "deepseekv32") return PromptFormat::Dsv32;
  fs::path tc = fs::path(model_dir) / "tokenizer_config.json";
  if (!fs::exists(tc)) return PromptFormat::Dsv32;
  try {
    std::ifstream in(tc);
    auto j = nlohmann::json::parse(in);
    if (j.contains("chat_template") && !j["chat_template"].is_null()) return PromptFormat::V31;
  } catch (const std::exception& e) {
    throw std::runtime_error(tc.string() + ": invalid JSON: " + e.what());
  }
  return PromptFormat::Dsv32;
}

int run(const ServerArgs& args) {
  std::string model_dir = args.model_path.empty() ? ensure_default_model() : args.model_path;
  std::string served = !args.served_model_name.empty() ? args.served_model_name
                       : args.model_path.empty()       ? std::string(kDefaultModelName)
                                                       : args.model_path;
  std::string tok_path = args.tokenizer_path.empty() ? model_dir : args.tokenizer_path;
  std::error_code tok_ec;
  if (!args.tokenizer_path.empty() && !fs::exists(args.tokenizer_path, tok_ec))
    throw std::runtime_error("--tokenizer-path " + args.tokenizer_path +
                             ": no such file or directory (a tokenizer.json or a directory holding one)");
  auto tokenizer = fs::is_directory(tok_path) ? Tokenizer::for_model_dir(tok_path) : Tokenizer::load(tok_path);

  const std::string device = resolve_device(args);
  const ModelConfig pre_cfg = ModelConfig::load(model_dir);
  const int want_ctx = args.context_length > 0 ? std::min(args.context_length, pre_cfg.max_position_embeddings)
                                               : pre_cfg.max_position_embeddings;
  ServeModel sm = load_serve_model(args, device, model_dir, want_ctx);
  const ModelConfig& cfg = sm.config;
  int ctx_len = cfg.max_position_embeddings;
  if (args.context_length > 0) {
    if (args.context_length > cfg.max_position_embeddings)
      throw std::runtime_error("--context-length " + std::to_string(args.context_length) +
                               " exceeds the model's max_position_embeddings " + std::to_string(cfg.max_position_embeddings));
    ctx_len = args.context_length;
  }

  ServeContext ctx;
  ctx.tokenizer = tokenizer;
  ctx.served_model_name = served;
  ctx.context_length = ctx_len;
  ctx.eos_ids = {cfg.eos_token_id};
  ctx.defaults = sampling_defaults(args, model_dir, ctx.eos_ids);
  ctx.allow_auto_truncate = args.allow_auto_truncate;
  ctx.log_requests = args.log_requests;
  ctx.log_requests_level = args.log_requests_level;
  ctx.stream_interval = args.stream_interval;
  ctx.max_n = args.max_running_requests;
  ctx.prompt_format = prompt_format(args, model_dir);
  ctx.reasoning_parser = args.reasoning_parser;
  ctx.tool_call_parser = args.tool_call_parser;
  ctx.debug_inject = args.debug_inject_output;
  // Always collected (/get_server_info reports gen_throughput); GET /metrics only with --enable-metrics.
  auto metrics = std::make_unique<ServerMetrics>(served);
  ctx.metrics = metrics.get();
  spdlog::info("chat prompts: {} encoder{}", ctx.prompt_format == PromptFormat::V31 ? "V3.1-format" : "DeepSeek-V3.2",
               ctx.prompt_format == PromptFormat::V31 && args.tool_call_parser.empty()
                   ? " (tokenizer_config.json has a chat_template; D7)" : "");
  if (ctx.debug_inject) spdlog::warn("--debug-inject-output: TEST HOOK enabled (debug_model_text replaces sampling)");

  EngineOptions eo;
  eo.context_length = ctx_len;
  eo.max_running_requests = args.max_running_requests;
  eo.page_size = args.page_size;
  eo.chunked_prefill_size = args.chunked_prefill_size;
  eo.max_prefill_tokens = args.max_prefill_tokens;
  eo.policy = parse_schedule_policy(args.schedule_policy);
  eo.disable_radix_cache = args.disable_radix_cache;
  if (sm.kv_tokens > 0) {
    eo.max_total_tokens = sm.kv_tokens;  // device pool: sized by the backend from --mem-fraction-static
  } else {
    // CPU KV pool: --max-total-tokens, else 4 contexts capped at 1 GiB of KV (and >= one context).
    const int64_t per_token = int64_t(cfg.num_hidden_layers) *
                              (cfg.kv_lora_rank + cfg.qk_rope_head_dim + cfg.index_head_dim + 1) * 4;
    const int64_t cap = std::max<int64_t>(int64_t(ctx_len) + args.page_size, (int64_t(1) << 30) / per_token);
    eo.max_total_tokens = args.max_total_tokens > 0 ? int64_t(args.max_total_tokens) : std::min<int64_t>(4 * int64_t(ctx_len), cap);
    spdlog::info("KV pool: {} tokens in pages of {} ({} MiB), radix cache {}, schedule policy {}", eo.max_total_tokens,
                 eo.page_size, eo.max_total_tokens * per_token >> 20, eo.disable_radix_cache ? "off" : "on", args.schedule_policy);
  }
  Engine engine(std::move(sm.executor), eo);
  ctx.engine = &engine;
  engine.start();

  // /get_server_info and /get_model_info report what is served: the model directory (also the
  // embedded default model's), the tokenizer path and the resolved device ("cpu" / "cuda").
  ServerArgs shown = args;
  shown.model_path = model_dir;
  shown.tokenizer_path = tok_path;
  shown.device = device;
  HttpServer http(ctx, shown);
  int port = http.bind();

  // Signals are blocked in every thread (set in serve_command); this one waits for them.
  std::thread sig_thread([&] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);  // internal wake-up when the server stops by itself
    int sig = 0;
    sigwait(&set, &sig);
    if (sig != SIGUSR1) spdlog::info("signal {} received: stopping", sig);
    engine.stop();  // in-flight requests end with finish_reason "abort"
    http.stop();
  });

  // An IPv6 literal is bracketed in a URL (RFC 3986 3.2.2): http://[::1]:30000.
  const std::string url_host = args.host.find(':') != std::string::npos ? "[" + args.host + "]" : args.host;
  std::printf("deepserve: serving %s on http://%s:%d\n", served.c_str(), url_host.c_str(), port);
  std::fflush(stdout);
  spdlog::info("listening on http://{}:{} (model {}, context length {})", url_host, port, served, ctx_len);
  http.listen();
  pthread_kill(sig_thread.native_handle(), SIGUSR1);
  sig_thread.join();
  engine.stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int serve_command(int argc, char** argv) {
  ServerArgs args;
  try {
    args = parse_server_args(argc, argv);
  } catch (const ArgsError& e) {
    std::fprintf(stderr, "deepserve serve: %s\n", e.what());
    return 2;
  }
  if (args.version_requested) {
    std::printf("deepserve %s\n", kVersion);
    return 0;
  }
  if (args.help_requested) {
    std::fputs(args.help.c_str(), stdout);
    return 0;
  }
  // Logs go to stderr; stdout carries only the "serving ... on http://host:port" line.
  if (!spdlog::get("deepserve")) spdlog::set_default_logger(spdlog::stderr_color_mt("deepserve"));
  spdlog::set_level(spdlog::level::from_str(args.log_level == "warning" ? "warn" : args.log_level));
  for (const auto& n : args.notes) spdlog::info("{}", n);

  // Block SIGINT/SIGTERM/SIGUSR1 before any thread starts; ignore SIGPIPE (closed client sockets).
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  try {
    return run(args);
  } catch (const ArgsError& e) {  // a flag refused once the machine is known (e.g. --device cuda without a GPU)
    std::fprintf(stderr, "deepserve serve: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {  // one line on stderr (the log goes there too)
    std::fprintf(stderr, "deepserve serve: %s\n", e.what());
    return 1;
  }
}

}  // namespace ds
