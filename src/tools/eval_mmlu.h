// MMLU 5-shot protocol of SGLang's benchmark/mmlu/bench_sglang.py (spec/serving.md 6.3): data
// layout, prompt format, shot reduction, answer extraction. Pure functions except the file reads.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace ds::eval {

/// One MMLU row: question, the four choices A-D, the answer letter.
struct MmluRow {
  std::string question;
  std::string choices[4];
  std::string answer;
};

/// Parses CSV text (RFC 4180: quoted fields, "" escapes, newlines inside quotes; no header) into
/// rows of fields. std::runtime_error naming `what` on an unterminated quote.
std::vector<std::vector<std::string>> parse_csv(const std::string& text, const std::string& what);

/// Reads DIR/<split>/<subject>_<split>.csv (6 columns). std::runtime_error naming the file.
std::vector<MmluRow> load_mmlu_csv(const std::string& path);

/// Subjects present in DIR/test (files `<subject>_test.csv`), sorted, at most `nsub`.
/// std::runtime_error when DIR/test does not exist or is empty.
std::vector<std::string> mmlu_subjects(const std::string& data_dir, int nsub);

/// "The following are multiple choice questions (with answers) about" + " word" per '_'-separated
/// word of `subject` + ".\n\n".
std::string mmlu_header(const std::string& subject);

/// question + "\nA. a\nB. b\nC. c\nD. d\nAnswer:" (+ " X\n\n" when `include_answer`).
std::string mmlu_example(const MmluRow& row, bool include_answer);

/// Header + the first k dev rows with answers, where k starts at `k` and drops by one while
/// count_tokens(prefix) > max_tokens (bench_sglang.py: 1536 tokens; its tiktoken count is replaced
/// by ours). Returns the prefix; `used_k` gets the final k.
std::string mmlu_few_shot_prefix(const std::vector<MmluRow>& dev, const std::string& subject, int k,
                                 const std::function<int(const std::string&)>& count_tokens, int max_tokens,
                                 int& used_k);

/// First character of the stripped output ("" when empty), the protocol's prediction.
std::string mmlu_prediction(const std::string& output);

}  // namespace ds::eval
