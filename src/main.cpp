// deepserve: DeepSeek-V3.2 inference server. `deepserve <subcommand> [flags]`.
#include <cstdio>
#include <cstring>
#include <string>

#include "common/version.h"
#include "tools/commands.h"

namespace {
void usage(FILE* out) {
  std::fprintf(out,
               "usage: deepserve <command> [flags]\n\n"
               "commands:\n"
               "  serve        OpenAI-compatible server (SGLang flags; --help for the list)\n"
               "  make-model   write a deterministic test checkpoint (--preset tiny|tiny-a|real-geometry)\n"
               "  bench        load generator compatible with sglang.bench_serving (docs/bench.md)\n"
               "  eval         accuracy runs: eval gsm8k | eval mmlu (docs/bench.md)\n"
               "  --version    print the version\n");
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  std::string cmd = argv[1];
  if (cmd == "serve") return ds::serve_command(argc - 1, argv + 1);
  if (cmd == "make-model") return ds::make_model_command(argc - 1, argv + 1);
  if (cmd == "bench") return ds::bench_command(argc - 1, argv + 1);
  if (cmd == "eval") return ds::eval_command(argc - 1, argv + 1);
  if (cmd == "--version" || cmd == "-V" || cmd == "version") {
    std::printf("deepserve %s\n", ds::kVersion);
    return 0;
  }
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    usage(stdout);
    return 0;
  }
  std::fprintf(stderr, "deepserve: unknown command '%s'\n\n", cmd.c_str());
  usage(stderr);
  return 2;
}
