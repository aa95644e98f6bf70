// `deepserve serve` flags: SGLang's launch_server flags from ONE table (D2; spec/serving.md 5).
#pragma once
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ds {

/// A flag value deepserve refuses (message names the flag and what is supported) or a parse error.
struct ArgsError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// What deepserve does with a flag. Honoured: used. NoEffect: accepted, logs one line when given.
/// Checked: some values honoured or accepted, others refused (rule in server_args.cpp).
enum class FlagEffect { Honoured, NoEffect, Checked };

/// Kind of value: a string/number option, or a boolean switch.
enum class FlagKind { Value, Switch };

/// One row of the flag table: CLI11 names ("--tp,--tp-size"), kind, default shown in --help,
/// effect, and help (for NoEffect rows: the reason it has no effect).
struct FlagSpec {
  const char* names;
  FlagKind kind;
  const char* default_value;
  FlagEffect effect;
  const char* help;
};

/// The table (every flag of spec/serving.md section 5 and of the seed's serve commands).
const std::vector<FlagSpec>& serve_flag_table();

/// Parsed and validated serve options. Empty optional/string = not given.
struct ServerArgs {
  std::string model_path;      // empty: the embedded tiny model
  std::string tokenizer_path;  // empty: the model directory
  std::string host = "127.0.0.1";
  int port = 30000;            // 0: any free port (printed once listening)
  std::string served_model_name;  // empty: model path, or "deepseek-v3.2-tiny" for the default
  int context_length = 0;      // 0: config.json max_position_embeddings
  int max_running_requests = 64;
  int page_size = 64;              // KV page size in tokens (scheduler + radix cache granularity)
  long long max_total_tokens = 0;  // KV pool size in tokens; 0: sized by serve from the context length
  int chunked_prefill_size = 8192; // most prompt tokens of one request per step; -1: no chunking
  int max_prefill_tokens = 16384;  // most prefill tokens of all requests per step
  std::string schedule_policy = "fcfs";  // fcfs | lpm
  bool disable_radix_cache = false;
  int cuda_graph_max_bs = 0;       // 0: the CUDA runner's default (by device memory); cuda only
  std::string cuda_graph_bs;       // explicit captured decode sizes ("1,2,4,8"); cuda only
  bool disable_cuda_graph = false; // cuda: every step eager
  std::string log_level = "info";
  std::string api_key;
  bool allow_auto_truncate = false;
  bool log_requests = false;
  int log_requests_level = 2;
  std::string numerics = "official";  // official | exact (D23)
  std::string device;  // cuda | cpu; empty: auto (cuda when the CUDA runner and a GPU exist, else cpu)
  std::string load_format = "auto";    // auto | dummy (cuda only: random weights made on the device)
  double mem_fraction_static = 0.0;    // 0: the CUDA runner's default (0.85); cuda only
  std::string kv_cache_dtype = "auto";  // auto | bf16 | bfloat16 | fp8_e4m3 (cuda: MLA cache record)
  std::string sampling_defaults = "model";  // model (generation_config.json) | openai
  int stream_interval = 1;
  std::string reasoning_parser;
  std::string tool_call_parser;
  bool debug_inject_output = false;  // test hook (needs DEEPSERVE_ALLOW_TEST_HOOKS=1)
  bool enable_metrics = false;
  /// One line per accepted-without-effect flag given on the command line (logged at start).
  std::vector<std::string> notes;
  /// Set when --help was given; `help` holds the text.
  bool help_requested = false;
  /// Set when --version was given (nothing else is parsed or checked).
  bool version_requested = false;
  std::string help;
};

/// Parses argv (argv[0] = "serve") against the table and validates values. Throws ArgsError
/// naming the flag for unknown flags, malformed values and values deepserve cannot honour
/// (tp/dp/ep/pp/nnodes > 1, a --model-path that is not a directory, --speculative-algorithm,
/// --chat-template, --device other than cuda/cpu, ...).
ServerArgs parse_server_args(int argc, const char* const* argv);

}  // namespace ds
