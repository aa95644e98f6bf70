// The tiny-a preset (spec/model.md 10.1) made once per test process into a temporary directory
// (removed at exit) and loaded in official numerics, and deterministic prompts for it; shared by
// the engine-on-model tests.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "model/deepseek_v32.h"
#include "tools/make_model.h"

namespace tinyutil {

/// The loaded tiny-a model (official mode), one per process; `tag` names the temporary directory.
inline std::shared_ptr<ds::DeepseekV32> tiny_a(const char* tag) {
  struct TinyModel {
    std::string dir;
    std::shared_ptr<ds::DeepseekV32> model;
    explicit TinyModel(const char* t) {
      dir = (std::filesystem::temp_directory_path() / (std::string(t) + "_" + std::to_string(::getpid()))).string();
      ds::make_model("tiny-a", dir, 0);
      model = ds::DeepseekV32::load(dir, ds::Numerics::Official);
    }
    ~TinyModel() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  };
  static TinyModel m(tag);
  return m.model;
}

/// A deterministic prompt of n token ids in [3, 1003) (tiny-a's vocabulary is 1024), from `seed`.
inline std::vector<int32_t> prompt(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(size_t(n), 0);
  for (auto& x : t) x = int32_t(3 + rng() % 1000u);
  return t;
}

}  // namespace tinyutil
