// Handed cases (../shared/cases/serving_cases.jsonl) of areas reasoning and tool_calling, and the
// parser-side parts of chat_template / openai_api cases, read at test time and interpreted per
// cases/README.md. Every case with model text is also run under every 1/2-way, byte-wise and a
// sample of 3-way chunkings and must give the non-streaming result exactly.
#include <fstream>
#include <regex>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "parser_test_util.h"
#include "text/encoding_dsv32.h"
#include "text/tokenizer.h"

using ds::ChoiceOutputOptions;
using ds::testing::Outcome;
using json = nlohmann::json;

namespace {

const std::map<std::string, json>& cases() {
  static const std::map<std::string, json> all = [] {
    std::map<std::string, json> m;
    std::string path = std::string(DEEPSERVE_SOURCE_DIR) + "/../shared/cases/serving_cases.jsonl";
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      json c = json::parse(line);
      m[c.at("id").get<std::string>()] = c;
    }
    return m;
  }();
  return all;
}

const json& get_case(const std::string& id) {
  auto it = cases().find(id);
  if (it == cases().end()) throw std::runtime_error("case not found: " + id);
  return it->second;
}

// cases/README.md: null and "" are both "no reasoning"/"no content" for our outputs.
bool text_matches(const json& want, const std::string& got) {
  if (want.is_null()) return got.empty();
  return want.get<std::string>() == got;
}

void check_calls(const json& want, const Outcome& o) {
  ASSERT_EQ(o.calls.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    const json& w = want[i];
    const ds::ParsedToolCall& c = o.calls[i];
    if (w.contains("index")) {
      EXPECT_EQ(c.index, w["index"].get<int>());
    }
    if (w.contains("type")) {
      EXPECT_EQ(w["type"], "function");
    }
    EXPECT_EQ(c.name, w["function"]["name"].get<std::string>());
    json args = json::parse(c.arguments);  // key order free (README: arguments_json)
    EXPECT_EQ(args, w["function"]["arguments_json"]) << c.arguments;
    EXPECT_TRUE(std::regex_match(c.id, std::regex("call_[0-9a-f]{24}"))) << c.id;
  }
}

void check_none_contains(const std::vector<std::string>& texts, const json& forbidden, const char* what) {
  for (const auto& t : texts) {
    for (const auto& f : forbidden) {
      EXPECT_EQ(t.find(f.get<std::string>()), std::string::npos) << what << ": " << t;
    }
  }
}

/// Checks every key of an `expected` object against one outcome; unknown keys fail the test so no
/// expectation is silently skipped. `server_keys` are keys that only the HTTP layer can check.
void check_expected(const json& exp, const Outcome& o, const std::set<std::string>& server_keys = {}) {
  for (const auto& [k, v] : exp.items()) {
    SCOPED_TRACE("expected key " + k);
    if (server_keys.count(k)) continue;
    if (k == "reasoning_content" || k == "reasoning_content_concat") {
      EXPECT_TRUE(text_matches(v, o.reasoning)) << o.reasoning;
    } else if (k == "content" || k == "content_concat" || k == "content_deltas_concat") {
      EXPECT_TRUE(text_matches(v, o.content)) << o.content;
    } else if (k == "reasoning_content_in" || k == "content_in") {
      const std::string& got = k == "content_in" ? o.content : o.reasoning;
      bool any = false;
      for (const auto& w : v) any = any || text_matches(w, got);
      EXPECT_TRUE(any) << got;
    } else if (k == "finish_reason" || k == "non_stream_finish_reason") {
      EXPECT_EQ(o.finish_reason, v.get<std::string>());
    } else if (k == "last_chunk_with_finish_reason") {
      EXPECT_EQ(o.finish_reason, v["finish_reason"].get<std::string>());
    } else if (k == "tool_calls" || k == "tool_calls_reassembled") {
      check_calls(v, o);
    } else if (k == "content_must_not_contain" || k == "final_content_must_not_contain") {
      check_none_contains({o.content}, v, "content");
    } else if (k == "reasoning_must_not_contain") {
      check_none_contains({o.reasoning}, v, "reasoning");
    } else if (k == "arguments_must_not_contain") {
      std::vector<std::string> args;
      for (const auto& c : o.calls) args.push_back(c.arguments);
      check_none_contains(args, v, "arguments");
    } else if (k == "no_delta_contains") {
      check_none_contains(o.reasoning_deltas, v, "reasoning delta");
      check_none_contains(o.content_deltas, v, "content delta");
    } else if (k == "distinct_ids") {
      std::set<std::string> ids;
      for (const auto& c : o.calls) ids.insert(c.id);
      EXPECT_EQ(ids.size(), o.calls.size());
    } else if (k == "arguments_is_valid_json") {
      for (const auto& c : o.calls) EXPECT_TRUE(json::parse(c.arguments, nullptr, false).is_object()) << c.arguments;
    } else if (k == "name_emitted_once") {
      std::map<int, int> starts;
      for (const auto& e : o.events)
        if (e.kind == ds::ToolEvent::Kind::CallStart) ++starts[e.index];
      for (const auto& [i, n] : starts) EXPECT_EQ(n, 1) << "call " << i;
      EXPECT_EQ(starts.size(), o.calls.size());
    } else if (k == "stream_equals_nonstream") {
      // run_case compares every chunking with the non-streaming run.
    } else {
      ADD_FAILURE() << "unhandled expected key '" << k << "'";
    }
  }
}

