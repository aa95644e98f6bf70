#include "text/json_schema.h"

#include <algorithm>
#include <set>
#include <utility>

namespace ds {

using ojson = nlohmann::ordered_json;
using Kind = GrammarNode::Kind;

namespace {

constexpr int kMaxSchemaDepth = 32;

/// Keywords that only annotate (they never constrain the output).
const std::set<std::string>& annotation_keywords() {
  static const std::set<std::string> k = {"title", "description", "$schema", "$id", "default", "examples",
                                          "$comment", "strict", "readOnly", "writeOnly", "deprecated"};
  return k;
}

/// Keywords the compiler understands.
const std::set<std::string>& supported_keywords() {
  static const std::set<std::string> k = {"type",  "properties", "required", "additionalProperties", "items",
                                          "enum",  "const",      "anyOf",    "oneOf",    "minLength",
                                          "maxLength"};
  return k;
}

class Compiler {
 public:
  JsonGrammar g;

  Compiler() { g.any = make_any(); }

  int add(GrammarNode n) {
    g.nodes.push_back(std::move(n));
    return int(g.nodes.size()) - 1;
  }

  int literals(std::vector<std::string> lits) {
    std::sort(lits.begin(), lits.end());
    lits.erase(std::unique(lits.begin(), lits.end()), lits.end());
    GrammarNode n;
    n.kind = Kind::Literals;
    n.literals = std::move(lits);
    return add(std::move(n));
  }

  int simple(Kind k) {
    GrammarNode n;
    n.kind = k;
    return add(std::move(n));
  }

  int make_any() {
    const int any = simple(Kind::AnyOf);  // filled below (the graph is recursive)
    GrammarNode obj;
    obj.kind = Kind::Object;
    obj.generic = true;
    const int o = add(std::move(obj));
    GrammarNode arr;
    arr.kind = Kind::Array;
    arr.items = any;
    const int a = add(std::move(arr));
    const int s = simple(Kind::String), num = simple(Kind::Number);
    const int lit = literals({"true", "false", "null"});
    g.nodes[size_t(any)].alts = {o, a, s, num, lit};
    return any;
  }

  [[noreturn]] static void fail(const std::string& kw, const std::string& path, const std::string& why) {
    throw SchemaError(kw, path, "response_format schema" + (path.empty() ? std::string() : " at " + path) + ": " + why);
  }

  int compile(const ojson& s, const std::string& path, int depth) {
    if (depth > kMaxSchemaDepth) fail("schema", path, "nested deeper than 32 subschemas");
    if (s.is_boolean()) {
      if (s.get<bool>()) return g.any;
      fail("schema", path, "the schema `false` matches nothing");
    }
    if (!s.is_object()) fail("schema", path, std::string("expected a schema object, got ") + s.type_name());
    for (auto it = s.begin(); it != s.end(); ++it)
      if (!supported_keywords().count(it.key()) && !annotation_keywords().count(it.key()))
        fail(it.key(), path, "keyword '" + it.key() + "' is not supported by constrained decoding");

    if (s.contains("const")) return literals({s["const"].dump()});
    if (s.contains("enum")) {
      const auto& e = s["enum"];
      if (!e.is_array() || e.empty()) fail("enum", path, "'enum' must be a non-empty array");
      std::vector<std::string> lits;
      for (const auto& v : e) lits.push_back(v.dump());
      return literals(std::move(lits));
    }
    for (const char* kw : {"anyOf", "oneOf"}) {
      if (!s.contains(kw)) continue;
      for (const char* other : {"type", "properties", "items", "required", "additionalProperties"})
        if (s.contains(other))
          fail(kw, path, std::string("'") + kw + "' together with '" + other + "' is not supported (put it in each alternative)");
      if (s.contains(kw == std::string("anyOf") ? "oneOf" : "anyOf")) fail(kw, path, "'anyOf' together with 'oneOf' is not supported");
      const auto& alts = s[kw];
      if (!alts.is_array() || alts.empty()) fail(kw, path, std::string("'") + kw + "' must be a non-empty array");
      if (alts.size() > 32) fail(kw, path, std::string("'") + kw + "' with more than 32 alternatives is not supported");
      GrammarNode n;
      n.kind = Kind::AnyOf;
      for (size_t i = 0; i < alts.size(); ++i)
        n.alts.push_back(compile(alts[i], path + "/" + kw + "/" + std::to_string(i), depth + 1));
      return add(std::move(n));
    }

    std::vector<std::string> types;
    if (s.contains("type")) {
      const auto& t = s["type"];
      if (t.is_string()) {
        types.push_back(t.get<std::string>());
      } else if (t.is_array() && !t.empty()) {
        for (const auto& x : t) {
          if (!x.is_string()) fail("type", path, "'type' entries must be strings");
          types.push_back(x.get<std::string>());
        }
      } else {
        fail("type", path, "'type' must be a string or a non-empty array of strings");
      }
    } else if (s.contains("properties") || s.contains("required") || s.contains("additionalProperties")) {
      types.push_back("object");
    } else if (s.contains("items")) {
      types.push_back("array");
    } else {
      return g.any;
    }
    if (types.size() == 1) return compile_type(s, types[0], path, depth);
    GrammarNode n;
    n.kind = Kind::AnyOf;
    for (const auto& t : types) n.alts.push_back(compile_type(s, t, path, depth));
    return add(std::move(n));
  }

