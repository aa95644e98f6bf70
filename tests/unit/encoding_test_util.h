// Shared by the prompt-encoder tests: reading fixture files and turning fixture message JSON into
// ChatMessages (the shape of OpenAI requests after server/ has parsed them).
#pragma once
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "text/chat.h"

namespace ds::test {

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

/// Fixture messages -> ChatMessages. String tool-call arguments are parsed into `arguments` and kept
/// verbatim in `arguments_text` (the V3.1 format prints the client's string as sent).
inline std::vector<ChatMessage> messages_from_json(const ordered_json& arr) {
  std::vector<ChatMessage> out;
  for (const auto& m : arr) {
    ChatMessage c;
    c.role = m.at("role").get<std::string>();
    if (m.contains("content") && m["content"].is_string()) c.content = m["content"].get<std::string>();
    if (m.contains("reasoning_content")) c.reasoning_content = m["reasoning_content"].get<std::string>();
    if (m.contains("tool_call_id")) c.tool_call_id = m["tool_call_id"].get<std::string>();
    if (m.contains("tool_calls")) {
      for (const auto& tc : m["tool_calls"]) {
        ToolCall t;
        t.id = tc.value("id", "");
        t.name = tc.at("function").at("name").get<std::string>();
        const auto& a = tc.at("function").at("arguments");
        if (a.is_string()) {
          t.arguments_text = a.get<std::string>();
          t.arguments = ordered_json::parse(a.get<std::string>());
        } else {
          t.arguments = a;
        }
        c.tool_calls.push_back(std::move(t));
      }
    }
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace ds::test
