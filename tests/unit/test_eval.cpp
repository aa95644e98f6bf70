// deepserve eval: GSM8K answer extraction on the real GSM8K test set, prompt formats of SGLang's
// few_shot_gsm8k and MMLU bench_sglang.py (spec/serving.md 6.2, 6.3), the MMLU fixture.
#include <gtest/gtest.h>

#include <filesystem>

#include "tools/eval_gsm8k.h"
#include "tools/eval_mmlu.h"

using namespace ds::eval;

namespace {
const std::string kGsm = std::string(DEEPSERVE_SOURCE_DIR) + "/../shared/data/gsm8k/test.jsonl";
const std::string kMmlu = std::string(DEEPSERVE_SOURCE_DIR) + "/tests/fixtures/mmlu";
}  // namespace

TEST(EvalGsm8k, LabelsOfTheRealTestSet) {
  auto items = load_gsm8k(kGsm);
  ASSERT_EQ(items.size(), 1319u);
  // First eight labels and the sum of all 1319, computed with SGLang's get_answer_value in Python.
  const char* first[] = {"18", "3", "70000", "540", "20", "64", "260", "160"};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(gsm8k_answer_value(items[i].answer), first[i]) << "item " << i;
  EXPECT_EQ(gsm8k_answer_value(items[146].answer), "2125");    // "#### 2,125"
  EXPECT_EQ(gsm8k_answer_value(items[201].answer), "114200");  // "#### 114,200"
  long long sum = 0;
  for (const auto& it : items) {
    auto v = gsm8k_answer_value(it.answer);
    ASSERT_TRUE(v.has_value()) << it.answer;  // SGLang asserts every label is valid
    sum += std::stoll(*v);
  }
  EXPECT_EQ(sum, 9009213);
}

TEST(EvalGsm8k, ExtractionRules) {
  EXPECT_EQ(gsm8k_answer_value("So she pays $1,234.50 in total."), "50");  // last digit run
  EXPECT_EQ(gsm8k_answer_value("The answer is 1,234"), "1234");
  EXPECT_EQ(gsm8k_answer_value("-5 degrees"), "5");  // sign ignored, as SGLang's \d+
  EXPECT_EQ(gsm8k_answer_value("no digits here"), std::nullopt);
  EXPECT_EQ(gsm8k_answer_value("code 012"), std::nullopt);  // Python literal_eval: SyntaxError
  EXPECT_EQ(gsm8k_answer_value("00"), "0");
  auto s = gsm8k_score({std::string("1"), std::nullopt, std::string("3"), std::string("9")},
                       {std::string("1"), std::string("2"), std::string("3"), std::string("4")});
  EXPECT_DOUBLE_EQ(s.accuracy, 0.5);
  EXPECT_DOUBLE_EQ(s.invalid, 0.25);
  EXPECT_THROW(gsm8k_score({}, {}), std::invalid_argument);
}

TEST(EvalGsm8k, PromptFormat) {
  std::vector<GsmItem> items = {{"Q1?", "A1\n#### 1"}, {"Q2?", "A2\n#### 2"}};
  EXPECT_EQ(gsm8k_few_shot_prefix(items, 2), "Question: Q1?\nAnswer: A1\n#### 1\n\nQuestion: Q2?\nAnswer: A2\n#### 2\n\n");
  EXPECT_EQ(gsm8k_example(items[1], false), "Question: Q2?\nAnswer:");
  EXPECT_THROW(gsm8k_few_shot_prefix(items, 3), std::invalid_argument);
  EXPECT_EQ(gsm8k_stop_strings(), (std::vector<std::string>{"Question", "Assistant:", "<|separator|>"}));
  EXPECT_THROW(load_gsm8k("/nonexistent/test.jsonl"), std::runtime_error);
}

TEST(EvalMmlu, CsvQuotesAndLayout) {
  auto rows = parse_csv("a,\"b, c\",\"say \"\"hi\"\"\"\r\nx,\"multi\nline\",z\n", "t");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"a", "b, c", "say \"hi\""}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"x", "multi\nline", "z"}));
  EXPECT_THROW(parse_csv("\"open", "t"), std::runtime_error);
  auto test = load_mmlu_csv(kMmlu + "/test/astronomy_test.csv");
  ASSERT_EQ(test.size(), 2u);
  EXPECT_EQ(test[0].choices[3], "Pressure, from solar wind");
  EXPECT_EQ(test[1].answer, "B");
  EXPECT_EQ(mmlu_subjects(kMmlu, 60), (std::vector<std::string>{"abstract_algebra", "astronomy", "zoology"}));
  EXPECT_EQ(mmlu_subjects(kMmlu, 2), (std::vector<std::string>{"abstract_algebra", "astronomy"}));
}

TEST(EvalMmlu, PromptFormatAndShotLimit) {
  EXPECT_EQ(mmlu_header("abstract_algebra"), "The following are multiple choice questions (with answers) about abstract algebra.\n\n");
  MmluRow r{"Q?", {"a", "b", "c", "d"}, "C"};
  EXPECT_EQ(mmlu_example(r, false), "Q?\nA. a\nB. b\nC. c\nD. d\nAnswer:");
  EXPECT_EQ(mmlu_example(r, true), "Q?\nA. a\nB. b\nC. c\nD. d\nAnswer: C\n\n");
  auto dev = load_mmlu_csv(kMmlu + "/dev/astronomy_dev.csv");
  int k = 0;
  auto chars = [](const std::string& s) { return static_cast<int>(s.size()); };
  auto full = mmlu_few_shot_prefix(dev, "astronomy", 5, chars, 1 << 20, k);
  EXPECT_EQ(k, 5);
  // A limit just below the 5-shot length drops exactly one shot.
  auto four = mmlu_few_shot_prefix(dev, "astronomy", 5, chars, static_cast<int>(full.size()) - 1, k);
  EXPECT_EQ(k, 4);
  EXPECT_EQ(four, full.substr(0, four.size()));
  EXPECT_EQ(mmlu_prediction("  B. because"), "B");
  EXPECT_EQ(mmlu_prediction(" \n"), "");
  EXPECT_EQ(mmlu_prediction("é"), "é");
}
