// Private: one-pass reader of tokenizer.json that streams model.vocab and model.merges into flat
// vectors (the 128k-entry vocab object is the slow part of a DOM parse) and keeps the rest as DOM.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace ds {

/// tokenizer.json split for fast loading. `rest` is the document without model.vocab/model.merges.
struct TokenizerJsonParts {
  nlohmann::json rest;
  std::vector<std::pair<std::string, int64_t>> vocab;       // in file order
  std::vector<std::pair<std::string, std::string>> merges;  // rank order
  bool has_vocab = false, has_merges = false;
};

/// Parses `text`; throws TokenizerError naming `file` on invalid JSON or a vocab value that is not
/// an integer / a merge that is neither "a b" nor ["a", "b"].
TokenizerJsonParts parse_tokenizer_json(const std::string& text, const std::string& file);

}  // namespace ds
