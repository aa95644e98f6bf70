// JSON-schema compiler and byte-level recognizer (src/text/json_schema.*, json_recognizer.*):
// accepted and rejected texts per schema, prefixes, completion, and compile errors naming the keyword.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "text/json_recognizer.h"
#include "text/json_schema.h"

using ds::JsonGrammar;
using ds::JsonRecognizer;
using ojson = nlohmann::ordered_json;

namespace {

std::shared_ptr<const JsonGrammar> schema(const char* text) {
  return std::make_shared<const JsonGrammar>(ds::compile_json_schema(ojson::parse(text)));
}

/// True when the whole text is a complete value of the grammar.
bool accepts(const std::shared_ptr<const JsonGrammar>& g, const std::string& text) {
  JsonRecognizer r(g);
  return r.feed(text) && r.can_end();
}

/// True when the text is a prefix of some accepted value (fed whole, or byte by byte: same answer).
bool prefix_ok(const std::shared_ptr<const JsonGrammar>& g, const std::string& text) {
  JsonRecognizer whole(g), bytes(g);
  bool b = true;
  for (char c : text) b = b && bytes.feed(std::string(1, c));
  const bool w = whole.feed(text);
  EXPECT_EQ(w, b) << text;
  return w;
}

std::string schema_error_keyword(const char* text) {
  try {
    ds::compile_json_schema(ojson::parse(text));
  } catch (const ds::SchemaError& e) {
    EXPECT_NE(std::string(e.what()).find(e.keyword), std::string::npos) << e.what();
    return e.keyword;
  }
  return "<no error>";
}

}  // namespace

TEST(JsonRecognizer, CaseSchemaCityObject) {
  // The handed case api-json-schema-with-thinking.
  auto g = schema(R"({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]})");
  for (const char* ok : {R"({"city":"Paris"})", R"({ "city" : "Paris" })", "{\n  \"city\": \"Par\\u00eds\\n\"\n}",
                         R"({"city":""})", "{\"city\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}", "  {\"city\":\"x\"}"})
    EXPECT_TRUE(accepts(g, ok)) << ok;
  for (const char* bad : {R"({})", R"({"town":"Paris"})", R"({"city":1})", R"({"city":"Paris",})",
                          R"({"city":"Paris","city":"x"})", R"({"city":"Paris"} )", R"({"city":"Paris"}})",
                          R"({"city":"a\x"})", "{\"city\":\"a\nb\"}", "{\"city\":\"\xc3\"}", "{\"city\":\"\xff\"}",
                          R"([{"city":"Paris"}])", "", R"("Paris")"})
    EXPECT_FALSE(accepts(g, bad)) << bad;
  // Prefixes: fine until the first wrong byte.
  EXPECT_TRUE(prefix_ok(g, R"({"ci)"));
  EXPECT_TRUE(prefix_ok(g, R"({"city":"Pa)"));
  EXPECT_FALSE(prefix_ok(g, R"({"cx)"));
  EXPECT_FALSE(prefix_ok(g, R"({})"));  // '}' needs the required key first
  EXPECT_FALSE(prefix_ok(g, R"(x)"));
  JsonRecognizer r(g);
  EXPECT_TRUE(r.feed(R"({"city":"Paris")"));
  EXPECT_FALSE(r.can_end());
  EXPECT_FALSE(r.feed("]"));  // a rejected feed leaves the state unchanged
  EXPECT_TRUE(r.feed("}"));
  EXPECT_TRUE(r.can_end());
  EXPECT_FALSE(r.feed(" "));  // nothing after the value
}

TEST(JsonRecognizer, WhitespaceRunsAreCapped) {
  auto g = schema(R"({"type":"integer"})");
  EXPECT_TRUE(accepts(g, std::string(32, ' ') + "7"));
  EXPECT_FALSE(accepts(g, std::string(33, ' ') + "7"));
}

TEST(JsonRecognizer, StringLengthBoundsCountCharacters) {
  auto g = schema(R"({"type":"string","minLength":2,"maxLength":3})");
  for (const char* ok : {R"("ab")", R"("abc")", "\"\xc3\xa9\xe2\x82\xac\"", R"("a\n")", R"("\u00e9\t")"})
    EXPECT_TRUE(accepts(g, ok)) << ok;
  for (const char* bad : {R"("a")", R"("abcd")", R"("")", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80x\"", R"("\n\n\n\n")"})
    EXPECT_FALSE(accepts(g, bad)) << bad;
  EXPECT_EQ(schema_error_keyword(R"({"type":"string","minLength":-1})"), "minLength");
  EXPECT_EQ(schema_error_keyword(R"({"type":"string","minLength":3,"maxLength":2})"), "minLength");
}

TEST(JsonRecognizer, OptionalPropertiesKeepSchemaOrder) {
  auto g = schema(R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"boolean"},
                     "c":{"type":"null"}},"required":["b"],"additionalProperties":false})");
  for (const char* ok : {R"({"b":true})", R"({"a":1,"b":false})", R"({"a":-0,"b":true,"c":null})", R"({"b":true,"c":null})"})
    EXPECT_TRUE(accepts(g, ok)) << ok;
  for (const char* bad : {R"({"a":1})", R"({"b":true,"a":1})", R"({"c":null,"b":true})", R"({"a":1.5,"b":true})",
                          R"({"a":01,"b":true})", R"({"b":tru})", R"({"b":true,"d":1})", R"({"a":1,})"})
    EXPECT_FALSE(accepts(g, bad)) << bad;
}

