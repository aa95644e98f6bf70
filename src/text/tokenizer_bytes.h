// Private helpers of the tokenizer: GPT-2 byte-level alphabet and lossy UTF-8 decoding.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ds::tokbytes {

/// GPT-2 `bytes_to_unicode`: byte b -> the UTF-8 encoding of the code point that stands for it in
/// byte-level BPE vocabularies (printable Latin-1 bytes map to themselves, the other 68 bytes to
/// U+0100.. in byte order).
const std::array<std::string, 256>& byte_to_unicode();

/// Inverse of byte_to_unicode over a whole byte-level string ("Ġt" -> " t"). nullopt when some
/// code point is not one of the 256 byte-level characters (e.g. an added token's "｜").
std::optional<std::string> unicode_to_bytes(std::string_view byte_level);

/// Raw bytes -> byte-level string (" t" -> "Ġt").
std::string bytes_to_byte_level(std::string_view raw);

/// Lossy UTF-8 decode of `in`: valid sequences are copied, each maximal invalid subpart becomes
/// U+FFFD (same rule as Rust's String::from_utf8_lossy, which HF tokenizers uses). When `final` is
/// false, an incomplete but so-far-valid sequence at the very end is left unconsumed; `*consumed`
/// (if given) receives the number of input bytes used.
std::string utf8_lossy(std::string_view in, bool final, size_t* consumed = nullptr);

/// True if `s` is entirely valid UTF-8.
bool utf8_valid(std::string_view s);

}  // namespace ds::tokbytes
