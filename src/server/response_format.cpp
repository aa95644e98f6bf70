#include "server/response_format.h"

#include "server/chat_service.h"
#include "text/encoding_dsv32.h"

namespace ds {

namespace {

[[noreturn]] void bad(const std::string& param, const std::string& msg) { throw ApiError(400, msg, param); }

std::shared_ptr<const JsonGrammar> compile(const ordered_json& schema, const std::string& param) {
  try {
    return std::make_shared<const JsonGrammar>(compile_json_schema(schema));
  } catch (const SchemaError& e) {
    // The compiler names the schema "response_format schema"; the client's field is `param`.
    std::string msg = e.what();
    const std::string generic = "response_format schema";
    if (msg.rfind(generic, 0) == 0) msg = param + msg.substr(generic.size());
    bad(param, msg + " (" + json_schema_keywords_help() + "; docs/constrained_decoding.md)");
  }
}

bool present(const ordered_json& body, const char* key) { return body.contains(key) && !body[key].is_null(); }

}  // namespace

void parse_structured_output(const ordered_json& body, ChatCompletionRequest& r) {
  if (present(body, "debug_forced_prefix")) {
    if (!body["debug_forced_prefix"].is_string()) bad("debug_forced_prefix", "debug_forced_prefix: expected a string");
    r.debug_forced_prefix = body["debug_forced_prefix"].get<std::string>();
  }
  const bool rf = present(body, "response_format");
  const bool js = present(body, "json_schema") &&
                  !(body["json_schema"].is_string() && body["json_schema"].get<std::string>().empty());
  if (js) {
    if (rf && !(body["response_format"].is_object() && body["response_format"].value("type", "") == "text"))
      bad("json_schema", "json_schema and response_format cannot both be set");
    if (!body["json_schema"].is_string()) bad("json_schema", "json_schema: expected the schema as a JSON string");
    ordered_json schema;
    int too_deep = 0;  // the same nesting limit as request bodies (D21): dump() and compile recurse
    try {
      schema = ordered_json::parse(body["json_schema"].get<std::string>(),
                                   [&](int depth, ordered_json::parse_event_t, ordered_json&) {
                                     if (depth > 64) too_deep = depth;
                                     return true;
                                   });
    } catch (const std::exception& e) {
      bad("json_schema", "json_schema: not valid JSON: " + json_error_text(e));
    }
    if (too_deep) bad("json_schema", "json_schema: nested deeper than 64 levels");
    r.grammar = compile(schema, "json_schema");
    return;
  }
  if (!rf) return;
  const auto& f = body["response_format"];
  if (!f.is_object() || !f.contains("type") || !f["type"].is_string())
    bad("response_format", "response_format: expected an object with a string 'type'");
  const std::string type = f["type"].get<std::string>();
  if (type == "text") return;
  if (type == "json_object") {
    r.grammar = std::make_shared<const JsonGrammar>(json_object_grammar());
    return;
  }
  if (type != "json_schema")
    bad("response_format", "response_format type '" + type + "' is not supported; use 'text', 'json_object' or 'json_schema'");
  // {"type": "json_schema", "schema": ...} (the schema without its json_schema wrapper) is accepted too.
  const char* jp = "response_format.json_schema";
  if (present(f, "json_schema")) {
    if (!f["json_schema"].is_object())
      bad(jp, std::string(jp) + ": expected an object {\"name\": ..., \"schema\": {...}}");
    if (!present(f["json_schema"], "schema"))
      bad(jp, std::string(jp) + ".schema: field required (the JSON Schema of the response)");
    r.grammar = compile(f["json_schema"]["schema"], "response_format.json_schema.schema");
    return;
  }
  if (!present(f, "schema"))
    bad(jp, std::string(jp) + ": field required for response_format type 'json_schema' (an object with a 'schema')");
  r.grammar = compile(f["schema"], "response_format.schema");
}

std::shared_ptr<TokenConstraint> make_json_constraint(const ServeContext& ctx,
                                                      const std::shared_ptr<const JsonGrammar>& grammar,
                                                      const std::vector<int32_t>& end_ids, bool think_open) {
  if (!grammar) return nullptr;
  int32_t think_end = -1;
  if (think_open) {
    auto id = ctx.tokenizer->token_to_id(dsv32::kThinkEnd);
    if (id) think_end = *id;
  }
  return std::make_shared<JsonConstraint>(grammar, TokenTrie::for_tokenizer(*ctx.tokenizer), end_ids, think_end);
}

}  // namespace ds
