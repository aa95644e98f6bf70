#include "text/json_recognizer.h"

#include <algorithm>
#include <unordered_map>

namespace ds {

using Kind = GrammarNode::Kind;
using Frame = JsonRecognizer::Frame;

namespace {

enum FrameKind : uint8_t { kDoc, kObject, kArray, kString, kNumber, kLiteral };

// Doc states. c counts leading whitespace.
enum : uint8_t { D_START, D_VALUE, D_DONE };
// Object states. a = index of the next declared property that may come, b = the current key's
// property, c = whitespace count (or the position inside the declared key in O_KEY).
enum : uint8_t { O_OPEN, O_COMMA, O_KEY, O_KEYCHILD, O_COLON, O_VALUE_WS, O_VALUE, O_AFTER };
// Array states. c = whitespace count.
enum : uint8_t { A_OPEN, A_COMMA, A_VALUE, A_AFTER };
// Number states (RFC 8259 number grammar).
enum : uint8_t { N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_EXP, N_EXP_SIGN, N_EXP_DIG };
// String: a = pending UTF-8 continuation bytes, b = escape (0 none, 1 after '\', 10 + k: k hex digits left).

bool is_ws(uint8_t x) { return x == ' ' || x == '\n' || x == '\t' || x == '\r'; }
bool is_digit(uint8_t x) { return x >= '0' && x <= '9'; }
bool is_hex(uint8_t x) { return is_digit(x) || (x >= 'a' && x <= 'f') || (x >= 'A' && x <= 'F'); }

}  // namespace

JsonRecognizer::JsonRecognizer(std::shared_ptr<const JsonGrammar> grammar) : g_(std::move(grammar)) {
  Frame doc;
  doc.kind = kDoc;
  doc.state = D_START;
  configs_.push_back(push(doc));
}

int32_t JsonRecognizer::push(const Frame& f) {
  arena_.push_back(f);
  return int32_t(arena_.size()) - 1;
}

int32_t JsonRecognizer::with(int32_t idx, uint8_t state, int32_t c) {
  Frame f = arena_[size_t(idx)];
  f.state = state;
  f.c = c;
  return push(f);
}

// Allowed declared keys after property index a: a .. the first required one at or after a.
namespace {
int last_allowed(const GrammarNode& n, int a) {
  for (int j = a; j < int(n.props.size()); ++j)
    if (n.props[size_t(j)].required) return j;
  return int(n.props.size()) - 1;
}
bool can_close(const GrammarNode& n, int a) {
  if (n.generic) return true;
  for (int j = a; j < int(n.props.size()); ++j)
    if (n.props[size_t(j)].required) return false;
  return true;
}
bool can_more(const GrammarNode& n, int a) { return n.generic || a < int(n.props.size()); }
}  // namespace

void JsonRecognizer::start_value(int node, int32_t parent, uint8_t x, std::vector<int32_t>& out) {
  const GrammarNode& n = g_->nodes[size_t(node)];
  Frame f;
  f.parent = parent;
  f.node = node;
  switch (n.kind) {
    case Kind::AnyOf:
      for (int alt : n.alts) start_value(alt, parent, x, out);
      return;
    case Kind::Object:
      if (x != '{') return;
      f.kind = kObject;
      f.state = O_OPEN;
      out.push_back(push(f));
      return;
    case Kind::Array:
      if (x != '[') return;
      f.kind = kArray;
      f.state = A_OPEN;
      out.push_back(push(f));
      return;
    case Kind::String:
      if (x != '"') return;
      f.kind = kString;
      out.push_back(push(f));
      return;
    case Kind::Number:
    case Kind::Integer:
      f.kind = kNumber;
      if (x == '-') f.state = N_MINUS;
      else if (x == '0') f.state = N_ZERO;
      else if (is_digit(x)) f.state = N_INT;
      else return;
      out.push_back(push(f));
      return;
    case Kind::Literals: {
      const auto& L = n.literals;  // sorted, non-empty: those starting with x are one range
      auto lo_it = std::partition_point(L.begin(), L.end(), [&](const std::string& s) { return uint8_t(s[0]) < x; });
      auto hi_it = std::partition_point(lo_it, L.end(), [&](const std::string& s) { return uint8_t(s[0]) == x; });
      if (lo_it == hi_it) return;
      const int lo = int(lo_it - L.begin()), hi = int(hi_it - L.begin());
      if (hi - lo == 1 && L[size_t(lo)].size() == 1) {  // a one-byte literal: done
        out.push_back(complete(parent));
        return;
      }
      f.kind = kLiteral;
      f.a = lo;
      f.b = hi;
      f.c = 1;
      out.push_back(push(f));
      return;
    }
  }
}

int32_t JsonRecognizer::complete(int32_t parent) {
  const Frame& p = arena_[size_t(parent)];
  switch (p.kind) {
    case kDoc: return with(parent, D_DONE, 0);
    case kObject: return with(parent, p.state == O_KEYCHILD ? O_COLON : O_AFTER, 0);
    default: return with(parent, A_AFTER, 0);  // kArray (A_VALUE)
  }
}

bool JsonRecognizer::completable(const Frame& f) const {
  if (f.kind == kNumber) return f.state == N_ZERO || f.state == N_INT || f.state == N_FRAC || f.state == N_EXP_DIG;
  if (f.kind == kLiteral) return int(g_->nodes[size_t(f.node)].literals[size_t(f.a)].size()) == f.c;
  return false;
}

void JsonRecognizer::step(int32_t top, uint8_t x, std::vector<int32_t>& out) {
  const Frame f = arena_[size_t(top)];
  switch (f.kind) {
    case kDoc:
      if (f.state != D_START) return;  // D_DONE: nothing may follow the value
      if (is_ws(x)) {
        if (f.c < kMaxWhitespace) out.push_back(with(top, D_START, f.c + 1));
        return;
      }
      start_value(g_->root, with(top, D_VALUE, 0), x, out);
      return;
    case kObject: step_object(top, x, out); return;
    case kArray: step_array(top, x, out); return;
    case kString: step_string(top, x, out); return;
    case kNumber: step_number(top, x, out); return;
    default: step_literal(top, x, out); return;
  }
}

void JsonRecognizer::step_object(int32_t idx, uint8_t x, std::vector<int32_t>& out) {
  const Frame f = arena_[size_t(idx)];
  const GrammarNode& n = g_->nodes[size_t(f.node)];
  const bool ws_state = f.state == O_OPEN || f.state == O_COMMA || f.state == O_COLON || f.state == O_VALUE_WS ||
                        f.state == O_AFTER;
  if (ws_state && is_ws(x)) {
    if (f.c < kMaxWhitespace) out.push_back(with(idx, f.state, f.c + 1));
    return;
  }
  switch (f.state) {
    case O_OPEN:
    case O_COMMA:
      if (x == '}' && f.state == O_OPEN && can_close(n, f.a)) {
        out.push_back(complete(f.parent));
      } else if (x == '"' && can_more(n, f.a)) {
        if (n.generic) {
          Frame s;
          s.parent = with(idx, O_KEYCHILD, 0);
          s.kind = kString;
          out.push_back(push(s));
        } else {
          for (int j = f.a, last = last_allowed(n, f.a); j <= last; ++j) {
            Frame k = f;
            k.state = O_KEY;
            k.b = j;
            k.c = 1;
            out.push_back(push(k));
          }
        }
      }
      return;
    case O_KEY: {
      const std::string& key = n.props[size_t(f.b)].key_json;
      if (uint8_t(key[size_t(f.c)]) != x) return;
      if (f.c + 1 == int(key.size())) {
        Frame k = f;
        k.state = O_COLON;
        k.a = f.b + 1;
        k.c = 0;
        out.push_back(push(k));
      } else {
        out.push_back(with(idx, O_KEY, f.c + 1));
      }
      return;
    }
    case O_COLON:
      if (x == ':') out.push_back(with(idx, O_VALUE_WS, 0));
      return;
    case O_VALUE_WS:
      start_value(n.generic ? g_->any : n.props[size_t(f.b)].node, with(idx, O_VALUE, 0), x, out);
      return;
    case O_AFTER:
      if (x == ',' && can_more(n, f.a)) out.push_back(with(idx, O_COMMA, 0));
      else if (x == '}' && can_close(n, f.a)) out.push_back(complete(f.parent));
      return;
    default: return;  // O_KEYCHILD / O_VALUE wait for a child frame
  }
}

void JsonRecognizer::step_array(int32_t idx, uint8_t x, std::vector<int32_t>& out) {
  const Frame f = arena_[size_t(idx)];
  if (f.state == A_VALUE) return;
  if (is_ws(x)) {
    if (f.c < kMaxWhitespace) out.push_back(with(idx, f.state, f.c + 1));
    return;
  }
  if (f.state == A_AFTER) {
    if (x == ',') out.push_back(with(idx, A_COMMA, 0));
    else if (x == ']') out.push_back(complete(f.parent));
    return;
  }
  if (f.state == A_OPEN && x == ']') {
    out.push_back(complete(f.parent));
    return;
  }
  start_value(g_->nodes[size_t(f.node)].items, with(idx, A_VALUE, 0), x, out);
}

void JsonRecognizer::step_string(int32_t idx, uint8_t x, std::vector<int32_t>& out) {
  Frame f = arena_[size_t(idx)];
  if (f.b == 1) {  // after a backslash
    if (x == 'u') f.b = 14;
    else if (x == '"' || x == '\\' || x == '/' || x == 'b' || x == 'f' || x == 'n' || x == 'r' || x == 't') f.b = 0;
    else return;
    out.push_back(push(f));
    return;
  }
  if (f.b > 10) {
    if (!is_hex(x)) return;
    f.b = f.b == 11 ? 0 : f.b - 1;
    out.push_back(push(f));
    return;
  }
  if (f.a > 0) {
    if (x < 0x80 || x > 0xBF) return;
    f.a -= 1;
    out.push_back(push(f));
    return;
  }
  // Length bounds (c counts characters) only for declared strings that have them.
  const GrammarNode* n = f.node >= 0 ? &g_->nodes[size_t(f.node)] : nullptr;
  const bool counted = n && (n->min_length > 0 || n->max_length >= 0);
  if (x == '"') {
    if (!counted || f.c >= n->min_length) out.push_back(complete(f.parent));
    return;
  }
  if (x < 0x20 || (x >= 0x80 && (x < 0xC2 || x > 0xF4))) return;
  if (counted) {
    if (n->max_length >= 0 && f.c >= n->max_length) return;
    f.c += 1;
  }
  if (x == '\\') {
    f.b = 1;
    out.push_back(push(f));
  } else if (x < 0x80) {
    out.push_back(counted ? push(f) : idx);  // uncounted ASCII: the state does not change
  } else {
    f.a = x < 0xE0 ? 1 : x < 0xF0 ? 2 : 3;
    out.push_back(push(f));
  }
}

void JsonRecognizer::step_number(int32_t idx, uint8_t x, std::vector<int32_t>& out) {
  const Frame f = arena_[size_t(idx)];
  const bool integer = g_->nodes[size_t(f.node)].kind == Kind::Integer;
  int next = -1;
  switch (f.state) {
    case N_MINUS: next = x == '0' ? N_ZERO : is_digit(x) ? N_INT : -1; break;
    case N_ZERO:
    case N_INT:
      if (f.state == N_INT && is_digit(x)) next = N_INT;
      else if (!integer && x == '.') next = N_DOT;
      else if (!integer && (x == 'e' || x == 'E')) next = N_EXP;
      break;
    case N_DOT: next = is_digit(x) ? N_FRAC : -1; break;
    case N_FRAC: next = is_digit(x) ? N_FRAC : (x == 'e' || x == 'E') ? N_EXP : -1; break;
    case N_EXP: next = (x == '+' || x == '-') ? N_EXP_SIGN : is_digit(x) ? N_EXP_DIG : -1; break;
    case N_EXP_SIGN:
    case N_EXP_DIG: next = is_digit(x) ? N_EXP_DIG : -1; break;
    default: break;
  }
  if (next == f.state) out.push_back(idx);
  else if (next >= 0) out.push_back(with(idx, uint8_t(next), 0));
  if (completable(f)) step(complete(f.parent), x, out);  // the number ends; x belongs to the parent
}

void JsonRecognizer::step_literal(int32_t idx, uint8_t x, std::vector<int32_t>& out) {
  const Frame f = arena_[size_t(idx)];
  const auto& L = g_->nodes[size_t(f.node)].literals;
  // L[a, b) share their first c bytes and are sorted, so those continuing with x are one range
  // (a literal of length c, if any, sorts first).
  const auto first = L.begin() + f.a, last = L.begin() + f.b;
  const size_t c = size_t(f.c);
  auto lo_it = std::partition_point(first, last, [&](const std::string& s) { return s.size() <= c || uint8_t(s[c]) < x; });
  auto hi_it = std::partition_point(lo_it, last, [&](const std::string& s) { return uint8_t(s[c]) == x; });
  const int lo = lo_it == hi_it ? -1 : int(lo_it - L.begin()), hi = int(hi_it - L.begin());
  if (lo >= 0) {
    if (hi - lo == 1 && int(L[size_t(lo)].size()) == f.c + 1) {
      out.push_back(complete(f.parent));  // exactly one literal, now whole
    } else {
      Frame k = f;
      k.a = lo;
      k.b = hi;
      k.c = f.c + 1;
      out.push_back(push(k));
    }
  }
  if (completable(f)) step(complete(f.parent), x, out);
}

bool JsonRecognizer::can_end(std::span<const int32_t> set) const {
  for (int32_t i : set) {
    const Frame& f = arena_[size_t(i)];
    if (f.kind == kDoc && f.state == D_DONE) return true;
    if (completable(f) && arena_[size_t(f.parent)].kind == kDoc) return true;
  }
  return false;
}

bool JsonRecognizer::feed(std::string_view bytes) {
  const size_t mark = arena_.size();
  std::vector<int32_t> cur = configs_, next;
  for (char ch : bytes) {
    next.clear();
    for (int32_t c : cur) step(c, uint8_t(ch), next);
    std::sort(next.begin(), next.end());
    next.erase(std::unique(next.begin(), next.end()), next.end());
    if (next.size() > kMaxConfigs) next.resize(kMaxConfigs);
    if (next.empty()) {
      rollback(mark);
      return false;
    }
    cur.swap(next);
  }
  configs_ = std::move(cur);
  fed_ += bytes.size();
  compact();
  return true;
}

void JsonRecognizer::compact() {
  std::vector<Frame> kept;
  std::unordered_map<int32_t, int32_t> remap;
  // Copies a chain parent-first so every frame's parent precedes it.
  auto copy = [&](auto&& self, int32_t i) -> int32_t {
    if (i < 0) return -1;
    auto it = remap.find(i);
    if (it != remap.end()) return it->second;
    Frame f = arena_[size_t(i)];
    f.parent = self(self, f.parent);
    kept.push_back(f);
    const int32_t ni = int32_t(kept.size()) - 1;
    remap[i] = ni;
    return ni;
  };
  for (int32_t& c : configs_) c = copy(copy, c);
  arena_ = std::move(kept);
}

std::string JsonRecognizer::state_key() const {
  std::vector<std::string> parts;
  for (int32_t i : configs_) {
    std::string s;
    for (int32_t j = i; j >= 0; j = arena_[size_t(j)].parent) {
      const Frame& f = arena_[size_t(j)];
      const int32_t v[6] = {f.node, int32_t(f.kind), int32_t(f.state), f.a, f.b, f.c};
      s.append(reinterpret_cast<const char*>(v), sizeof v);
    }
    parts.push_back(std::move(s));
  }
  std::sort(parts.begin(), parts.end());
  std::string key;
  for (auto& p : parts) key += std::to_string(p.size()) + ":" + p;
  return key;
}

}  // namespace ds
