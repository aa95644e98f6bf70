// Chat messages as the prompt encoders see them (already validated by server/).
#pragma once
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ds {

/// JSON that keeps the client's key order (D4: tool schemas are printed in the order sent).
using ordered_json = nlohmann::ordered_json;

/// One assistant tool call. `arguments` is a JSON object (string arguments are parsed by server/).
struct ToolCall {
  std::string id;
  std::string name;
  ordered_json arguments = ordered_json::object();
  /// The arguments exactly as the client sent them when they came as a JSON string (the V3.1
  /// format renders that string as given, spec/serving.md 1.7); unset for object arguments.
  std::optional<std::string> arguments_text;
};

/// One chat message. role: system | user | developer | assistant | tool (lower case).
/// `content` is the text (list-of-parts content is flattened by server/, D8).
struct ChatMessage {
  std::string role;
  std::string content;
  std::optional<std::string> reasoning_content;
  std::vector<ToolCall> tool_calls;
  std::string tool_call_id;
};

/// Error in a conversation that the encoder cannot render (becomes HTTP 400 with this message).
struct EncodeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace ds
