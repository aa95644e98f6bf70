// JSON Schema -> grammar for constrained decoding (response_format json_schema / json_object,
// spec/serving.md 4.2 "response_format"; docs/constrained_decoding.md). The grammar is a graph of
// nodes; json_recognizer.h runs it byte by byte.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ds {

/// A schema the compiler cannot honour. `keyword` names the JSON Schema keyword (e.g. "pattern",
/// "$ref") or "schema" for a malformed schema; `path` is a JSON pointer to the offending subschema.
struct SchemaError : std::runtime_error {
  std::string keyword, path;
  SchemaError(const std::string& keyword_, const std::string& path_, const std::string& msg)
      : std::runtime_error(msg), keyword(keyword_), path(path_) {}
};

/// One grammar node. Kinds:
/// - Object: declared `props` in schema order (the output keeps this order; required ones must
///   appear, optional ones may be skipped, each at most once); `generic` objects (no `properties`)
///   take any string keys with Any values.
/// - Array: `items` node (every element), or Any when the schema has no `items`.
/// - String (optionally minLength/maxLength in characters: code points, an escape is one),
///   Number (JSON number), Integer (-?(0|[1-9][0-9]*)).
/// - Literals: the output is exactly one of `literals` (compact JSON text of each enum/const value,
///   also true/false/null), sorted bytewise, duplicates removed.
/// - AnyOf: one of `alts` (anyOf, oneOf, a `type` array, and Any).
struct GrammarNode {
  enum class Kind : uint8_t { Object, Array, String, Number, Integer, Literals, AnyOf };
  struct Property {
    std::string key_json;  // the key as JSON text, quotes included: "\"city\""
    int node = -1;
    bool required = false;
  };
  Kind kind = Kind::AnyOf;
  std::vector<Property> props;
  bool generic = false;
  int items = -1;
  int min_length = 0, max_length = -1;  // String: length bounds in characters (-1: none)
  std::vector<std::string> literals;
  std::vector<int> alts;
};

/// A compiled grammar: nodes plus the root. Immutable after compile; shared by the recognizers of
/// every choice of a request.
struct JsonGrammar {
  std::vector<GrammarNode> nodes;
  int root = -1;
  int any = -1;  // the node "any JSON value"
};

/// Compiles a JSON Schema (the supported subset, docs/constrained_decoding.md): `type` (object,
/// array, string, number, integer, boolean, null, or an array of these), `properties`, `required`,
/// `additionalProperties: false` (also the meaning when absent, as xgrammar's strict mode; `true`
/// only without `properties`), `items`, `enum`, `const`, `anyOf`, `oneOf` (treated as anyOf),
/// `minLength` / `maxLength` (strings), and
/// annotations that do not constrain (title, description, $schema, $id, default, examples,
/// $comment, strict). An empty schema `{}` or `true` is any JSON value.
/// Throws SchemaError naming the keyword for anything else (pattern, format, $ref, allOf,
/// not, if, minimum, minItems, ...), for a non-object schema, unknown `type` names, `required`
/// keys missing from `properties`, an empty `enum`, or nesting deeper than 32 subschemas.
JsonGrammar compile_json_schema(const nlohmann::ordered_json& schema);

/// The keywords compile_json_schema honours and those it accepts as annotations, for messages:
/// "supported: a, b, ...; ignored annotations: c, d, ..." (built from the compiler's own tables).
std::string json_schema_keywords_help();

/// The grammar of `response_format: {"type": "json_object"}`: any JSON object (SGLang maps it to the
/// schema {"type": "object"}).
JsonGrammar json_object_grammar();

}  // namespace ds
