// `deepseekv32` DSML block decoding (spec/serving.md 1.6, 3.2). See tool_parser_v32.h.
#include "text/tool_parser_v32.h"

#include <map>

namespace ds {
namespace {
constexpr std::string_view kOpen = "<｜DSML｜function_calls>";
constexpr std::string_view kClose = "</｜DSML｜function_calls>";
constexpr std::string_view kInvoke = "<｜DSML｜invoke";
constexpr std::string_view kInvokeEnd = "</｜DSML｜invoke>";
constexpr std::string_view kParam = "<｜DSML｜parameter";
constexpr std::string_view kParamEnd = "</｜DSML｜parameter>";
constexpr std::string_view kWs = " \t\n\r\f\v";

bool is_ws(char c) { return kWs.find(c) != std::string_view::npos; }

std::string_view strip(std::string_view s) {
  std::size_t b = s.find_first_not_of(kWs);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(kWs) - b + 1);
}

/// Parsed start tag: attributes and whether it was self-closing ("/>").
struct Tag {
  std::map<std::string, std::string, std::less<>> attrs;
  bool self_closing = false;
  std::size_t end = 0;  // offset just past '>'
};

/// Parses `(\s+KEY="VALUE")*\s*/?>` at s[i] (right after the tag name). nullopt if malformed.
/// A tag name must be followed by whitespace or the tag end (so `<｜DSML｜invokeX` is not an invoke).
std::optional<Tag> parse_attrs(std::string_view s, std::size_t i) {
  Tag tag;
  for (;;) {
    std::size_t j = i;
    while (j < s.size() && is_ws(s[j])) ++j;
    if (j >= s.size()) return std::nullopt;
    if (s[j] == '>') {
      tag.end = j + 1;
      return tag;
    }
    if (s.substr(j, 2) == "/>") {
      tag.self_closing = true;
      tag.end = j + 2;
      return tag;
    }
    if (j == i) return std::nullopt;  // attributes must be separated by whitespace
    std::size_t eq = s.find('=', j);
    if (eq == std::string_view::npos) return std::nullopt;
    std::string_view key = s.substr(j, eq - j);
    if (key.empty() || key.find_first_of(" \t\n\r\f\v<>\"/") != std::string_view::npos) return std::nullopt;
    if (eq + 1 >= s.size() || s[eq + 1] != '"') return std::nullopt;
    std::size_t close = s.find('"', eq + 2);
    if (close == std::string_view::npos) return std::nullopt;
    tag.attrs[std::string(key)] = std::string(s.substr(eq + 2, close - eq - 2));
    i = close + 1;
  }
}

/// Decodes one parameter value: string="true" verbatim as a string, else JSON with a string fallback.
ordered_json param_value(std::string_view value, bool is_string) {
  if (is_string) return ordered_json(std::string(value));
  std::string_view v = strip(value);
  ordered_json parsed = ordered_json::parse(v, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return ordered_json(std::string(v));
  return parsed;
}

/// Decodes an invoke body (between `>` and `</｜DSML｜invoke>`) into an arguments object.
std::optional<ordered_json> parse_body(std::string_view body) {
  ordered_json args = ordered_json::object();
  std::string_view trimmed = strip(body);
  if (trimmed.empty()) return args;
  if (trimmed.front() == '{' && trimmed.back() == '}') {  // "direct JSON" body (spec 3.2)
    ordered_json parsed = ordered_json::parse(trimmed, nullptr, false);
    if (parsed.is_discarded() || !parsed.is_object()) return std::nullopt;
    return parsed;
  }
  std::size_t i = 0;
  for (;;) {
    std::size_t next = body.find_first_not_of(kWs, i);
    if (next == std::string_view::npos) return args;
    if (body.substr(next, kParam.size()) != kParam) return std::nullopt;  // stray text in the body
    std::optional<Tag> tag = parse_attrs(body, next + kParam.size());
    if (!tag || tag->self_closing) return std::nullopt;
    auto name = tag->attrs.find("name");
    if (name == tag->attrs.end() || name->second.empty()) return std::nullopt;
    std::size_t end = body.find(kParamEnd, tag->end);
    if (end == std::string_view::npos) return std::nullopt;
    auto str = tag->attrs.find("string");
    bool is_string = str != tag->attrs.end() && str->second == "true";
    args[name->second] = param_value(body.substr(tag->end, end - tag->end), is_string);
    i = end + kParamEnd.size();
  }
}
}  // namespace

std::string_view ToolParserV32::block_open() const { return kOpen; }
std::string_view ToolParserV32::block_close() const { return kClose; }

std::optional<std::vector<ToolParser::RawCall>> ToolParserV32::parse_block(std::string_view body) const {
  std::vector<RawCall> calls;
  std::size_t i = 0;
  for (;;) {
    std::size_t next = body.find_first_not_of(kWs, i);
    if (next == std::string_view::npos) break;
    if (body.substr(next, kInvoke.size()) != kInvoke) return std::nullopt;
    std::optional<Tag> tag = parse_attrs(body, next + kInvoke.size());
    if (!tag) return std::nullopt;
    auto name = tag->attrs.find("name");
    if (name == tag->attrs.end() || name->second.empty()) return std::nullopt;
    if (tag->self_closing) {
      calls.push_back({name->second, ordered_json::object()});
      i = tag->end;
      continue;
    }
    std::size_t end = body.find(kInvokeEnd, tag->end);
    if (end == std::string_view::npos) return std::nullopt;
    std::optional<ordered_json> args = parse_body(body.substr(tag->end, end - tag->end));
    if (!args) return std::nullopt;
    calls.push_back({name->second, std::move(*args)});
    i = end + kInvokeEnd.size();
  }
  return calls;
}

}  // namespace ds
