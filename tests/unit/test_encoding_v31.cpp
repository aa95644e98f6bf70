// V3.1-format prompt encoder (spec/serving.md 1.7; D7, D9, D10). Vectors: hand-derived from
// DeepSeek-V3.1's official chat template and model card (tests/fixtures/v31_encoding/, sources in
// docs/encoding.md "V3.1 format").
#include <gtest/gtest.h>

#include "encoding_test_util.h"

#include <fstream>
#include <sstream>

#include "text/encoding_dsv32.h"
#include "text/encoding_v31.h"

namespace ds {
namespace {

using test::messages_from_json;
using test::read_file;

std::vector<ordered_json> vectors() {
  std::istringstream in(read_file(DEEPSERVE_SOURCE_DIR "/tests/fixtures/v31_encoding/vectors.jsonl"));
  std::vector<ordered_json> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(ordered_json::parse(line));
  return out;
}

V31EncodeOptions options_of(const ordered_json& v) {
  V31EncodeOptions o;
  o.thinking = v.at("thinking").get<bool>();
  o.add_generation_prompt = v.at("add_generation_prompt").get<bool>();
  if (v.contains("tools")) o.tools = v["tools"];
  if (v.contains("assistant_prefix")) {
    o.has_assistant_prefix = true;
    o.assistant_prefix = v["assistant_prefix"].get<std::string>();
  }
  return o;
}

TEST(EncodingV31, HandDerivedVectorsByteExact) {
  auto vs = vectors();
  ASSERT_EQ(vs.size(), 17u);
  for (const auto& v : vs) {
    SCOPED_TRACE(v.at("name").get<std::string>());
    auto pieces = encode_v31(messages_from_json(v.at("messages")), options_of(v));
    EXPECT_EQ(pieces_to_string(pieces), v.at("expected").get<std::string>());
    for (const auto& p : pieces) EXPECT_FALSE(p.text.empty());
  }
}

// Markers the encoder writes are special pieces; the same strings typed by a user stay text (D10).
TEST(EncodingV31, PiecesSpecialOnlyForEncoderMarkers) {
  for (const auto& v : vectors()) {
    if (v.at("name") != "user_typed_markers_are_text") continue;
    auto pieces = encode_v31(messages_from_json(v.at("messages")), options_of(v));
    ASSERT_EQ(pieces.size(), 5u);
    EXPECT_TRUE(pieces[0].special && pieces[0].text == dsv32::kBos);
    EXPECT_TRUE(pieces[1].special && pieces[1].text == dsv32::kUser);
    EXPECT_FALSE(pieces[2].special);
    EXPECT_EQ(pieces[2].text, "<｜User｜><think><｜tool▁calls▁begin｜>");
    EXPECT_TRUE(pieces[3].special && pieces[3].text == dsv32::kAssistant);
    EXPECT_TRUE(pieces[4].special && pieces[4].text == dsv32::kThinkEnd);
  }
  // The tool rule's markers are special; "tool_call_name" between them is text.
  V31EncodeOptions o;
  o.tools = ordered_json::parse(R"([{"type":"function","function":{"name":"f"}}])");
  auto pieces = encode_v31({ChatMessage{"user", "q", {}, {}, {}}}, o);
  int specials = 0;
  for (const auto& p : pieces)
    if (p.special && p.text == v31::kToolSep) ++specials;
  EXPECT_EQ(specials, 1);
  const std::string head = "## Tools\nYou have access to the following tools:\n\n### f\nDescription: \n\nParameters: {}\n\n";
  EXPECT_EQ(v31_tool_description(o.tools).substr(0, head.size()), head);
}

TEST(EncodingV31, ToolCallPieceLayout) {
  ChatMessage a{"assistant", "", {}, {}, {}};
  ToolCall t;
  t.name = "get_weather";
  t.arguments = ordered_json::parse(R"({"city":"Paris"})");
  t.arguments_text = R"({"city":"Paris"})";  // rendered as given
  a.tool_calls.push_back(t);
  V31EncodeOptions o;
  auto pieces = encode_v31({ChatMessage{"user", "u", {}, {}, {}}, a}, o);
  std::vector<std::string> got;
  for (const auto& p : pieces) got.push_back((p.special ? "S:" : "T:") + p.text);
  std::vector<std::string> want = {"S:<｜begin▁of▁sentence｜>", "S:<｜User｜>", "T:u", "S:<｜Assistant｜>", "S:</think>",
                                   "S:<｜tool▁calls▁begin｜>", "S:<｜tool▁call▁begin｜>", "T:get_weather",
                                   "S:<｜tool▁sep｜>", R"(T:{"city":"Paris"})", "S:<｜tool▁call▁end｜>",
                                   "S:<｜tool▁calls▁end｜>", "S:<｜end▁of▁sentence｜>"};
  EXPECT_EQ(got, want);
}

TEST(EncodingV31, Errors) {
  V31EncodeOptions o;
  try {
    encode_v31({ChatMessage{"user", "u", {}, {}, {}}, ChatMessage{"robot", "x", {}, {}, {}}}, o);
    FAIL() << "no error";
  } catch (const EncodeError& e) {
    EXPECT_STREQ(e.what(), "Unknown role: robot (messages[1])");
  }
  o.tools = ordered_json::parse(R"([{"type":"function","function":{"description":"no name"}}])");
  try {
    encode_v31({ChatMessage{"user", "u", {}, {}, {}}}, o);
    FAIL() << "no error";
  } catch (const EncodeError& e) {
    EXPECT_STREQ(e.what(), "tools[0].function.name: expected a string");
  }
}

TEST(EncodingV31, NoBosOption) {
  V31EncodeOptions o;
  o.add_bos = false;
  EXPECT_EQ(pieces_to_string(encode_v31({ChatMessage{"user", "u", {}, {}, {}}}, o)), "<｜User｜>u<｜Assistant｜></think>");
}

}  // namespace
}  // namespace ds