TEST(JsonRecognizer, Numbers) {
  auto g = schema(R"({"type":"array","items":{"type":"number"}})");
  for (const char* ok : {"[]", "[0]", "[-0.5e+10,1E3,12.25,-7]", "[ 1 , 2 ]", "[1e5]"})
    EXPECT_TRUE(accepts(g, ok)) << ok;
  for (const char* bad : {"[01]", "[1.]", "[.5]", "[-]", "[1e]", "[+1]", "[1,]", "[,1]", "[1 2]", "[NaN]"})
    EXPECT_FALSE(accepts(g, bad)) << bad;
  auto top = schema(R"({"type":"number"})");
  JsonRecognizer r(top);
  EXPECT_TRUE(r.feed("12"));
  EXPECT_TRUE(r.can_end());  // a top-level number may end at EOS...
  EXPECT_TRUE(r.feed("5.0"));  // ...or go on
  EXPECT_TRUE(r.can_end());
  EXPECT_TRUE(r.feed("e"));
  EXPECT_FALSE(r.can_end());
}

TEST(JsonRecognizer, EnumConstAndAnyOf) {
  auto g = schema(R"({"type":"object","properties":{
      "unit":{"type":"string","enum":["c","celsius","f"]},
      "n":{"enum":[1,12,null,{"k":[true]}]},
      "v":{"anyOf":[{"type":"string"},{"type":"integer"},{"type":"array","items":{"const":"x"}}]},
      "t":{"type":["string","null"]}},
    "required":["unit","n","v","t"]})");
  for (const char* ok : {R"({"unit":"c","n":1,"v":"s","t":null})", R"({"unit":"celsius","n":12,"v":5,"t":"q"})",
                         R"({"unit":"f","n":null,"v":["x","x"],"t":null})", R"({"unit":"f","n":{"k":[true]},"v":[],"t":""})"})
    EXPECT_TRUE(accepts(g, ok)) << ok;
  for (const char* bad : {R"({"unit":"cel","n":1,"v":"s","t":null})", R"({"unit":"c","n":2,"v":"s","t":null})",
                          R"({"unit":"c","n":123,"v":"s","t":null})", R"({"unit":"c","n":1,"v":1.5,"t":null})",
                          R"({"unit":"c","n":1,"v":["y"],"t":null})", R"({"unit":"c","n":1,"v":"s","t":1})",
                          R"({"unit":"c","n":{"k": [true]},"v":"s","t":null})"})
    EXPECT_FALSE(accepts(g, bad)) << bad;
}

TEST(JsonRecognizer, LargeEnum) {
  // 3000 literals sharing prefixes: each byte narrows a sorted range.
  nlohmann::ordered_json e = nlohmann::ordered_json::array();
  for (int i = 0; i < 3000; ++i) e.push_back("v" + std::to_string(i * 7));
  e.push_back(12);
  e.push_back(123);
  auto g = std::make_shared<const JsonGrammar>(ds::compile_json_schema(nlohmann::ordered_json{{"enum", e}}));
  for (const char* ok : {R"("v0")", R"("v7")", R"("v20993")", "12", "123"}) EXPECT_TRUE(accepts(g, ok)) << ok;
  for (const char* bad : {R"("v1")", R"("v20994")", R"("v")", "1", "1234", R"("v0 ")"}) EXPECT_FALSE(accepts(g, bad)) << bad;
}

