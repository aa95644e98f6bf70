// `deepserve eval gsm8k|mmlu`: SGLang's few_shot_gsm8k and benchmark/mmlu/bench_sglang.py protocols
// against any SGLang/OpenAI-compatible server (spec/serving.md 6.2, 6.3; docs/bench.md).
#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "text/tokenizer.h"
#include "tools/cli_checks.h"
#include "tools/bench_backends.h"
#include "tools/commands.h"
#include "tools/eval_gsm8k.h"
#include "tools/eval_mmlu.h"
#include "tools/http_client.h"

namespace ds {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

/// Where and how prompts are sent. Raw text completion: native /generate (the protocol's path),
/// /v1/completions, or /v1/chat/completions with the prompt as one user message.
struct Target {
  std::string base;
  bench::Api api = bench::Api::Generate;
  std::string model = "default";
};

struct Generation {
  bool ok = false;
  std::string text, error;
  int completion_tokens = 0;
};

Generation generate(const Target& t, const std::string& prompt, int max_tokens, const std::vector<std::string>& stop) {
  json p;
  if (t.api == bench::Api::Generate) {
    p = {{"text", prompt}, {"sampling_params", {{"temperature", 0.0}, {"max_new_tokens", max_tokens}}}};
    if (!stop.empty()) p["sampling_params"]["stop"] = stop;
  } else {
    p = {{"model", t.model}, {"temperature", 0.0}, {"max_tokens", max_tokens}};
    if (t.api == bench::Api::Completions) p["prompt"] = prompt;
    else p["messages"] = json::array({{{"role", "user"}, {"content", prompt}}});
    if (!stop.empty()) p["stop"] = stop;
  }
  Generation g;
  auto r = http::post_json(t.base + bench::api_path(t.api), p.dump(), http::auth_headers(), nullptr, 3600);
  if (r.status != 200) {
    g.error = r.status ? std::string(bench::api_path(t.api)) + ": " + http::describe_failure(r) : r.error;
    if (r.status == 400 && r.body.find("stop") != std::string::npos && !stop.empty())
      g.error += " -- the server refused the protocol's stop strings; the eval needs a server that supports `stop`";
    return g;
  }
  bench::RequestResult rr;
  rr.requested_output_len = max_tokens;
  bench::parse_nonstream(t.api, r.body, 0.0, rr);
  g.ok = rr.success;
  g.error = rr.error;
  g.text = rr.generated_text;
  g.completion_tokens = rr.output_len;
  return g;
}

/// Runs `n` jobs on `parallel` threads; job i writes its own slot.
void parallel_for(int n, int parallel, const std::function<void(int)>& job) {
  std::atomic<int> next{0};
  std::vector<std::thread> pool;
  for (int w = 0; w < std::max(1, std::min(parallel, n)); ++w)
    pool.emplace_back([&] {
      for (int i; (i = next.fetch_add(1)) < n;) job(i);
    });
  for (auto& th : pool) th.join();
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int first_failure(const std::vector<Generation>& gens) {
  for (size_t i = 0; i < gens.size(); ++i)
    if (!gens[i].ok) return static_cast<int>(i);
  return -1;
}

/// ../shared/data/gsm8k/test.jsonl relative to the repository: tried from the working directory, then
/// from each ancestor of the binary (build/<dir>/deepserve); else SGLang's default name test.jsonl.
std::string default_gsm8k_path() {
  const fs::path rel = fs::path("shared") / "data" / "gsm8k" / "test.jsonl";
  std::error_code ec;
  if (fs::exists(fs::path("..") / rel, ec)) return (fs::path("..") / rel).string();
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  for (fs::path p = exe.parent_path(); !ec && !p.empty() && p != p.root_path(); p = p.parent_path())
    if (fs::exists(p / rel, ec)) return (p / rel).string();
  return "test.jsonl";
}

int run_gsm8k(const Target& t, std::string data_path, int num_questions, int num_shots, int max_new_tokens, int parallel) {
  if (data_path.empty()) data_path = default_gsm8k_path();
  auto items = eval::load_gsm8k(data_path);
  const std::string prefix = eval::gsm8k_few_shot_prefix(items, num_shots);
  const int n = std::min<int>(num_questions, static_cast<int>(items.size()));
  std::vector<std::optional<std::string>> labels, preds(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) labels.push_back(eval::gsm8k_answer_value(items[static_cast<size_t>(i)].answer));
  std::vector<Generation> gens(static_cast<size_t>(n));
  const auto t0 = std::chrono::steady_clock::now();
  parallel_for(n, parallel, [&](int i) {
    gens[static_cast<size_t>(i)] =
        generate(t, prefix + eval::gsm8k_example(items[static_cast<size_t>(i)], false), max_new_tokens, eval::gsm8k_stop_strings());
  });
  const double latency = seconds_since(t0);
  if (int f = first_failure(gens); f >= 0) {
    std::fprintf(stderr, "deepserve eval gsm8k: request %d failed: %s\n", f, gens[static_cast<size_t>(f)].error.c_str());
    return 1;
  }
  long long out_tokens = 0;
  for (int i = 0; i < n; ++i) {
    preds[static_cast<size_t>(i)] = eval::gsm8k_answer_value(gens[static_cast<size_t>(i)].text);
    out_tokens += gens[static_cast<size_t>(i)].completion_tokens;
  }
  const auto s = eval::gsm8k_score(preds, labels);
  std::printf("Accuracy: %.3f\nInvalid: %.3f\nLatency: %.3f s\nOutput throughput: %.3f token/s\n", s.accuracy, s.invalid,
              latency, static_cast<double>(out_tokens) / latency);
  return 0;
}

int run_mmlu(const Target& t, const std::string& data_dir, int nsub, int ntrain, int parallel, const std::string& tokenizer_dir,
             const std::string& result_file) {
  auto tok = Tokenizer::for_model_dir(tokenizer_dir);
  auto count = [&](const std::string& s) { return static_cast<int>(tok->encode(s).size()); };
  const auto subjects = eval::mmlu_subjects(data_dir, nsub);
  struct Q {
    size_t subject;
    std::string prompt, label;
  };
  std::vector<Q> qs;
  for (size_t si = 0; si < subjects.size(); ++si) {
    const auto dev = eval::load_mmlu_csv((fs::path(data_dir) / "dev" / (subjects[si] + "_dev.csv")).string());
    const auto test = eval::load_mmlu_csv((fs::path(data_dir) / "test" / (subjects[si] + "_test.csv")).string());
    int k = 0;
    const std::string prefix = eval::mmlu_few_shot_prefix(dev, subjects[si], ntrain, count, 1536, k);
    for (const auto& row : test) qs.push_back({si, prefix + eval::mmlu_example(row, false), row.answer});
  }
  std::vector<Generation> gens(qs.size());
  const auto t0 = std::chrono::steady_clock::now();
  parallel_for(static_cast<int>(qs.size()), parallel,
               [&](int i) { gens[static_cast<size_t>(i)] = generate(t, qs[static_cast<size_t>(i)].prompt, 1, {}); });
  const double latency = seconds_since(t0);
  if (int f = first_failure(gens); f >= 0) {
    std::fprintf(stderr, "deepserve eval mmlu: request %d failed: %s\n", f, gens[static_cast<size_t>(f)].error.c_str());
    return 1;
  }
  std::vector<int> n(subjects.size(), 0), ok(subjects.size(), 0);
  int total_ok = 0;
  for (size_t i = 0; i < qs.size(); ++i) {
    const bool hit = eval::mmlu_prediction(gens[i].text) == qs[i].label;
    ++n[qs[i].subject];
    ok[qs[i].subject] += hit;
    total_ok += hit;
  }
  for (size_t si = 0; si < subjects.size(); ++si)
    std::printf("subject: %s, #q:%d, acc: %.3f\n", subjects[si].c_str(), n[si], n[si] ? double(ok[si]) / n[si] : 0.0);
  const double avg = qs.empty() ? 0.0 : double(total_ok) / double(qs.size());
  std::printf("Total latency: %.3f\nAverage accuracy: %.3f\n", latency, avg);
  if (!result_file.empty()) {
    std::ofstream f(result_file, std::ios::app);
    f << json{{"task", "mmlu"}, {"backend", bench::api_path(t.api)}, {"num_gpus", 1}, {"latency", latency},
              {"accuracy", avg}, {"num_requests", qs.size()}, {"other", {{"nsub", nsub}, {"parallel", parallel}}}}
             .dump()
      << "\n";
  }
  return 0;
}

}  // namespace

int eval_command(int argc, char** argv) {
  CLI::App app{"Accuracy evals with SGLang's protocols (docs/bench.md)", "deepserve eval"};
  app.require_subcommand(1);
  std::string host = "http://127.0.0.1", base_url, backend = "sglang", model = "default", tokenizer;
  int port = 30000, parallel = 128;
  auto common = [&](CLI::App* s) {
    s->add_option("--host", host, "scheme://host (SGLang's convention)")->capture_default_str();
    s->add_option("--port", port)->capture_default_str()->check(cli::in_range(1, 65535));
    s->add_option("--base-url", base_url, "overrides --host/--port");
    s->add_option("--backend", backend, "sglang (/generate) | sglang-oai (/v1/completions) | sglang-oai-chat (/v1/chat/completions)")
        ->capture_default_str();
    s->add_option("--model", model, "model field for the OpenAI routes")->capture_default_str();
    s->add_option("--parallel", parallel, "concurrent requests")->capture_default_str()->check(cli::at_least(1));
  };
  auto* g = app.add_subcommand("gsm8k", "few-shot GSM8K (sglang.test.few_shot_gsm8k)");
  int num_questions = 200, num_shots = 5, max_new_tokens = 512;
  std::string data_path;
  common(g);
  g->add_option("--num-questions", num_questions)->capture_default_str()->check(cli::at_least(1));
  g->add_option("--num-shots", num_shots)->capture_default_str()->check(cli::at_least(0));
  g->add_option("--max-new-tokens", max_new_tokens)->capture_default_str()->check(cli::at_least(1));
  g->add_option("--data-path", data_path, "GSM8K test.jsonl (default: ../shared/data/gsm8k/test.jsonl beside the repo)");
  auto* m = app.add_subcommand("mmlu", "5-shot MMLU (benchmark/mmlu/bench_sglang.py)");
  int nsub = 60, ntrain = 5;
  std::string data_dir = "data", result_file;
  common(m);
  m->add_option("--nsub", nsub)->capture_default_str()->check(cli::at_least(1));
  m->add_option("--ntrain,-k", ntrain)->capture_default_str()->check(cli::at_least(0));
  m->add_option("--data-dir,--data_dir", data_dir, "directory with dev/ and test/ CSVs")->capture_default_str();
  m->add_option("--tokenizer", tokenizer, "model directory for the 1536-token shot limit (default: built-in)");
  m->add_option("--result-file,--result_file", result_file, "JSONL file to append the result to");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  try {
    Target t;
    t.api = bench::backend_api(backend);
    t.model = model;
    t.base = base_url.empty() ? fmt::format("{}:{}", host, port) : base_url;
    if (t.base.find("://") == std::string::npos) t.base = "http://" + t.base;
    while (!t.base.empty() && t.base.back() == '/') t.base.pop_back();
    if (g->parsed()) return run_gsm8k(t, data_path, num_questions, num_shots, max_new_tokens, parallel);
    return run_mmlu(t, data_dir, nsub, ntrain, parallel, tokenizer, result_file);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "deepserve eval: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deepserve eval: %s\n", e.what());
    return 1;
  }
}

}  // namespace ds