/// Non-streaming run of `text`, then every chunking must agree with it (and with `exp` where the
/// expectation is per-delta).
Outcome run_case(const std::string& text, const ChoiceOutputOptions& opts, const json& exp,
                 const std::set<std::string>& server_keys = {}) {
  Outcome whole = ds::testing::run_choice({text}, opts);
  check_expected(exp, whole, server_keys);
  for (const auto& chunks : ds::testing::chunkings(text)) {
    Outcome s = ds::testing::run_choice(chunks, opts);
    if (!ds::testing::same_result(whole, s)) {
      ADD_FAILURE() << "chunking " << ds::testing::show(chunks) << " gives reasoning [" << s.reasoning
                    << "] content [" << s.content << "] calls " << s.calls.size();
      break;
    }
    if (exp.contains("no_delta_contains")) {
      check_none_contains(s.reasoning_deltas, exp["no_delta_contains"], "reasoning delta");
      check_none_contains(s.content_deltas, exp["no_delta_contains"], "content delta");
    }
  }
  return whole;
}

std::string tool_parser_for(const json& input) {
  std::string f = input.value("format", "deepseek-v3.2-dsml");  // D7: DSV3.2 by default
  if (f == "deepseek-v3.1") return "deepseekv31";
  if (f == "deepseek-v3.2-dsml") return "deepseekv32";
  throw std::runtime_error("unknown format " + f);
}

/// A raw_output case: thinking from the prompt suffix when given (reasoning_starts_open), else
/// the `thinking` flag (absent = chat mode).
void run_raw_case(const std::string& id, bool with_tools) {
  SCOPED_TRACE(id);
  const json& c = get_case(id);
  const json& in = c["input"];
  bool thinking = in.value("thinking", false);
  if (in.contains("prompt_suffix")) {
    EXPECT_EQ(ds::reasoning_starts_open(in["prompt_suffix"].get<std::string>()), thinking);
    thinking = ds::reasoning_starts_open(in["prompt_suffix"].get<std::string>());
  }
  ChoiceOutputOptions opts = ds::testing::choice_opts(thinking, with_tools ? tool_parser_for(in) : "");
  if (in.contains("tools"))
    for (const auto& t : in["tools"]) opts.tools.tool_names.push_back(t["function"]["name"]);
  std::string text = in["raw_output"];
  run_case(text, opts, c["expected"]);
}

}  // namespace

TEST(CasesReasoning, NoStartTagInOutput) { run_raw_case("rsn-no-start-tag-in-output", false); }
TEST(CasesReasoning, RedundantStartTag) { run_raw_case("rsn-redundant-start-tag", false); }
TEST(CasesReasoning, ThinkingDisabledStrayEndTag) { run_raw_case("rsn-thinking-disabled-stray-end-tag", false); }
TEST(CasesReasoning, AfterToolResultTurn) {
  run_raw_case("rsn-after-tool-result-turn", false);
  // The notes' chat-mode variant: the prompt ends with "\n\n</think>".
  Outcome o = run_case("It is sunny.", ds::testing::choice_opts(ds::reasoning_starts_open("</function_results>\n\n</think>")),
                       json{{"content", "It is sunny."}, {"reasoning_content", nullptr}});
}

TEST(CasesReasoning, StreamEndTagSplit) {
  const json& c = get_case("rsn-stream-end-tag-split");
  ChoiceOutputOptions opts = ds::testing::choice_opts(c["input"]["thinking"].get<bool>());
  std::vector<std::string> chunks = c["input"]["stream_chunks"];
  Outcome o = ds::testing::run_choice(chunks, opts);
  check_expected(c["expected"], o);
  std::string full;
  for (const auto& s : chunks) full += s;
  run_case(full, opts, c["expected"]);  // also_try: every 2-way split (and more)
  // Notes: a partial tag that never completes is released as ordinary reasoning text.
  run_case("a<b</th", opts, json{{"reasoning_content", "a<b</th"}, {"content", ""}});
}

