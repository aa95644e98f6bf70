// Deterministic test checkpoints in the official Hugging Face layout (D25; docs/make_model.md).
#pragma once
#include <string>
#include <vector>

namespace ds {

/// Preset names accepted by make_model: "tiny", "tiny-a", "real-geometry".
std::vector<std::string> make_model_presets();

/// Writes the checkpoint of `preset` into `out_dir` (created if needed): config.json,
/// generation_config.json, tokenizer.json + tokenizer_config.json (V3.2 style), >= 2 safetensors
/// shards + model.safetensors.index.json. Bit-identical on every run and machine.
/// `index_topk_override` > 0 replaces the preset's index_topk (real-geometry: 128 in CI, 2048 on GPU).
/// Throws std::invalid_argument for an unknown preset, std::runtime_error on I/O errors (naming the path).
void make_model(const std::string& preset, const std::string& out_dir, int index_topk_override = 0);

}  // namespace ds
