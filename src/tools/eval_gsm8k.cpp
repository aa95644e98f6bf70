// GSM8K few-shot protocol (spec/serving.md 6.2). See eval_gsm8k.h.
#include "tools/eval_gsm8k.h"

#include <fstream>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace ds::eval {

std::vector<GsmItem> load_gsm8k(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error(fmt::format("--data-path: cannot open '{}'", path));
  std::vector<GsmItem> items;
  std::string line;
  int n = 0;
  while (std::getline(f, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("question") || !j.contains("answer") ||
        !j["question"].is_string() || !j["answer"].is_string())
      throw std::runtime_error(fmt::format("--data-path: '{}' line {} is not a {{\"question\", \"answer\"}} object", path, n));
    items.push_back({j["question"].get<std::string>(), j["answer"].get<std::string>()});
  }
  if (items.empty()) throw std::runtime_error(fmt::format("--data-path: '{}' has no records", path));
  return items;
}

std::string gsm8k_example(const GsmItem& item, bool include_answer) {
  std::string s = "Question: " + item.question + "\nAnswer:";
  if (include_answer) s += " " + item.answer;
  return s;
}

std::string gsm8k_few_shot_prefix(const std::vector<GsmItem>& items, int k) {
  if (k < 0 || static_cast<size_t>(k) > items.size())
    throw std::invalid_argument(fmt::format("--num-shots: {} outside [0, {}]", k, items.size()));
  std::string s;
  for (int i = 0; i < k; ++i) s += gsm8k_example(items[static_cast<size_t>(i)], true) + "\n\n";
  return s;
}

const std::vector<std::string>& gsm8k_stop_strings() {
  static const std::vector<std::string> stops = {"Question", "Assistant:", "<|separator|>"};
  return stops;
}

std::optional<std::string> gsm8k_answer_value(const std::string& text) {
  std::string last;
  bool in_run = false;
  std::string run;
  for (char c : text) {
    if (c == ',') continue;  // commas removed before matching, so "1,000" is one run
    if (c >= '0' && c <= '9') {
      run += c;
      in_run = true;
    } else {
      if (in_run) last = run;
      run.clear();
      in_run = false;
    }
  }
  if (in_run) last = run;
  if (last.empty()) return std::nullopt;
  // Python 3 literals: "0", "00", ... are zero; any other leading zero is a SyntaxError -> INVALID.
  const size_t nz = last.find_first_not_of('0');
  if (nz == std::string::npos) return std::string("0");
  if (nz > 0) return std::nullopt;
  return last;
}

GsmScore gsm8k_score(const std::vector<std::optional<std::string>>& preds,
                     const std::vector<std::optional<std::string>>& labels) {
  if (preds.size() != labels.size() || preds.empty())
    throw std::invalid_argument(fmt::format("gsm8k_score: {} predictions vs {} labels", preds.size(), labels.size()));
  size_t correct = 0, invalid = 0;
  for (size_t i = 0; i < preds.size(); ++i) {
    if (!preds[i]) ++invalid;
    else if (labels[i] && *preds[i] == *labels[i]) ++correct;
  }
  const double n = static_cast<double>(preds.size());
  return {static_cast<double>(correct) / n, static_cast<double>(invalid) / n};
}

}  // namespace ds::eval
