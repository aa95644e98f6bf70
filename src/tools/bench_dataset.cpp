// Prompt sets of `deepserve bench`. See bench_dataset.h.
#include "tools/bench_dataset.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace ds::bench {

std::vector<int> random_lengths(int full, double r, int num, uint64_t& state, const char* flag) {
  if (full < 1) throw std::invalid_argument(fmt::format("{}: {} must be >= 1", flag, full));
  if (!(r >= 0 && r <= 1)) throw std::invalid_argument(fmt::format("--random-range-ratio: {} outside [0, 1]", r));
  const int lo = std::max(static_cast<int>(std::floor(full * r)), 1);
  std::mt19937_64 rng(state++);
  std::uniform_int_distribution<int> d(lo, full);
  std::vector<int> out(static_cast<size_t>(std::max(num, 0)));
  for (int& x : out) x = d(rng);
  return out;
}

namespace {

int count(const Tokenizer& tok, const std::string& s) { return static_cast<int>(tok.encode(s).size()); }

// Decodes `ids`, then re-encodes and cuts to `target` tokens until the text's own count fits.
std::string text_of_at_most(const Tokenizer& tok, std::vector<int32_t> ids, int target) {
  std::string text = tok.decode(ids, /*skip_special_tokens=*/false);
  for (int round = 0; round < 4; ++round) {
    auto again = tok.encode(text);
    if (static_cast<int>(again.size()) <= target) break;
    again.resize(static_cast<size_t>(target));
    text = tok.decode(again, false);
  }
  return text;
}

}  // namespace

std::vector<DatasetRow> sample_random_ids(const Tokenizer& tok, const RandomSpec& spec) {
  uint64_t state = spec.seed;
  auto in = random_lengths(spec.input_len, spec.range_ratio, spec.num_prompts, state, "--random-input-len");
  auto out = random_lengths(spec.output_len, spec.range_ratio, spec.num_prompts, state, "--random-output-len");
  const int vocab = tok.vocab_size();
  std::mt19937_64 rng(spec.seed ^ 0x9e3779b97f4a7c15ULL);
  std::uniform_int_distribution<int> off(0, vocab - 1);
  std::vector<DatasetRow> rows;
  for (int i = 0; i < spec.num_prompts; ++i) {
    const int o = off(rng);
    std::vector<int32_t> ids(static_cast<size_t>(in[i]));
    for (int j = 0; j < in[i]; ++j) {
      int32_t id = static_cast<int32_t>((static_cast<int64_t>(o) + i + j) % vocab);
      if (tok.is_special(id)) id = static_cast<int32_t>((id + 1) % vocab);  // keep control tokens out
      ids[static_cast<size_t>(j)] = id;
    }
    DatasetRow r;
    r.prompt = text_of_at_most(tok, std::move(ids), in[i]);
    r.prompt_len = count(tok, r.prompt);
    r.output_len = out[i];
    rows.push_back(std::move(r));
  }
  return rows;
}

std::vector<std::pair<std::string, std::string>> load_sharegpt_pairs(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error(fmt::format("--dataset-path: cannot open '{}'", path));
  nlohmann::json j = nlohmann::json::parse(f, nullptr, false);
  if (j.is_discarded() || !j.is_array())
    throw std::runtime_error(fmt::format("--dataset-path: '{}' is not a JSON array of ShareGPT records", path));
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const auto& rec : j) {
    if (!rec.is_object() || !rec.contains("conversations") || !rec["conversations"].is_array()) continue;
    const auto& c = rec["conversations"];
    if (c.size() < 2 || !c[0].is_object() || !c[1].is_object()) continue;
    auto v0 = c[0].find("value"), v1 = c[1].find("value");
    if (v0 == c[0].end() || v1 == c[1].end() || !v0->is_string() || !v1->is_string()) continue;
    pairs.emplace_back(v0->get<std::string>(), v1->get<std::string>());
  }
  if (pairs.empty()) throw std::runtime_error(fmt::format("--dataset-path: '{}' has no conversation with >= 2 turns", path));
  return pairs;
}

std::vector<DatasetRow> sample_random_sharegpt(const Tokenizer& tok, const RandomSpec& spec, const std::string& path) {
  auto pairs = load_sharegpt_pairs(path);
  std::mt19937_64 rng(spec.seed);
  std::shuffle(pairs.begin(), pairs.end(), rng);
  uint64_t state = spec.seed;
  auto in = random_lengths(spec.input_len, spec.range_ratio, spec.num_prompts, state, "--random-input-len");
  auto out = random_lengths(spec.output_len, spec.range_ratio, spec.num_prompts, state, "--random-output-len");
  std::vector<DatasetRow> rows;
  size_t k = 0;
  for (int i = 0; i < spec.num_prompts; ++i) {
    std::vector<int32_t> ids;
    for (size_t tries = 0; ids.empty() && tries < pairs.size(); ++tries) ids = tok.encode(pairs[k++ % pairs.size()].first);
    if (ids.empty()) throw std::runtime_error(fmt::format("--dataset-path: '{}' has only empty prompts", path));
    std::vector<int32_t> full;
    while (static_cast<int>(full.size()) < in[i]) full.insert(full.end(), ids.begin(), ids.end());
    full.resize(static_cast<size_t>(in[i]));
    DatasetRow r;
    r.prompt = text_of_at_most(tok, std::move(full), in[i]);
    r.prompt_len = count(tok, r.prompt);
    r.output_len = out[i];
    rows.push_back(std::move(r));
  }
  return rows;
}

std::vector<DatasetRow> sample_sharegpt(const Tokenizer& tok, const std::string& path, int num_prompts,
                                        int fixed_output_len, uint64_t seed) {
  if (path.empty()) throw std::invalid_argument("--dataset-path: required for --dataset-name sharegpt (no download here)");
  auto pairs = load_sharegpt_pairs(path);
  std::mt19937_64 rng(seed);
  std::shuffle(pairs.begin(), pairs.end(), rng);
  std::vector<DatasetRow> rows;
  for (const auto& [prompt, reply] : pairs) {
    if (static_cast<int>(rows.size()) >= num_prompts) break;
    const int pl = count(tok, prompt);
    const int ol = fixed_output_len > 0 ? fixed_output_len : count(tok, reply);
    if (pl < 2 || ol < 2) continue;
    if (pl > 1024 || pl + ol > 2048) continue;
    rows.push_back({prompt, pl, ol});
  }
  if (static_cast<int>(rows.size()) < num_prompts)
    throw std::runtime_error(fmt::format("--dataset-path: '{}' gave only {} usable prompts, --num-prompts is {}", path,
                                         rows.size(), num_prompts));
  return rows;
}

}  // namespace ds::bench
