// Python-compatible JSON/repr printing (see py_json.h).
#include "text/py_json.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <system_error>

namespace ds {
namespace {

/// Appends `\u` + 4 lower-case hex digits (Python json) of `c` (< 0x10000).
void append_hex(std::string& out, uint32_t c, int width) {
  static const char* digits = "0123456789abcdef";
  for (int shift = (width - 1) * 4; shift >= 0; shift -= 4) out.push_back(digits[(c >> shift) & 0xF]);
}

void dump_json_string(std::string& out, const std::string& s) {
  out.push_back('"');
  for (unsigned char ch : s) {
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (ch < 0x20) {
          out += "\\u";
          append_hex(out, ch, 4);
        } else {
          out.push_back(static_cast<char>(ch));
        }
    }
  }
  out.push_back('"');
}

/// Printing mode: json.dumps or repr().
enum class Mode { Json, Repr };

void dump(std::string& out, const ordered_json& v, Mode mode) {
  switch (v.type()) {
    case ordered_json::value_t::null: out += mode == Mode::Json ? "null" : "None"; return;
    case ordered_json::value_t::boolean:
      if (mode == Mode::Json) out += v.get<bool>() ? "true" : "false";
      else out += v.get<bool>() ? "True" : "False";
      return;
    case ordered_json::value_t::number_integer: out += std::to_string(v.get<int64_t>()); return;
    case ordered_json::value_t::number_unsigned: out += std::to_string(v.get<uint64_t>()); return;
    case ordered_json::value_t::number_float: {
      double d = v.get<double>();
      if (mode == Mode::Json && std::isnan(d)) out += "NaN";
      else if (mode == Mode::Json && std::isinf(d)) out += d > 0 ? "Infinity" : "-Infinity";
      else out += py_float_repr(d);
      return;
    }
    case ordered_json::value_t::string:
      if (mode == Mode::Json) dump_json_string(out, v.get_ref<const std::string&>());
      else out += py_str_repr(v.get_ref<const std::string&>());
      return;
    case ordered_json::value_t::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& e : v) {
        if (!first) out += ", ";
        first = false;
        dump(out, e, mode);
      }
      out.push_back(']');
      return;
    }
    case ordered_json::value_t::object: {
      out.push_back('{');
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out += ", ";
        first = false;
        if (mode == Mode::Json) dump_json_string(out, it.key());
        else out += py_str_repr(it.key());
        out += ": ";
        dump(out, it.value(), mode);
      }
      out.push_back('}');
      return;
    }
    case ordered_json::value_t::binary:
    case ordered_json::value_t::discarded:
      break;
  }
  throw std::invalid_argument("py_json: a binary or discarded JSON value has no Python equivalent");
}

/// Decodes one UTF-8 sequence at s[i]; returns the code point and advances i. Invalid bytes are
/// returned as themselves (0x80..0xFF) with i advanced by one.
uint32_t next_code_point(const std::string& s, size_t& i) {
  auto b0 = static_cast<unsigned char>(s[i]);
  int len = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
  if (len == 0 || i + len > s.size()) {
    ++i;
    return b0;
  }
  uint32_t c = len == 1 ? b0 : len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (int k = 1; k < len; ++k) {
    auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      ++i;
      return b0;
    }
    c = (c << 6) | (b & 0x3F);
  }
  i += len;
  return c;
}

/// Python's str.isprintable for one non-ASCII code point (common categories; see py_json.h).
bool py_printable_non_ascii(uint32_t c) {
  if (c <= 0xA0) return false;                        // C1 controls, NO-BREAK SPACE (Zs)
  if (c == 0xAD || c == 0x1680 || c == 0x180E) return false;
  if (c >= 0x2000 && c <= 0x200F) return false;       // spaces, ZW*, LRM/RLM
  if (c >= 0x2028 && c <= 0x202F) return false;       // LS, PS, bidi embeddings, NNBSP
  if (c >= 0x205F && c <= 0x206F) return false;       // MMSP, invisible operators, bidi isolates
  if (c == 0x3000 || c == 0xFEFF) return false;
  if (c >= 0xFFF9 && c <= 0xFFFB) return false;       // interlinear annotation
  if (c >= 0xD800 && c <= 0xF8FF) return false;       // surrogates, private use
  if (c >= 0xF0000) return false;                     // supplementary private use
  if (c >= 0xE0000 && c <= 0xE007F) return false;     // tags
  return true;
}

}  // namespace

std::string py_float_repr(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific);
  std::string sci(buf, res.ptr);  // shortest round-trip, e.g. "-1.2345e+17", "1e-05", "0e+00"
  std::string out;
  size_t pos = 0;
  if (sci[0] == '-') {
    out.push_back('-');
    pos = 1;
  }
  size_t epos = sci.find('e');
  std::string digits;
  for (size_t i = pos; i < epos; ++i)
    if (sci[i] != '.') digits.push_back(sci[i]);
  int exp10 = std::stoi(sci.substr(epos + 1));
  int decpt = exp10 + 1;  // digits are 0.d1d2... x 10^decpt
  int nd = static_cast<int>(digits.size());
  if (decpt <= -4 || decpt > 16) {
    out.push_back(digits[0]);
    if (nd > 1) {
      out.push_back('.');
      out.append(digits, 1, std::string::npos);
    }
    out.append(exp10 < 0 ? "e-" : "e+");
    int a = exp10 < 0 ? -exp10 : exp10;
    if (a < 10) out.push_back('0');
    out.append(std::to_string(a));
  } else if (decpt <= 0) {
    out.append("0.");
    out.append(static_cast<size_t>(-decpt), '0');
    out.append(digits);
  } else if (decpt >= nd) {
    out.append(digits);
    out.append(static_cast<size_t>(decpt - nd), '0');
    out.append(".0");
  } else {
    out.append(digits, 0, static_cast<size_t>(decpt));
    out.push_back('.');
    out.append(digits, static_cast<size_t>(decpt), std::string::npos);
  }
  return out;
}

std::string py_str_repr(const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos;
  bool has_double = s.find('"') != std::string::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  size_t i = 0;
  while (i < s.size()) {
    size_t start = i;
    uint32_t c = next_code_point(s, i);
    if (c == static_cast<uint32_t>(quote) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\x";
      append_hex(out, c, 2);
    } else if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (py_printable_non_ascii(c) && i - start > 1) {
      out.append(s, start, i - start);
    } else if (c <= 0xFF) {
      out += "\\x";
      append_hex(out, c, 2);
    } else if (c <= 0xFFFF) {
      out += "\\u";
      append_hex(out, c, 4);
    } else {
      out += "\\U";
      append_hex(out, c, 8);
    }
  }
  out.push_back(quote);
  return out;
}

std::string py_json_dumps(const ordered_json& value) {
  std::string out;
  dump(out, value, Mode::Json);
  return out;
}

std::string py_repr(const ordered_json& value) {
  std::string out;
  dump(out, value, Mode::Repr);
  return out;
}

}  // namespace ds