TEST(CasesReasoning, LiteralThinkTagInAnswer) {
  const json& c = get_case("rsn-literal-think-tag-in-answer");
  ChoiceOutputOptions opts = ds::testing::choice_opts(c["input"]["thinking"].get<bool>());
  Outcome whole = run_case(c["input"]["raw_output"], opts, c["expected"]);
  Outcome streamed = ds::testing::run_choice(c["input"]["stream_chunks"], opts);
  EXPECT_TRUE(ds::testing::same_result(whole, streamed));
  check_expected(c["expected"], streamed);
}

TEST(CasesReasoning, N2ParserIsolation) {
  // Parser side of an HTTP case: one ChoiceOutputParser per choice index, fed interleaved.
  const json& c = get_case("rsn-n2-parser-isolation");
  bool thinking = c["input"]["request"]["chat_template_kwargs"]["thinking"];
  std::vector<std::vector<std::string>> per_choice(2);
  for (const auto& d : c["input"]["interleaved_deltas"]) per_choice[d[0].get<int>()].push_back(d[1]);
  for (const auto& want : c["expected"]["choices"]) {
    int i = want["index"];
    Outcome o = ds::testing::run_choice(per_choice[i], ds::testing::choice_opts(thinking));
    EXPECT_EQ(o.reasoning, want["reasoning_content"].get<std::string>()) << i;
    EXPECT_EQ(o.content, want["content"].get<std::string>()) << i;
  }
}

TEST(CasesTools, V31TextThenCall) { run_raw_case("tool-v31-text-then-call", true); }
TEST(CasesTools, V31NestedUnicodeArgs) { run_raw_case("tool-v31-nested-unicode-args", true); }
TEST(CasesTools, V32DsmlTypedParams) { run_raw_case("tool-v32-dsml-typed-params", true); }
TEST(CasesTools, V32BackslashesLtQuotes) { run_raw_case("tool-v32-backslashes-lt-quotes", true); }
TEST(CasesTools, V32ParallelInvokes) { run_raw_case("tool-v32-parallel-invokes", true); }
TEST(CasesTools, V32TextBeforeCall) { run_raw_case("tool-v32-text-before-call", true); }
TEST(CasesTools, V32InlineJsonBody) { run_raw_case("tool-v32-inline-json-body", true); }

TEST(CasesTools, V31StreamArgsNotEmpty) {
  const json& c = get_case("tool-v31-stream-args-not-empty");
  ChoiceOutputOptions opts = ds::testing::choice_opts(false, tool_parser_for(c["input"]));
  std::vector<std::string> chunks = c["input"]["stream_chunks"];
  Outcome o = ds::testing::run_choice(chunks, opts);
  check_expected(c["expected"], o);
  std::string full;
  for (const auto& s : chunks) full += s;
  run_case(full, opts, c["expected"]);
}

TEST(CasesTools, CallInsideReasoning) {
  const json& c = get_case("tool-call-inside-reasoning");
  for (const std::string v : {"v31", "v32"}) {
    SCOPED_TRACE(v);
    json exp = c["expected"][v];
    exp["reasoning_must_not_contain"] = c["expected"]["reasoning_must_not_contain"];
    ChoiceOutputOptions opts = ds::testing::choice_opts(c["input"]["thinking"], v == "v31" ? "deepseekv31" : "deepseekv32");
    Outcome o = run_case(c["input"]["variants"][v], opts, exp);
    EXPECT_EQ(o.content, "");
  }
}

TEST(CasesTools, StreamFinishReasonToolCalls) {
  // Parser side of an HTTP case: chat mode (no kwargs), tools given, D7 default parser deepseekv32.
  const json& c = get_case("tool-stream-finish-reason-tool-calls");
  ChoiceOutputOptions opts = ds::testing::choice_opts(false, "deepseekv32");
  for (const auto& t : c["input"]["request"]["tools"]) opts.tools.tool_names.push_back(t["function"]["name"]);
  Outcome o = run_case(c["input"]["raw_output_then_eos"], opts, c["expected"], {"finish_reason_chunks"});
  EXPECT_EQ(o.calls.size(), 1u);
  // The notes' other half: a call-free reply ends with "stop".
  EXPECT_EQ(ds::testing::run_choice({"Paris is sunny."}, opts).finish_reason, "stop");
}

