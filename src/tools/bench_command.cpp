// `deepserve bench`: SGLang bench_serving-compatible load generator (spec/serving.md 6.1, D29;
// docs/bench.md).
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <exception>
#include <fstream>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "text/tokenizer.h"
#include "tools/cli_checks.h"
#include "tools/bench_runner.h"
#include "tools/commands.h"
#include "tools/http_client.h"

namespace ds {
namespace {

using nlohmann::json;
using namespace ds::bench;

struct BenchArgs {
  std::string backend = "sglang", host = "127.0.0.1", base_url, model, tokenizer;
  int port = 0;
  std::string dataset_name = "random", dataset_path;
  int random_input_len = 1024, random_output_len = 1024, num_prompts = 1000, sharegpt_output_len = 0;
  double random_range_ratio = 0.0;
  int max_concurrency = 0, warmup_requests = 1;
  std::string request_rate = "inf";
  uint64_t seed = 1;
  bool disable_stream = false, disable_ignore_eos = false, disable_tqdm = false;
  std::string output_file, extra_request_body;
};

double parse_rate(const std::string& s) {
  if (s == "inf" || s == "Inf" || s == "INF") return std::numeric_limits<double>::infinity();
  size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(s, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  if (pos != s.size() || !(v > 0)) throw std::invalid_argument(fmt::format("--request-rate: '{}' is not a positive number or inf", s));
  return v;
}

std::optional<double> fetch_accept_length(const std::string& base) {
  auto r = http::get(base + "/get_server_info", http::auth_headers(), 10);
  if (r.status != 200) return std::nullopt;
  json j = json::parse(r.body, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  if (j.contains("decode") && j["decode"].is_array() && !j["decode"].empty()) j = j["decode"][0];
  if (!j.contains("internal_states") || !j["internal_states"].is_array() || j["internal_states"].empty()) return std::nullopt;
  const json& s = j["internal_states"][0];
  if (s.contains("avg_spec_accept_length") && s["avg_spec_accept_length"].is_number())
    return s["avg_spec_accept_length"].get<double>();
  return std::nullopt;
}

std::string detect_model(const std::string& base) {
  auto r = http::get(base + "/v1/models", http::auth_headers(), 30);
  if (r.status != 200) throw std::runtime_error(fmt::format("--model not given and GET {}/v1/models failed: {}", base,
                                                            http::describe_failure(r)));
  json j = json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("data") || !j["data"].is_array() || j["data"].empty() || !j["data"][0].contains("id"))
    throw std::runtime_error(fmt::format("--model not given and {}/v1/models lists no model", base));
  return j["data"][0]["id"].get<std::string>();
}

int run(const BenchArgs& a) {
  const Api api = backend_api(a.backend);
  const int port = a.port ? a.port : default_port(a.backend);
  std::string base = a.base_url.empty() ? fmt::format("http://{}:{}", a.host, port) : a.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();

  PayloadOptions opt;
  opt.stream = !a.disable_stream;
  opt.ignore_eos = !a.disable_ignore_eos;
  if (!a.extra_request_body.empty()) {
    opt.extra = json::parse(a.extra_request_body, nullptr, false);
    if (!opt.extra.is_object()) throw std::invalid_argument("--extra-request-body: not a JSON object");
  }
  opt.model = a.model.empty() ? detect_model(base) : a.model;

  auto tok = Tokenizer::for_model_dir(a.tokenizer);
  RandomSpec spec{a.random_input_len, a.random_output_len, a.random_range_ratio, a.num_prompts, a.seed};
  std::vector<DatasetRow> rows;
  std::string dataset_note;
  if (a.dataset_name == "sharegpt") {
    rows = sample_sharegpt(*tok, a.dataset_path, a.num_prompts, a.sharegpt_output_len, a.seed);
    dataset_note = "sharegpt (" + a.dataset_path + ")";
  } else if (a.dataset_name == "random" && !a.dataset_path.empty()) {
    rows = sample_random_sharegpt(*tok, spec, a.dataset_path);
    dataset_note = "random (ShareGPT text from " + a.dataset_path + ")";
  } else if (a.dataset_name == "random" || a.dataset_name == "random-ids") {
    rows = sample_random_ids(*tok, spec);
    dataset_note = a.dataset_name == "random" ? "random (random token ids: no --dataset-path, D29)" : "random-ids";
  } else {
    throw std::invalid_argument(fmt::format("--dataset-name: '{}' is not random, random-ids or sharegpt", a.dataset_name));
  }
  if (rows.empty()) throw std::invalid_argument("--num-prompts: no prompts to send");
  long long in_tok = 0, out_tok = 0;
  for (const auto& r : rows) in_tok += r.prompt_len, out_tok += r.output_len;
  std::printf("Dataset: %s\n#Input tokens: %lld\n#Output tokens: %lld\n", dataset_note.c_str(), in_tok, out_tok);

  RunConfig cfg;
  cfg.url = base + api_path(api);
  cfg.api = api;
  cfg.payload = opt;
  cfg.request_rate = parse_rate(a.request_rate);
  if (a.max_concurrency > 0) cfg.max_concurrency = a.max_concurrency;
  cfg.seed = a.seed;
  cfg.progress = !a.disable_tqdm;

  std::printf("Starting warmup with %d sequences...\n", a.warmup_requests);
  std::fflush(stdout);
  if (a.warmup_requests > 0) {
    DatasetRow w = rows[0];
    w.output_len = std::min(w.output_len, 32);
    std::vector<DatasetRow> warm(static_cast<size_t>(a.warmup_requests), w);
    RunConfig wc = cfg;
    wc.request_rate = std::numeric_limits<double>::infinity();
    wc.max_concurrency.reset();
    wc.progress = false;
    double d = 0;
    auto wr = run_benchmark(warm, wc, d);
    bool ok = false;
    for (const auto& r : wr) ok = ok || r.success;
    if (!ok)
      throw std::runtime_error("Warmup failed - Please make sure benchmark arguments are correctly specified. Error: " +
                               wr[0].error);
  }
  std::printf("Warmup completed with %d sequences. Starting main benchmark run...\n", a.warmup_requests);
  std::fflush(stdout);

  double duration = 0;
  auto results = run_benchmark(rows, cfg, duration);
  std::optional<double> accept;
  if (a.backend.find("sglang") != std::string::npos) accept = fetch_accept_length(base);
  auto m = calculate_metrics(results, duration, [&](const std::string& t) { return static_cast<int>(tok->encode(t).size()); },
                             accept, a.backend);
  ReportHeader h{a.backend, cfg.request_rate, cfg.max_concurrency};
  std::printf("\n%s", render_report(h, m).c_str());
  for (const auto& r : results)
    if (!r.success) {
      std::fprintf(stderr, "deepserve bench: %d of %zu requests failed; first error: %s\n", m.failed, results.size(),
                   r.error.c_str());
      break;
    }

  std::string out = a.output_file;
  if (out.empty()) out = fmt::format("{}_{}_{}_{}.jsonl", a.backend, a.num_prompts, a.random_input_len, a.random_output_len);
  json rec = metrics_to_json(m);
  rec["backend"] = a.backend;
  rec["dataset_name"] = a.dataset_name;
  rec["dataset"] = dataset_note;
  rec["request_rate"] = std::isinf(cfg.request_rate) ? json("inf") : json(cfg.request_rate);
  rec["max_concurrency"] = cfg.max_concurrency ? json(*cfg.max_concurrency) : json(nullptr);
  rec["random_input_len"] = a.random_input_len;
  rec["random_output_len"] = a.random_output_len;
  rec["random_range_ratio"] = a.random_range_ratio;
  rec["num_prompts"] = a.num_prompts;
  rec["seed"] = a.seed;
  rec["model"] = opt.model;
  rec["base_url"] = base;
  rec["stream"] = opt.stream;
  rec["ignore_eos"] = opt.ignore_eos;
  json d = {{"input_lens", json::array()}, {"output_lens", json::array()}, {"server_prompt_tokens", json::array()},
            {"start_times", json::array()}, {"ttfts", json::array()}, {"latencies", json::array()},
            {"itls", json::array()}, {"generated_texts", json::array()}, {"errors", json::array()}};
  const double t0 = results.empty() ? 0 : results[0].start_time;
  for (const auto& r : results) {
    d["input_lens"].push_back(r.prompt_len);
    d["output_lens"].push_back(r.success ? r.output_len : 0);
    d["server_prompt_tokens"].push_back(r.server_prompt_tokens ? json(*r.server_prompt_tokens) : json(nullptr));
    d["start_times"].push_back(r.start_time - t0);
    d["ttfts"].push_back(r.ttft);
    d["latencies"].push_back(r.latency);
    d["itls"].push_back(r.itl);
    d["generated_texts"].push_back(r.generated_text);
    d["errors"].push_back(r.error);
  }
  rec.update(d);
  std::ofstream f(out, std::ios::app);
  if (!f) throw std::runtime_error(fmt::format("--output-file: cannot open '{}'", out));
  f << rec.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  return m.completed > 0 ? 0 : 1;
}

}  // namespace

int bench_command(int argc, char** argv) {
  CLI::App app{"Benchmark an OpenAI/SGLang-compatible server like sglang.bench_serving (docs/bench.md)", "deepserve bench"};
  BenchArgs a;
  app.add_option("--backend", a.backend, "sglang | sglang-native | sglang-oai | sglang-oai-chat | vllm | vllm-chat | openai | openai-chat")
      ->capture_default_str();
  app.add_option("--host", a.host)->capture_default_str();
  app.add_option("--port", a.port, "default: 30000 for sglang*, 8000 otherwise")->check(cli::in_range(0, 65535));
  app.add_option("--base-url", a.base_url, "e.g. http://127.0.0.1:30000 (overrides --host/--port)");
  app.add_option("--model", a.model, "model name sent in requests (default: first id of GET /v1/models)");
  app.add_option("--tokenizer", a.tokenizer, "model directory whose tokenizer.json counts tokens (default: built-in DeepSeek-V3.2)");
  app.add_option("--dataset-name", a.dataset_name, "random | random-ids | sharegpt")->capture_default_str();
  app.add_option("--dataset-path", a.dataset_path, "ShareGPT JSON file");
  app.add_option("--random-input-len", a.random_input_len)->capture_default_str()->check(cli::at_least(1));
  app.add_option("--random-output-len", a.random_output_len)->capture_default_str()->check(cli::at_least(1));
  app.add_option("--random-range-ratio", a.random_range_ratio)->capture_default_str()->check(cli::in_range(0, 1, false));
  app.add_option("--sharegpt-output-len", a.sharegpt_output_len, "fixed output length for sharegpt (0 = the reply's length)")
      ->check(cli::at_least(0));
  app.add_option("--num-prompts", a.num_prompts)->capture_default_str()->check(cli::at_least(1));
  app.add_option("--max-concurrency", a.max_concurrency, "in-flight request cap (default: not set)")->check(cli::at_least(1));
  app.add_option("--request-rate", a.request_rate, "requests/s, Poisson arrivals; inf = all at once")->capture_default_str();
  app.add_option("--seed", a.seed)->capture_default_str();
  app.add_option("--warmup-requests", a.warmup_requests)->capture_default_str()->check(cli::at_least(0));
  app.add_flag("--disable-stream", a.disable_stream);
  app.add_flag("--disable-ignore-eos", a.disable_ignore_eos);
  app.add_flag("--disable-tqdm", a.disable_tqdm, "no progress bar");
  app.add_option("--output-file", a.output_file, "JSONL file to append the result to");
  app.add_option("--extra-request-body", a.extra_request_body, "JSON object merged into every request");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  try {
    return run(a);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "deepserve bench: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deepserve bench: %s\n", e.what());
    return 1;
  }
}

}  // namespace ds
