// MMLU 5-shot protocol (spec/serving.md 6.3). See eval_mmlu.h.
#include "tools/eval_mmlu.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

namespace ds::eval {

namespace fs = std::filesystem;

std::vector<std::vector<std::string>> parse_csv(const std::string& t, const std::string& what) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  for (size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < t.size() && t[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        field += c;
      }
      continue;
    }
    if (c == '"') {
      quoted = true;
      any = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
      any = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < t.size() && t[i + 1] == '\n') ++i;
      if (any || !field.empty()) {
        row.push_back(std::move(field));
        rows.push_back(std::move(row));
      }
      row.clear();
      field.clear();
      any = false;
    } else {
      field += c;
      any = true;
    }
  }
  if (quoted) throw std::runtime_error(fmt::format("{}: unterminated quoted field", what));
  if (any || !field.empty()) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<MmluRow> load_mmlu_csv(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(fmt::format("--data-dir: cannot open '{}'", path));
  std::stringstream ss;
  ss << f.rdbuf();
  std::vector<MmluRow> out;
  int n = 0;
  for (auto& r : parse_csv(ss.str(), path)) {
    ++n;
    if (r.size() != 6) throw std::runtime_error(fmt::format("--data-dir: '{}' row {} has {} columns, expected 6", path, n, r.size()));
    MmluRow m;
    m.question = r[0];
    for (int j = 0; j < 4; ++j) m.choices[j] = r[static_cast<size_t>(j + 1)];
    m.answer = r[5];
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<std::string> mmlu_subjects(const std::string& data_dir, int nsub) {
  const fs::path test = fs::path(data_dir) / "test";
  std::error_code ec;
  if (!fs::is_directory(test, ec)) throw std::runtime_error(fmt::format("--data-dir: '{}' is not a directory", test.string()));
  std::vector<std::string> subs;
  const std::string suffix = "_test.csv";
  for (const auto& e : fs::directory_iterator(test)) {
    const std::string name = e.path().filename().string();
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      subs.push_back(name.substr(0, name.size() - suffix.size()));
  }
  if (subs.empty()) throw std::runtime_error(fmt::format("--data-dir: no <subject>_test.csv in '{}'", test.string()));
  std::sort(subs.begin(), subs.end());
  if (nsub >= 0 && static_cast<size_t>(nsub) < subs.size()) subs.resize(static_cast<size_t>(nsub));
  return subs;
}

std::string mmlu_header(const std::string& subject) {
  std::string words;
  std::stringstream ss(subject);
  std::string w;
  while (std::getline(ss, w, '_')) words += " " + w;
  return "The following are multiple choice questions (with answers) about" + words + ".\n\n";
}

std::string mmlu_example(const MmluRow& row, bool include_answer) {
  static const char* letters[4] = {"A", "B", "C", "D"};
  std::string s = row.question;
  for (int j = 0; j < 4; ++j) s += fmt::format("\n{}. {}", letters[j], row.choices[j]);
  s += "\nAnswer:";
  if (include_answer) s += fmt::format(" {}\n\n", row.answer);
  return s;
}

std::string mmlu_few_shot_prefix(const std::vector<MmluRow>& dev, const std::string& subject, int k,
                                 const std::function<int(const std::string&)>& count_tokens, int max_tokens,
                                 int& used_k) {
  k = std::min<int>(k, static_cast<int>(dev.size()));
  auto build = [&](int kk) {
    std::string s = mmlu_header(subject);
    for (int i = 0; i < kk; ++i) s += mmlu_example(dev[static_cast<size_t>(i)], true);
    return s;
  };
  std::string prefix = build(k);
  while (k > 0 && count_tokens(prefix) > max_tokens) prefix = build(--k);
  used_k = k;
  return prefix;
}

std::string mmlu_prediction(const std::string& output) {
  const size_t b = output.find_first_not_of(" \t\n\r\f\v");
  if (b == std::string::npos) return "";
  // First *character*: a UTF-8 sequence, not just its first byte.
  const unsigned char c = static_cast<unsigned char>(output[b]);
  const size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  return output.substr(b, len);
}

}  // namespace ds::eval