TEST(JsonRecognizer, JsonObjectAndAnyValue) {
  auto g = std::make_shared<const JsonGrammar>(ds::json_object_grammar());
  for (const char* ok : {"{}", R"({"a":[1,{"b":null}],"c":"d","a":true})", R"({"x":{"y":{"z":[[],[-1.5e3]]}}})"})
    EXPECT_TRUE(accepts(g, ok)) << ok;
  for (const char* bad : {"[]", "1", R"({"a"})", R"({a:1})", R"({"a":1}{)", "null"})
    EXPECT_FALSE(accepts(g, bad)) << bad;
  auto any = schema("{}");
  for (const char* ok : {"[]", "1", "\"s\"", "true", "null", "{\"a\":{}}"}) EXPECT_TRUE(accepts(any, ok)) << ok;
  // An empty object schema with additionalProperties false allows only {}.
  auto empty = schema(R"({"type":"object","additionalProperties":false})");
  EXPECT_TRUE(accepts(empty, "{ }"));
  EXPECT_FALSE(accepts(empty, R"({"a":1})"));
}

TEST(JsonSchemaCompile, UnsupportedKeywordsAreNamed) {
  EXPECT_EQ(schema_error_keyword(R"({"type":"string","pattern":"^a"})"), "pattern");
  EXPECT_EQ(schema_error_keyword(R"({"type":"object","properties":{"a":{"$ref":"#/$defs/A"}}})"), "$ref");
  EXPECT_EQ(schema_error_keyword(R"({"type":"integer","minimum":0})"), "minimum");
  EXPECT_EQ(schema_error_keyword(R"({"allOf":[{"type":"string"}]})"), "allOf");
  EXPECT_EQ(schema_error_keyword(R"({"type":"array","minItems":1})"), "minItems");
  EXPECT_EQ(schema_error_keyword(R"({"type":"strin"})"), "type");
  EXPECT_EQ(schema_error_keyword(R"({"type":"object","properties":{"a":{}},"required":["b"]})"), "required");
  EXPECT_EQ(schema_error_keyword(R"({"enum":[]})"), "enum");
  EXPECT_EQ(schema_error_keyword(R"({"type":"object","properties":{"a":{}},"additionalProperties":true})"),
            "additionalProperties");
  EXPECT_EQ(schema_error_keyword(R"({"type":"object","additionalProperties":{"type":"string"}})"), "additionalProperties");
  EXPECT_EQ(schema_error_keyword(R"("string")"), "schema");
  EXPECT_EQ(schema_error_keyword("false"), "schema");
  // Limits that keep the recognizer's configuration count bounded.
  std::string many = R"({"type":"object","properties":{)";
  for (int i = 0; i < 49; ++i) many += (i ? "," : "") + std::string("\"k") + std::to_string(i) + "\":{}";
  EXPECT_EQ(schema_error_keyword((many + "}}").c_str()), "properties");
  EXPECT_EQ(schema_error_keyword((many + R"(},"required":["k24"]})").c_str()), "<no error>");
  std::string alts = R"({"anyOf":[)";
  for (int i = 0; i < 33; ++i) alts += (i ? "," : "") + std::string(R"({"const":)") + std::to_string(i) + "}";
  EXPECT_EQ(schema_error_keyword((alts + "]}").c_str()), "anyOf");
  // Annotations are accepted.
  EXPECT_EQ(schema_error_keyword(R"({"title":"T","description":"d","type":"object","$schema":"x",
                                   "properties":{"a":{"type":"string","default":"q"}}})"), "<no error>");
  // The path names the subschema.
  try {
    ds::compile_json_schema(ojson::parse(R"({"type":"object","properties":{"a":{"type":"array","items":{"format":"date"}}}})"));
    FAIL();
  } catch (const ds::SchemaError& e) {
    EXPECT_EQ(e.keyword, "format");
    EXPECT_EQ(e.path, "/properties/a/items");
  }
  // Too deep.
  std::string deep = R"({"type":"string"})";
  for (int i = 0; i < 40; ++i) deep = R"({"type":"array","items":)" + deep + "}";
  EXPECT_EQ(schema_error_keyword(deep.c_str()), "schema");
}
