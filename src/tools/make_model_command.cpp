// `deepserve make-model --preset P --output DIR [--index-topk N]` (D25; docs/make_model.md).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "tools/cli_checks.h"
#include "tools/commands.h"
#include "tools/make_model.h"

namespace ds {

int make_model_command(int argc, char** argv) {
  CLI::App app{"Write a deterministic DeepSeek-V3.2 test checkpoint (docs/make_model.md)", "deepserve make-model"};
  std::string preset, output;
  int index_topk = 0;
  app.add_option("--preset", preset, "tiny | tiny-a | real-geometry")
      ->required()
      ->check(CLI::IsMember(make_model_presets()));
  app.add_option("--output", output, "output directory (created; replaced only if it holds a make-model checkpoint)")
      ->required();
  app.add_option("--index-topk", index_topk, "override the preset's index_topk (e.g. 2048 on the GPU machine)")
      ->check(cli::at_least(1));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  try {
    make_model(preset, output, index_topk);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deepserve make-model: %s\n", e.what());
    return 1;
  }
  std::printf("wrote %s checkpoint to %s\n", preset.c_str(), output.c_str());
  return 0;
}

}  // namespace ds
