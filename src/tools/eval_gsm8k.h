// GSM8K few-shot protocol of SGLang's `python -m sglang.test.few_shot_gsm8k` (spec/serving.md 6.2):
// prompt format, stop strings, answer extraction, scoring. Pure functions; the HTTP part lives in
// eval_command.cpp.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace ds::eval {

/// One GSM8K record (test.jsonl: {"question", "answer"}; answers end in "#### N").
struct GsmItem {
  std::string question;
  std::string answer;
};

/// Reads a GSM8K JSONL file. std::runtime_error naming the file and line on I/O or format errors.
std::vector<GsmItem> load_gsm8k(const std::string& path);

/// "Question: " + q + "\nAnswer:" (+ " " + answer when `include_answer`).
std::string gsm8k_example(const GsmItem& item, bool include_answer);

/// The first `k` records with answers, each followed by "\n\n" (the protocol takes the shots from
/// the head of the test set itself). std::invalid_argument when k > items.size().
std::string gsm8k_few_shot_prefix(const std::vector<GsmItem>& items, int k);

/// Stop strings of the protocol: "Question", "Assistant:", "<|separator|>".
const std::vector<std::string>& gsm8k_stop_strings();

/// few_shot_gsm8k's get_answer_value: drop commas, take the last run of ASCII digits, parse it as a
/// Python literal. Returns the integer as a canonical decimal string (leading zeros removed); nullopt
/// (INVALID) when there is no digit run or the run is not a Python literal ("012": leading zero).
std::optional<std::string> gsm8k_answer_value(const std::string& text);

/// Accuracy / invalid fraction over predictions vs labels (same length; nullopt = INVALID, which
/// never equals a label). std::invalid_argument on a length mismatch or empty input.
struct GsmScore {
  double accuracy = 0;
  double invalid = 0;
};
GsmScore gsm8k_score(const std::vector<std::optional<std::string>>& preds,
                     const std::vector<std::optional<std::string>>& labels);

}  // namespace ds::eval