  int compile_type(const ojson& s, const std::string& type, const std::string& path, int depth) {
    if (type == "string") {
      GrammarNode n;
      n.kind = Kind::String;
      for (const char* kw : {"minLength", "maxLength"}) {
        if (!s.contains(kw)) continue;
        const auto& v = s[kw];
        if (!v.is_number_unsigned() || v.get<uint64_t>() > (1u << 20))
          fail(kw, path, std::string("'") + kw + "' must be an integer in [0, 1048576]");
        (kw[1] == 'i' ? n.min_length : n.max_length) = int(v.get<uint64_t>());
      }
      if (n.max_length >= 0 && n.min_length > n.max_length) fail("minLength", path, "minLength is larger than maxLength");
      return add(std::move(n));
    }
    if (type == "number") return simple(Kind::Number);
    if (type == "integer") return simple(Kind::Integer);
    if (type == "boolean") return literals({"true", "false"});
    if (type == "null") return literals({"null"});
    if (type == "array") {
      GrammarNode n;
      n.kind = Kind::Array;
      n.items = s.contains("items") ? compile(s["items"], path + "/items", depth + 1) : g.any;
      return add(std::move(n));
    }
    if (type == "object") return compile_object(s, path, depth);
    fail("type", path, "unknown type '" + type + "' (expected object, array, string, number, integer, boolean or null)");
  }

  int compile_object(const ojson& s, const std::string& path, int depth) {
    GrammarNode n;
    n.kind = Kind::Object;
    std::set<std::string> required;
    if (s.contains("required")) {
      const auto& r = s["required"];
      if (!r.is_array()) fail("required", path, "'required' must be an array of strings");
      for (const auto& k : r) {
        if (!k.is_string()) fail("required", path, "'required' must be an array of strings");
        required.insert(k.get<std::string>());
      }
    }
    bool additional = !s.contains("properties");  // absent: false with properties (strict), any without
    if (s.contains("additionalProperties")) {
      const auto& a = s["additionalProperties"];
      if (!a.is_boolean())
        fail("additionalProperties", path, "only additionalProperties true or false is supported (not a schema)");
      additional = a.get<bool>();
    }
    if (s.contains("properties")) {
      const auto& p = s["properties"];
      if (!p.is_object()) fail("properties", path, "'properties' must be an object");
      if (additional && !p.empty())
        fail("additionalProperties", path, "additionalProperties true together with 'properties' is not supported");
      for (auto it = p.begin(); it != p.end(); ++it) {
        GrammarNode::Property prop;
        prop.key_json = ojson(it.key()).dump();
        prop.required = required.count(it.key()) > 0;
        prop.node = compile(it.value(), path + "/properties/" + it.key(), depth + 1);
        n.props.push_back(std::move(prop));
      }
    }
    // The recognizer forks one configuration per key that may come next (json_recognizer.h): keep
    // that window within its configuration limit.
    for (size_t a = 0; a < n.props.size(); ++a) {
      size_t last = a;
      while (last + 1 < n.props.size() && !n.props[last].required) ++last;
      if (last - a + 1 > 48)
        fail("properties", path, "more than 48 optional properties in a row are not supported (mark some required)");
    }
    for (const auto& k : required) {
      bool found = false;
      for (const auto& prop : n.props) found = found || prop.key_json == ojson(k).dump();
      if (!found) fail("required", path, "required key '" + k + "' is not in 'properties'");
    }
    n.generic = additional;
    return add(std::move(n));
  }
};

}  // namespace

JsonGrammar compile_json_schema(const ojson& schema) {
  Compiler c;
  c.g.root = c.compile(schema, "", 0);
  return std::move(c.g);
}

std::string json_schema_keywords_help() {
  std::string out = "supported: ";
  bool first = true;
  for (const auto& k : supported_keywords()) out += (std::exchange(first, false) ? "" : ", ") + k;
  out += "; ignored annotations: ";
  first = true;
  for (const auto& k : annotation_keywords()) out += (std::exchange(first, false) ? "" : ", ") + k;
  return out;
}

JsonGrammar json_object_grammar() {
  Compiler c;
  GrammarNode obj;
  obj.kind = Kind::Object;
  obj.generic = true;
  c.g.root = c.add(std::move(obj));
  return std::move(c.g);
}

}  // namespace ds
