// Hugging Face pre-tokenizers over PCRE2 (see tokenizer_pretok.h). Regex patterns are read from
// tokenizer.json at load time and compiled with PCRE2_UTF | PCRE2_UCP (JIT when available).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/tokenizer_pretok.h"

#include <pcre2.h>

#include <mutex>

#include "text/tokenizer.h"

namespace ds {
namespace {

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

Behavior parse_behavior(const std::string& s, const std::string& file) {
  if (s == "Removed") return Behavior::Removed;
  if (s == "Isolated") return Behavior::Isolated;
  if (s == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (s == "MergedWithNext") return Behavior::MergedWithNext;
  if (s == "Contiguous") return Behavior::Contiguous;
  throw TokenizerError(file + ": pre_tokenizer Split: unknown behavior '" + s + "'");
}

std::string regex_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string_view("\\^$.|?*+()[]{}-/").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

/// A compiled PCRE2 pattern. pcre2 match data is per call (thread-safe use of one code object).
class Regex {
 public:
  Regex(const std::string& pattern, const std::string& file) {
    int err = 0;
    PCRE2_SIZE off = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                          PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
    if (!code_) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      throw TokenizerError(file + ": pre_tokenizer regex does not compile at offset " +
                           std::to_string(off) + ": " + reinterpret_cast<char*>(msg) + " (pattern " +
                           pattern + ")");
    }
    jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;
  }
  ~Regex() { pcre2_code_free(code_); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  /// All non-overlapping non-empty matches inside text[piece.begin, piece.end), as absolute spans.
  void find_all(std::string_view text, Span piece, std::vector<Span>& out) const {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_, nullptr);
    if (!md) throw TokenizerError("tokenizer: out of memory for regex match data");
    auto subject = reinterpret_cast<PCRE2_SPTR>(text.data() + piece.begin);
    size_t len = piece.end - piece.begin;
    size_t pos = 0;
    while (pos < len) {
      // PCRE2_NO_UTF_CHECK: the text was validated once before pre-tokenization.
      int rc = jit_ ? pcre2_jit_match(code_, subject, len, pos, PCRE2_NO_UTF_CHECK, md, nullptr)
                    : pcre2_match(code_, subject, len, pos, PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc < 0) {
        if (rc == PCRE2_ERROR_NOMATCH) break;
        pcre2_match_data_free(md);
        throw TokenizerError("tokenizer: regex match failed (PCRE2 error " + std::to_string(rc) + ")");
      }
      PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      size_t s = ov[0], e = ov[1];
      if (e == s) {  // empty match: skip one UTF-8 character
        size_t next = s + 1;
        while (next < len && (static_cast<uint8_t>(subject[next]) & 0xC0) == 0x80) ++next;
        pos = next;
        continue;
      }
      out.push_back({piece.begin + s, piece.begin + e});
      pos = e;
    }
    pcre2_match_data_free(md);
  }

 private:
  pcre2_code* code_ = nullptr;
  bool jit_ = false;
};

class SplitStep : public PreTokenizerStep {
 public:
  SplitStep(const std::string& pattern, Behavior b, bool invert, const std::string& file)
      : re_(pattern, file), behavior_(b), invert_(invert) {}

