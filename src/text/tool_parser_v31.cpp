// `deepseekv31` block decoding (spec/serving.md 3.1). See tool_parser_v31.h.
#include "text/tool_parser_v31.h"

namespace ds {
namespace {
constexpr std::string_view kCallsBegin = "<｜tool▁calls▁begin｜>";
constexpr std::string_view kCallsEnd = "<｜tool▁calls▁end｜>";
constexpr std::string_view kCallBegin = "<｜tool▁call▁begin｜>";
constexpr std::string_view kCallEnd = "<｜tool▁call▁end｜>";
constexpr std::string_view kSep = "<｜tool▁sep｜>";
constexpr std::string_view kWs = " \t\n\r\f\v";

std::string_view strip(std::string_view s) {
  std::size_t b = s.find_first_not_of(kWs);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(kWs) - b + 1);
}
}  // namespace

std::string_view ToolParserV31::block_open() const { return kCallsBegin; }
std::string_view ToolParserV31::block_close() const { return kCallsEnd; }

std::optional<std::vector<ToolParser::RawCall>> ToolParserV31::parse_block(std::string_view body) const {
  std::vector<RawCall> calls;
  std::size_t i = 0;
  for (;;) {
    std::size_t next = body.find_first_not_of(kWs, i);
    if (next == std::string_view::npos) break;
    if (body.substr(next, kCallBegin.size()) != kCallBegin) return std::nullopt;  // stray text
    std::size_t name_at = next + kCallBegin.size();
    std::size_t end = body.find(kCallEnd, name_at);
    if (end == std::string_view::npos) return std::nullopt;
    std::string_view call = body.substr(name_at, end - name_at);
    std::size_t sep = call.find(kSep);
    if (sep == std::string_view::npos) return std::nullopt;
    std::string_view name = strip(call.substr(0, sep));
    std::string_view args = call.substr(sep + kSep.size());
    if (name.empty() || name.find('<') != std::string_view::npos) return std::nullopt;
    ordered_json parsed = ordered_json::parse(args, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.is_object()) return std::nullopt;
    calls.push_back({std::string(name), std::move(parsed)});
    i = end + kCallEnd.size();
  }
  return calls;
}

}  // namespace ds
