// The one table of V3.1+/V3.2 added tokens applied to DeepSeek-V3's tokenizer.json (D11).
// Sources and the verified/secondary status of each row: docs/tokenizer.md, "Added-token table".
#include <nlohmann/json.hpp>

#include "text/tokenizer.h"
#include "text/tokenizer_impl.h"

namespace ds {
namespace {

// Ids 128793 and 128796..128799 are `<｜place▁holder▁no▁N｜>` placeholders (special=true) in V3.
constexpr V32AddedToken kTable[] = {
    {128793, "｜DSML｜", true},                  // V3.2 DSML marker (special in V3.2's file)
    {128796, "<｜search▁begin｜>", false},     // V3.1 search agent
    {128797, "<｜search▁end｜>", false},
    {128798, "<think>", false},                // V3.1+ reasoning open
    {128799, "</think>", false},               // V3.1+ reasoning close
};

}  // namespace

std::span<const V32AddedToken> v32_added_tokens_table() { return kTable; }

void apply_v32_added_tokens_json(nlohmann::json& j, const std::string& file) {
  if (!j.is_object() || !j.contains("model") || !j.contains("added_tokens") || !j["added_tokens"].is_array())
    throw TokenizerError(file + ": not a tokenizer.json (needs 'model' and an 'added_tokens' array)");
  auto& added = j["added_tokens"];
  for (const V32AddedToken& t : kTable) {
    nlohmann::json* slot = nullptr;
    for (auto& a : added) {
      if (!a.is_object()) continue;
      if (a.value("id", int64_t{-1}) == t.id) slot = &a;
      else if (a.value("content", std::string()) == t.content)
        throw TokenizerError(file + ": added token '" + t.content + "' already exists with id " +
                             std::to_string(a.value("id", int64_t{-1})) + ", not " + std::to_string(t.id));
    }
    nlohmann::json entry = {{"id", t.id},          {"content", t.content}, {"single_word", false},
                            {"lstrip", false},     {"rstrip", false},      {"normalized", false},
                            {"special", t.special}};
    if (slot) *slot = entry;
    else added.push_back(entry);
  }
}

std::string apply_v32_added_tokens(const std::string& tokenizer_json) {
  // Plain (key-sorted) json: nlohmann::ordered_json is quadratic on the 128k-key vocab object.
  // Key order carries no meaning in tokenizer.json; array orders (merges, added_tokens) are kept.
  nlohmann::json j = nlohmann::json::parse(tokenizer_json, nullptr, false);
  if (j.is_discarded()) throw TokenizerError("apply_v32_added_tokens: input is not valid JSON");
  apply_v32_added_tokens_json(j, "apply_v32_added_tokens");
  return j.dump();
}

}  // namespace ds
