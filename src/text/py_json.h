// Python-compatible printing of JSON values (D4; spec/serving.md 1.3): what DeepSeek's encoder gets
// from `json.dumps(value, ensure_ascii=False)` and, for its error messages, from Python's `repr()`.
#pragma once
#include <string>

#include "text/chat.h"

namespace ds {

/// `json.dumps(value, ensure_ascii=False)` with Python's defaults: separators ", " and ": ", object
/// keys in stored order, non-ASCII UTF-8 kept as is, `"` `\` \b \f \n \r \t escaped by name and other
/// control characters below U+0020 as \u00xx (lower-case hex), floats as `py_float_repr` (NaN and
/// infinities as NaN / Infinity / -Infinity, like allow_nan=True). Throws std::invalid_argument for
/// a binary value (Python's json has none).
std::string py_json_dumps(const ordered_json& value);

/// Python's `repr(float)`: shortest digits that round-trip; positional notation with at least one
/// digit after the point ("1.0", "0.0001", "1234567890123456.0") when the decimal exponent of the
/// leading digit is in [-4, 15], else scientific with a signed, at least two-digit exponent
/// ("1e-05", "1e+16", "1.2345678901234568e+17"); "-0.0"; "nan", "inf", "-inf".
std::string py_float_repr(double x);

/// Python's `repr()` of the value json.loads would give: dict {'k': v}, list [a, b], str with
/// Python's quote choice and escapes, True/False/None, ints, floats as py_float_repr. Used to
/// reproduce the official encoder's error messages. Printability of non-ASCII characters follows
/// Python's `str.isprintable` for the common cases (C0/C1 controls, spaces other than ' ', format
/// characters, line/paragraph separators, private use, surrogates); unassigned code points are
/// kept (Python would escape them).
std::string py_repr(const ordered_json& value);

/// Python's `repr(str)` for a UTF-8 string (see py_repr).
std::string py_str_repr(const std::string& s);

}  // namespace ds
