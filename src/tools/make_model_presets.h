// Preset configurations of `deepserve make-model` (D25; docs/make_model.md "Presets").
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace ds::mm {

/// One preset: the config.json it writes (key order as written) and the seed XORed into every
/// tensor's stream key.
struct Preset {
  std::string name;
  uint64_t seed = 0;
  nlohmann::ordered_json config;
};

/// The preset called `name` ("tiny", "tiny-a", "real-geometry"); `index_topk_override` > 0
/// replaces index_topk. Throws std::invalid_argument naming the preset if unknown.
Preset make_preset(const std::string& name, int index_topk_override = 0);

}  // namespace ds::mm
