// Private: the Hugging Face pre-tokenizer pipeline read from tokenizer.json ("pre_tokenizer"):
// Sequence / Split (Regex or String pattern, all split behaviours) / ByteLevel (serving.md 1.8).
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace ds {

/// A byte span [begin, end) of the input text.
struct Span {
  size_t begin = 0;
  size_t end = 0;
};

/// One pre-tokenizer step; steps are applied in order, each splitting every span of the previous.
class PreTokenizerStep {
 public:
  virtual ~PreTokenizerStep() = default;
  /// Appends the sub-spans of `piece` (absolute offsets into `text`) to `out`.
  virtual void split(std::string_view text, Span piece, std::vector<Span>& out) const = 0;
};

/// The whole pre-tokenizer. Only splits (no normalization), so pieces are byte spans of the input;
/// a ByteLevel step with add_prefix_space is reported through `add_prefix_space()` instead.
class PreTokenizer {
 public:
  /// Builds from the "pre_tokenizer" JSON value (null = whole text is one piece). Throws
  /// TokenizerError mentioning `file` for an unsupported type/behaviour or a regex that PCRE2
  /// (UTF|UCP) rejects.
  PreTokenizer(const nlohmann::json& cfg, const std::string& file);
  ~PreTokenizer();
  /// Splits `text` into pieces (empty pieces are dropped).
  std::vector<Span> split(std::string_view text) const;
  /// True when a ByteLevel step asks for a leading space on each piece that lacks one.
  bool add_prefix_space() const { return add_prefix_space_; }

 private:
  void add(const nlohmann::json& cfg, const std::string& file);
  std::vector<std::unique_ptr<PreTokenizerStep>> steps_;
  bool add_prefix_space_ = false;
};

}  // namespace ds