TEST(CasesTools, DsmlTokenNotSkipped) {
  // The V3.2 tokenizer's 128793 `｜DSML｜` must reach the parser: decode with special tokens kept.
  const json& c = get_case("tool-v32-dsml-token-not-skipped");
  auto tok = ds::Tokenizer::load(ds::Tokenizer::default_tokenizer_json(), /*apply_v32_added_tokens=*/true);
  std::vector<int32_t> ids = c["input"]["output_token_ids"];
  std::string text = tok->decode(ids, /*skip_special_tokens=*/false);
  EXPECT_EQ(text, c["expected"]["text_seen_by_tool_parser"].get<std::string>());
  // The parser, fed that text plus the rest of a block, returns no DSML in the content.
  std::string block = text +
                      "<｜DSML｜invoke name=\"f\">\n</｜DSML｜invoke>\n</｜DSML｜function_calls>";
  Outcome o = run_case(block, ds::testing::choice_opts(false, "deepseekv32"),
                       json{{"final_content_must_not_contain", c["expected"]["final_content_must_not_contain"]},
                            {"finish_reason", "tool_calls"}});
  ASSERT_EQ(o.calls.size(), 1u);
  EXPECT_EQ(o.calls[0].arguments, "{}");
}

TEST(CasesTools, EncToolHistoryThinkingRoundTrip) {
  // Encoder case (area tool_calling): the prompt must match; the parser side: the DSML the encoder
  // writes for the assistant call parses back to the same call, and the prompt opens reasoning.
  const json& c = get_case("enc-v32-tool-history-thinking");
  std::vector<ds::ChatMessage> msgs;
  for (const auto& m : c["input"]["messages"]) {
    ds::ChatMessage cm;
    cm.role = m["role"];
    if (m.contains("content") && m["content"].is_string()) cm.content = m["content"];
    if (m.contains("reasoning_content")) cm.reasoning_content = m["reasoning_content"].get<std::string>();
    if (m.contains("tool_call_id")) cm.tool_call_id = m["tool_call_id"];
    if (m.contains("tool_calls"))
      for (const auto& t : m["tool_calls"]) {
        ds::ToolCall tc;
        tc.id = t["id"];
        tc.name = t["function"]["name"];
        tc.arguments = ds::ordered_json::parse(t["function"]["arguments"].get<std::string>());
        cm.tool_calls.push_back(tc);
      }
    msgs.push_back(cm);
  }
  ds::Dsv32EncodeOptions eo;
  eo.thinking = c["input"]["chat_template_kwargs"]["thinking"];
  std::string prompt = ds::pieces_to_string(ds::encode_dsv32(msgs, eo));
  EXPECT_EQ(prompt, c["expected"]["prompt"].get<std::string>());
  EXPECT_TRUE(ds::reasoning_starts_open(prompt));
  std::size_t a = prompt.find("\n\n<｜DSML｜function_calls>"), b = prompt.find("</｜DSML｜function_calls>");
  ASSERT_NE(a, std::string::npos);
  std::string block = prompt.substr(a, b + std::string("</｜DSML｜function_calls>").size() - a);
  Outcome o = ds::testing::run_choice({block}, ds::testing::choice_opts(false, "deepseekv32"));
  ASSERT_EQ(o.calls.size(), 1u);
  EXPECT_EQ(o.calls[0].name, "get_weather");
  EXPECT_EQ(o.calls[0].arguments, c["input"]["messages"][2]["tool_calls"][0]["function"]["arguments"].get<std::string>());
}

TEST(CasesChatTemplate, GenerationPromptSuffixSetsParserState) {
  // Parser side of enc-v32-chat-vs-thinking-suffix and enc-v32-tool-history-chat.
  const json& c = get_case("enc-v32-chat-vs-thinking-suffix");
  EXPECT_FALSE(ds::reasoning_starts_open(c["expected"]["chat_prompt"].get<std::string>()));
  EXPECT_TRUE(ds::reasoning_starts_open(c["expected"]["thinking_prompt"].get<std::string>()));
  EXPECT_FALSE(ds::reasoning_starts_open(get_case("enc-v32-tool-history-chat")["expected"]["prompt"].get<std::string>()));
}

TEST(CasesOpenAi, StopStringAcrossTokens) {
  // Parser side of api-stop-string-across-tokens (D17) through the whole choice pipeline.
  const json& c = get_case("api-stop-string-across-tokens");
  std::vector<std::string> stop = c["input"]["stop"];
  std::vector<std::string> deltas = c["input"]["generated_deltas"];
  json exp = c["expected"];
  exp["content_concat"] = exp["stream_deltas_concat"];
  exp.erase("stream_deltas_concat");
  ChoiceOutputOptions opts = ds::testing::choice_opts(false, "", stop);
  Outcome o = ds::testing::run_choice(deltas, opts);
  check_expected(exp, o);
  EXPECT_EQ(o.matched_stop, std::optional<std::string>("beta gamma"));
  std::string full;
  for (const auto& s : deltas) full += s;
  run_case(full, opts, exp);
}