  void split(std::string_view text, Span piece, std::vector<Span>& out) const override {
    std::vector<Span> matches;
    re_.find_all(text, piece, matches);
    // (span, is_match) covering the piece, like HF's NormalizedString::split.
    std::vector<std::pair<Span, bool>> parts;
    size_t cur = piece.begin;
    for (const Span& m : matches) {
      if (m.begin > cur) parts.push_back({{cur, m.begin}, invert_});
      parts.push_back({m, !invert_});
      cur = m.end;
    }
    if (cur < piece.end) parts.push_back({{cur, piece.end}, invert_});

    switch (behavior_) {
      case Behavior::Removed:
        for (auto& [s, m] : parts)
          if (!m) out.push_back(s);
        break;
      case Behavior::Isolated:
        for (auto& [s, m] : parts) out.push_back(s);
        break;
      case Behavior::MergedWithPrevious: {
        std::vector<Span> res;
        bool prev_match = false;
        for (auto& [s, m] : parts) {
          if (m && !res.empty() && !prev_match) res.back().end = s.end;
          else res.push_back(s);
          prev_match = m;
        }
        out.insert(out.end(), res.begin(), res.end());
        break;
      }
      case Behavior::MergedWithNext: {
        std::vector<Span> res;
        bool prev_match = false;
        for (auto& [s, m] : parts) {
          if (!m && !res.empty() && prev_match) res.back().end = s.end;
          else res.push_back(s);
          prev_match = m;
        }
        out.insert(out.end(), res.begin(), res.end());
        break;
      }
      case Behavior::Contiguous: {
        std::vector<Span> res;
        bool have = false, prev_match = false;
        for (auto& [s, m] : parts) {
          if (have && m == prev_match) res.back().end = s.end;
          else res.push_back(s);
          have = true;
          prev_match = m;
        }
        out.insert(out.end(), res.begin(), res.end());
        break;
      }
    }
  }

 private:
  Regex re_;
  Behavior behavior_;
  bool invert_;
};

// GPT-2's split regex, used by a ByteLevel pre-tokenizer with use_regex=true (fixed by HF's
// ByteLevel definition; it is not stored in tokenizer.json).
constexpr const char* kByteLevelRegex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace

PreTokenizer::PreTokenizer(const nlohmann::json& cfg, const std::string& file) {
  if (!cfg.is_null()) add(cfg, file);
}

PreTokenizer::~PreTokenizer() = default;

void PreTokenizer::add(const nlohmann::json& cfg, const std::string& file) {
  if (!cfg.is_object() || !cfg.contains("type") || !cfg["type"].is_string())
    throw TokenizerError(file + ": pre_tokenizer entry without a string 'type'");
  const std::string type = cfg["type"].get<std::string>();
  if (type == "Sequence") {
    if (!cfg.contains("pretokenizers") || !cfg["pretokenizers"].is_array())
      throw TokenizerError(file + ": pre_tokenizer Sequence without 'pretokenizers' array");
    for (const auto& sub : cfg["pretokenizers"]) add(sub, file);
  } else if (type == "Split") {
    const auto& pat = cfg.value("pattern", nlohmann::json());
    std::string regex;
    if (pat.is_object() && pat.contains("Regex") && pat["Regex"].is_string())
      regex = pat["Regex"].get<std::string>();
    else if (pat.is_object() && pat.contains("String") && pat["String"].is_string())
      regex = regex_escape(pat["String"].get<std::string>());
    else
      throw TokenizerError(file + ": pre_tokenizer Split needs pattern {Regex|String}");
    Behavior b = parse_behavior(cfg.value("behavior", std::string("Isolated")), file);
    steps_.push_back(std::make_unique<SplitStep>(regex, b, cfg.value("invert", false), file));
  } else if (type == "ByteLevel") {
    // The byte mapping itself happens in the BPE model; here only the optional split/prefix.
    if (cfg.value("add_prefix_space", false)) add_prefix_space_ = true;
    if (cfg.value("use_regex", true))
      steps_.push_back(std::make_unique<SplitStep>(kByteLevelRegex, Behavior::Isolated, false, file));
  } else {
    throw TokenizerError(file + ": unsupported pre_tokenizer type '" + type + "'");
  }
}

std::vector<Span> PreTokenizer::split(std::string_view text) const {
  std::vector<Span> cur;
  if (!text.empty()) cur.push_back({0, text.size()});
  std::vector<Span> next;
  for (const auto& step : steps_) {
    next.clear();
    next.reserve(cur.size() * 2);
    for (const Span& p : cur) step->split(text, p, next);
    cur.swap(next);
  }
  return cur;
}

}  // namespace ds
