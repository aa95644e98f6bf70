// GPT-2 byte-level alphabet and lossy UTF-8 decoding (see tokenizer_bytes.h).
#include "text/tokenizer_bytes.h"


namespace ds::tokbytes {
namespace {

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

struct Tables {
  std::array<std::string, 256> fwd;
  std::array<int16_t, 0x144> back;  // code point -> byte, -1 if none (all byte chars are < U+0144)
  Tables() {
    back.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      uint32_t cp = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + n++);
      append_utf8(fwd[b], cp);
      back[cp] = static_cast<int16_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

// Decodes one code point starting at s[i] if it is valid UTF-8; returns its length or 0.
size_t decode_cp(std::string_view s, size_t i, uint32_t* cp) {
  auto u = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  uint8_t b = u(i);
  if (b < 0x80) { *cp = b; return 1; }
  size_t len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 0;
  if (len == 0 || i + len > s.size()) return 0;
  uint32_t v = b & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) {
    if ((u(i + k) & 0xC0) != 0x80) return 0;
    v = (v << 6) | (u(i + k) & 0x3F);
  }
  *cp = v;
  return len;
}

}  // namespace

const std::array<std::string, 256>& byte_to_unicode() { return tables().fwd; }

std::optional<std::string> unicode_to_bytes(std::string_view byte_level) {
  const auto& back = tables().back;
  std::string out;
  out.reserve(byte_level.size());
  for (size_t i = 0; i < byte_level.size();) {
    uint32_t cp = 0;
    size_t len = decode_cp(byte_level, i, &cp);
    if (len == 0) return std::nullopt;
    if (cp >= back.size() || back[cp] < 0) return std::nullopt;
    out += static_cast<char>(back[cp]);
    i += len;
  }
  return out;
}

std::string bytes_to_byte_level(std::string_view raw) {
  const auto& fwd = tables().fwd;
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) out += fwd[c];
  return out;
}

std::string utf8_lossy(std::string_view in, bool final, size_t* consumed) {
  static const char kReplacement[] = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(in.size());
  size_t i = 0;
  const size_t n = in.size();
  while (i < n) {
    uint8_t b = static_cast<uint8_t>(in[i]);
    if (b < 0x80) { out += static_cast<char>(b); ++i; continue; }
    size_t need;        // total length of the sequence
    uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b >= 0xC2 && b <= 0xDF) need = 2;
    else if (b == 0xE0) { need = 3; lo = 0xA0; }
    else if (b >= 0xE1 && b <= 0xEC) need = 3;
    else if (b == 0xED) { need = 3; hi = 0x9F; }
    else if (b >= 0xEE && b <= 0xEF) need = 3;
    else if (b == 0xF0) { need = 4; lo = 0x90; }
    else if (b >= 0xF1 && b <= 0xF3) need = 4;
    else if (b == 0xF4) { need = 4; hi = 0x8F; }
    else { out += kReplacement; ++i; continue; }  // invalid lead byte
    size_t k = 1;
    bool bad = false;
    while (k < need) {
      if (i + k >= n) break;  // ran out of input
      uint8_t c = static_cast<uint8_t>(in[i + k]);
      uint8_t clo = k == 1 ? lo : 0x80, chi = k == 1 ? hi : 0xBF;
      if (c < clo || c > chi) { bad = true; break; }
      ++k;
    }
    if (k == need) { out.append(in.substr(i, need)); i += need; continue; }
    if (!bad && !final) break;  // incomplete tail: keep it for later
    out += kReplacement;        // maximal invalid subpart
    i += k;
  }
  if (consumed) *consumed = i;
  return out;
}

bool utf8_valid(std::string_view s) {
  size_t consumed = 0;
  std::string t = utf8_lossy(s, true, &consumed);
  return t.size() == s.size() && t == s;
}

}  // namespace ds::tokbytes
