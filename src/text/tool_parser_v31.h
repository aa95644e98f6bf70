// Tool-call parser `deepseekv31`: the V3.1 / V3.2-Exp token format (spec/serving.md 3.1; D15).
#pragma once
#include "text/tool_parser.h"

namespace ds {

/// Parses `<｜tool▁calls▁begin｜>` CALL* `<｜tool▁calls▁end｜>` where each CALL is
/// `<｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGS<｜tool▁call▁end｜>` (calls concatenated; whitespace
/// between them is tolerated). NAME is whitespace-stripped and must be non-empty; ARGS must be a JSON
/// object (json.loads) and is re-printed as json.dumps(obj, ensure_ascii=False), like SGLang's
/// non-streaming path. Anything else makes the block malformed (D15). No text before the block is
/// dropped (the V3.1 format writes no separator).
class ToolParserV31 final : public ToolParser {
 public:
  explicit ToolParserV31(ToolParserOptions opts = {}) : ToolParser(std::move(opts)) {}
  std::string_view name() const override { return "deepseekv31"; }

 protected:
  std::string_view block_open() const override;
  std::string_view block_close() const override;
  std::string_view block_gap() const override { return ""; }
  std::optional<std::vector<RawCall>> parse_block(std::string_view body) const override;
};

}  // namespace ds
