// libFuzzer target: the request parsers (chat, completions fields) and both tool-call parsers
// must never crash or hang on any input; errors are ApiError / std exceptions only.
// Input layout: byte 0 picks the target, the rest is the payload. Build/run: fuzz/run_fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "server/openai_protocol.h"
#include "text/tool_parser.h"

namespace {

void parse_request(const std::string& body) {
  try {
    ds::ChatCompletionRequest r = ds::parse_chat_request(body, 64);
    (void)r;
  } catch (const ds::ApiError&) {
  }
  try {  // the completions / generate path: shared fields on any object
    ds::ordered_json b = ds::parse_body(body);
    ds::ChatCompletionRequest r;
    ds::parse_common_fields(b, 64, r);
  } catch (const ds::ApiError&) {
  }
}

void parse_tools(const char* name, std::string_view text) {
  ds::ToolParserOptions o;
  o.make_id = [] { return std::string("call_0"); };
  auto p = ds::make_tool_parser(name, o);
  // Feed in uneven pieces so that split markers are exercised.
  size_t pos = 0, step = 1;
  while (pos < text.size()) {
    const size_t n = std::min(step, text.size() - pos);
    (void)p->feed(text.substr(pos, n));
    pos += n;
    step = step % 7 + 1;
  }
  (void)p->finish();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string payload(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: parse_request(payload); break;
    case 1: parse_tools("deepseekv32", payload); break;
    default: parse_tools("deepseekv31", payload); break;
  }
  return 0;
}
