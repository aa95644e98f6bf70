// CLI11 range checks for the tools' integer and real flags, with short messages ("--num-prompts:
// 0 is below the minimum 1"); CLI11's PositiveNumber/NonNegativeNumber print a range up to the
// largest double (a 309-digit number).
#pragma once
#include <cmath>
#include <limits>
#include <string>

#include <CLI/CLI.hpp>

namespace ds::cli {

/// A number in [lo, hi] (`integer`: also no fraction). The value is checked as text, before CLI11
/// converts it, so "1e30" or "99999999999999999999" for an int flag is "out of range", not a wrap.
inline CLI::Validator in_range(double lo, double hi, bool integer = true) {
  auto fmt = [](double x) {
    if (std::isinf(x)) return std::string(x > 0 ? "inf" : "-inf");
    if (x == std::floor(x) && std::abs(x) < 1e15) return std::to_string(static_cast<long long>(x));
    return std::to_string(x);
  };
  std::string desc = std::string(integer ? "INT" : "FLOAT") + " in [" + fmt(lo) + ", " + fmt(hi) + "]";
  return CLI::Validator(
      [lo, hi, integer, fmt](std::string& s) -> std::string {
        std::size_t used = 0;
        double v = 0;
        try {
          v = std::stod(s, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == 0 || used != s.size() || std::isnan(v)) return "'" + s + "' is not a number";
        if (integer && v != std::floor(v)) return "'" + s + "' is not an integer";
        if (v < lo) return s + " is below the minimum " + fmt(lo);
        if (v > hi) return s + " is above the maximum " + fmt(hi);
        return "";
      },
      desc);
}

/// An int flag of at least `lo` (and at most INT_MAX).
inline CLI::Validator at_least(int lo) { return in_range(lo, std::numeric_limits<int>::max()); }

}  // namespace ds::cli
