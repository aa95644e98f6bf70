// `make_model`: deterministic DeepSeek-V3.2 test checkpoints in the official Hugging Face layout
// (D25, spec/model.md 3 and 10.1; the byte-level recipe is docs/make_model.md).
#include "tools/make_model.h"

#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/numeric.h"
#include "common/safetensors.h"
#include "model/config.h"
#include "model/tensor_names.h"
#include "text/tokenizer.h"
#include "tools/make_model_presets.h"
#include "tools/make_model_rng.h"

namespace ds {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, std::string_view suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

/// Distribution of one generated tensor (spec 10.1 "Weight generation").
struct Init {
  std::string stream;  // name whose FNV-1a hash keys the stream
  double mean = 0.0, stddev = 0.02;
};

Init init_for(const ExpectedTensor& t, const ModelConfig& cfg) {
  Init in{t.name, 0.0, 0.02};
  const std::string mtp = "model.layers." + std::to_string(cfg.num_hidden_layers) + ".";
  if (t.mtp && t.name == mtp + "embed_tokens.weight") in.stream = "model.embed_tokens.weight";
  if (t.mtp && t.name == mtp + "shared_head.head.weight") in.stream = "lm_head.weight";
  if (ends_with(t.name, "k_norm.bias")) {
    in.stddev = 0.1;
  } else if (ends_with(t.name, "e_score_correction_bias")) {
    in.stddev = 0.5;
  } else if (ends_with(t.name, "weights_proj.weight")) {
    in.stddev = 0.05;
  } else if (ends_with(t.name, "norm.weight")) {
    in.mean = 1.0;
    in.stddev = 0.1;
  }
  return in;
}

/// Generates `t` (and, for FP8, its scale tensor `scale`) as safetensors payloads.
void generate(const ExpectedTensor& t, const ModelConfig& cfg, uint64_t seed, std::vector<TensorData>& out) {
  const Init in = init_for(t, cfg);
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  std::vector<float> v(static_cast<size_t>(n));
  mm::fill_normal(mm::fnv1a64(in.stream) ^ seed, in.mean, in.stddev, v.data(), uint64_t(n));
  TensorData td{t.name, t.dtype, t.shape, {}};
  if (t.fp8) {
    const int64_t rows = t.shape.at(0), cols = t.shape.at(1);
    const int64_t sr = (rows + 127) / 128, sc = (cols + 127) / 128;
    td.bytes.resize(size_t(n));
    std::vector<float> s(static_cast<size_t>(sr * sc));
    quantize_fp8_blocks(v.data(), rows, cols, td.bytes.data(), s.data());
    TensorData sd{t.name + "_scale_inv", DType::F32, {sr, sc}, std::vector<uint8_t>(s.size() * 4)};
    std::memcpy(sd.bytes.data(), s.data(), sd.bytes.size());
    out.push_back(std::move(td));
    out.push_back(std::move(sd));
    return;
  }
  if (t.dtype == DType::BF16) {
    td.bytes.resize(size_t(n) * 2);
    for (int64_t i = 0; i < n; ++i) {
      const uint16_t b = f32_to_bf16(v[size_t(i)]);
      td.bytes[size_t(2 * i)] = uint8_t(b & 0xff);
      td.bytes[size_t(2 * i + 1)] = uint8_t(b >> 8);
    }
  } else if (t.dtype == DType::F32) {
    td.bytes.resize(size_t(n) * 4);
    std::memcpy(td.bytes.data(), v.data(), td.bytes.size());  // little-endian host (x86-64/aarch64)
  } else {
    throw std::logic_error("make_model: unexpected dtype for " + t.name);
  }
  out.push_back(std::move(td));
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream o(p, std::ios::binary);
  o << text;
  o.close();
  if (!o) throw std::runtime_error(p.string() + ": write failed");
}

std::string read_file(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error(p + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Shard s of a checkpoint: 0 = global tensors, 1..L = layer s-1, L+1.. = MTP layers.
int shard_of(const std::string& name) {
  const std::string pre = "model.layers.";
  if (name.rfind(pre, 0) != 0) return 0;
  return std::stoi(name.substr(pre.size())) + 1;
}

std::string shard_name(int i, int n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", i, n);
  return buf;
}

void write_checkpoint(const mm::Preset& p, const fs::path& dir) {
  const std::string config_text = p.config.dump(2) + "\n";
  const ModelConfig cfg = ModelConfig::parse(config_text, p.name + " preset config.json");
  write_text(dir / "config.json", config_text);

  nlohmann::ordered_json gen;
  gen["bos_token_id"] = cfg.bos_token_id;
  gen["eos_token_id"] = cfg.eos_token_id;
  gen["do_sample"] = true;
  gen["temperature"] = 1.0;
  gen["top_p"] = 0.95;
  write_text(dir / "generation_config.json", gen.dump(2) + "\n");

  nlohmann::ordered_json tc;  // V3.2 style (D6): no chat_template, BOS written by the encoder
  tc["add_bos_token"] = false;
  tc["add_eos_token"] = false;
  tc["bos_token"] = "<\xEF\xBD\x9C" "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>";
  tc["eos_token"] = "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>";
  tc["pad_token"] = tc["eos_token"];
  tc["clean_up_tokenization_spaces"] = false;
  tc["legacy"] = true;
  tc["model_max_length"] = 131072;
  tc["tokenizer_class"] = "LlamaTokenizerFast";
  tc["unk_token"] = nullptr;
  write_text(dir / "tokenizer_config.json", tc.dump(2) + "\n");
  write_text(dir / "tokenizer.json", apply_v32_added_tokens(read_file(Tokenizer::default_tokenizer_json())));

  const std::vector<ExpectedTensor> all = expected_tensors(cfg);
  const int nshards = cfg.num_hidden_layers + cfg.num_nextn_predict_layers + 1;
  nlohmann::json weight_map = nlohmann::json::object();
  uint64_t total = 0;
  for (int s = 0; s < nshards; ++s) {
    std::vector<TensorData> tensors;
    for (const ExpectedTensor& t : all)
      if (!t.is_scale && shard_of(t.name) == s) generate(t, cfg, p.seed, tensors);
    const std::string fname = shard_name(s + 1, nshards);
    for (const TensorData& td : tensors) {
      weight_map[td.name] = fname;
      total += td.bytes.size();
    }
    write_safetensors((dir / fname).string(), tensors, {{"format", "pt"}});
  }
  nlohmann::json index;
  index["metadata"] = {{"total_size", total}};
  index["weight_map"] = weight_map;
  write_text(dir / "model.safetensors.index.json", index.dump(2) + "\n");
}

// Names make_model writes; an existing output directory holding only these may be replaced.
bool is_our_file(const std::string& n) {
  return n == "config.json" || n == "generation_config.json" || n == "tokenizer.json" ||
         n == "tokenizer_config.json" || n == "model.safetensors.index.json" ||
         (n.rfind("model-", 0) == 0 && ends_with(n, ".safetensors"));
}

}  // namespace

std::vector<std::string> make_model_presets() { return {"tiny", "tiny-a", "real-geometry"}; }

void make_model(const std::string& preset, const std::string& out_dir, int index_topk_override) {
  const mm::Preset p = mm::make_preset(preset, index_topk_override);  // throws invalid_argument
  fs::path out = fs::absolute(fs::path(out_dir)).lexically_normal();
  if (out.filename().empty()) out = out.parent_path();
  std::error_code ec;
  const bool exists = fs::exists(out, ec);
  if (exists) {
    if (!fs::is_directory(out, ec)) throw std::runtime_error(out.string() + ": exists and is not a directory");
    for (const auto& e : fs::directory_iterator(out))
      if (!e.is_regular_file() || !is_our_file(e.path().filename().string()))
        throw std::runtime_error(out.string() + ": exists and holds '" + e.path().filename().string() +
                                 "', which make-model did not write; refusing to replace it");
  }
  fs::create_directories(out.parent_path(), ec);
  if (ec) throw std::runtime_error(out.parent_path().string() + ": cannot create: " + ec.message());
  // Everything is written into a sibling temporary directory and renamed into place at the end,
  // so a crash never leaves a half-written checkpoint at `out`.
  std::string tmpl = (out.parent_path() / ("." + out.filename().string() + ".tmp-XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error(tmpl + ": cannot create temporary directory");
  const fs::path tmp(tmpl);
  try {
    write_checkpoint(p, tmp);
    fs::permissions(tmp, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec);
    if (exists) {
      const fs::path old = tmp.string() + ".old";
      fs::rename(out, old);
      fs::rename(tmp, out);
      fs::remove_all(old);
    } else {
      fs::rename(tmp, out);
    }
  } catch (const std::filesystem::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    throw std::runtime_error(std::string("make-model: ") + e.what());
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

}  // namespace ds
