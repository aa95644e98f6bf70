// Tool-call parser `deepseekv32`: DeepSeek-V3.2 DSML blocks (spec/serving.md 1.6, 3.2; D11, D15).
#pragma once
#include "text/tool_parser.h"

namespace ds {

/// Parses `\n\n<｜DSML｜function_calls>` ... `</｜DSML｜function_calls>` blocks (docs/parsers.md).
/// Inside the block, separated by whitespace only:
/// - `<｜DSML｜invoke name="NAME">BODY</｜DSML｜invoke>` or the self-closing `<｜DSML｜invoke name="NAME"/>`
///   (zero arguments);
/// - BODY is whitespace-separated `<｜DSML｜parameter name="K" string="true|false">V</｜DSML｜parameter>`
///   elements, or one JSON object (stripped body starts with `{` and ends with `}`), or empty.
/// Parameter values: string="true" -> the value as a JSON string, byte-exact (DeepSeek's reference
/// decoder; SGLang strips whitespace); otherwise json.loads(V.strip()), and if that fails the stripped
/// text as a string. A repeated parameter name: the last value wins, in the first one's position.
/// Attributes may be in any order, separated by whitespace, values in double quotes.
/// Anything else (stray text, unknown tags, an invalid JSON body, a block with no invoke) makes the
/// block malformed (D15). `｜DSML｜` arrives as text or as token 128793 decoded with special tokens
/// kept: both are the same string here (D11).
class ToolParserV32 final : public ToolParser {
 public:
  explicit ToolParserV32(ToolParserOptions opts = {}) : ToolParser(std::move(opts)) {}
  std::string_view name() const override { return "deepseekv32"; }

 protected:
  std::string_view block_open() const override;
  std::string_view block_close() const override;
  std::string_view block_gap() const override { return "\n\n"; }
  std::optional<std::vector<RawCall>> parse_block(std::string_view body) const override;
};

}  // namespace ds
