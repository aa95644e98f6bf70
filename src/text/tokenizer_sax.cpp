// One-pass SAX reader of tokenizer.json (see tokenizer_sax.h).
#include "text/tokenizer_sax.h"

#include "text/tokenizer.h"

namespace ds {
namespace {

using json = nlohmann::json;

class Reader : public nlohmann::json_sax<json> {
 public:
  Reader(TokenizerJsonParts& out, const std::string& file) : out_(out), file_(file) {}

  bool null() override { return value(json()); }
  bool boolean(bool v) override { return value(json(v)); }
  bool number_integer(number_integer_t v) override {
    if (mode_ == Mode::Vocab) return vocab_entry(v);
    return value(json(v));
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (mode_ == Mode::Vocab) return vocab_entry(static_cast<int64_t>(std::min<uint64_t>(v, INT64_MAX)));
    return value(json(v));
  }
  bool number_float(number_float_t v, const string_t&) override {
    if (mode_ == Mode::Vocab) fail("model.vocab['" + key_ + "'] is not an integer id");
    return value(json(v));
  }
  bool string(string_t& v) override {
    if (mode_ == Mode::Merges) {
      if (merge_depth_ == 0) {
        size_t sp = v.find(' ', 1);
        if (sp == std::string::npos) fail("model.merges[" + std::to_string(out_.merges.size()) + "] '" + v + "' has no space");
        out_.merges.emplace_back(v.substr(0, sp), v.substr(sp + 1));
      } else {
        pair_.push_back(std::move(v));
      }
      return true;
    }
    if (mode_ == Mode::Vocab) fail("model.vocab['" + key_ + "'] is not an integer id");
    return value(json(std::move(v)));
  }
  bool binary(binary_t&) override { return fail("unexpected binary value"); }

  bool start_object(std::size_t) override {
    if (mode_ != Mode::None) return fail(mode_ == Mode::Vocab ? "model.vocab values must be integers"
                                                               : "model.merges entries must be strings or pairs");
    if (stack_.size() == 2 && names_.back() == "model" && key_ == "vocab") {
      mode_ = Mode::Vocab;
      out_.has_vocab = true;
      return true;
    }
    return open(json::object());
  }
  bool end_object() override {
    if (mode_ == Mode::Vocab) {
      mode_ = Mode::None;
      return true;
    }
    return close();
  }
  bool start_array(std::size_t) override {
    if (mode_ == Mode::Merges) {
      if (merge_depth_ != 0) return fail("model.merges entries must be strings or pairs");
      merge_depth_ = 1;
      pair_.clear();
      return true;
    }
    if (mode_ == Mode::Vocab) return fail("model.vocab values must be integers");
    if (stack_.size() == 2 && names_.back() == "model" && key_ == "merges") {
      mode_ = Mode::Merges;
      out_.has_merges = true;
      return true;
    }
    return open(json::array());
  }
  bool end_array() override {
    if (mode_ == Mode::Merges) {
      if (merge_depth_ == 1) {
        merge_depth_ = 0;
        if (pair_.size() != 2) fail("model.merges[" + std::to_string(out_.merges.size()) + "] is not a pair");
        out_.merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
      } else {
        mode_ = Mode::None;
      }
      return true;
    }
    return close();
  }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception& e) override {
    throw TokenizerError(file_ + ": not valid JSON (byte " + std::to_string(pos) + "): " + e.what());
  }

 private:
  enum class Mode { None, Vocab, Merges };

  bool fail(const std::string& msg) { throw TokenizerError(file_ + ": " + msg); }
  bool vocab_entry(int64_t id) {
    out_.vocab.emplace_back(std::move(key_), id);
    return true;
  }
  json* insert(json&& v) {
    if (stack_.empty()) {
      out_.rest = std::move(v);
      return &out_.rest;
    }
    json& top = *stack_.back();
    if (top.is_array()) {
      top.push_back(std::move(v));
      return &top.back();
    }
    json& slot = top[key_];
    slot = std::move(v);
    return &slot;
  }
  bool value(json&& v) {
    insert(std::move(v));
    return true;
  }
  bool open(json&& v) {
    std::string name = (!stack_.empty() && stack_.back()->is_object()) ? key_ : std::string();
    stack_.push_back(insert(std::move(v)));
    names_.push_back(std::move(name));
    return true;
  }
  bool close() {
    stack_.pop_back();
    names_.pop_back();
    return true;
  }

  TokenizerJsonParts& out_;
  const std::string& file_;
  std::vector<json*> stack_;
  std::vector<std::string> names_;  // key under which each open container was stored
  std::string key_;
  Mode mode_ = Mode::None;
  int merge_depth_ = 0;
  std::vector<std::string> pair_;
};

}  // namespace

TokenizerJsonParts parse_tokenizer_json(const std::string& text, const std::string& file) {
  TokenizerJsonParts parts;
  Reader r(parts, file);
  if (!json::sax_parse(text, &r)) throw TokenizerError(file + ": not valid JSON");
  return parts;
}

}  // namespace ds
