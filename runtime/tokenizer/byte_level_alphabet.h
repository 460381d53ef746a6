// GPT-2's byte-level alphabet: each of the 256 byte values is shown as one printable code point,
// so that byte-level BPE vocabularies store every token as readable UTF-8 text.
// Printable Latin-1 bytes ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF) stand for themselves; the
// other 68 bytes take U+0100.. in byte order (so ' ' is 'Ġ' U+0120 and '\n' is 'Ċ' U+010A).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tandem {

class ByteLevelAlphabet {
 public:
  // The code point standing for byte b, and its UTF-8 text.
  static uint32_t code_point(uint8_t b);
  static std::string_view text(uint8_t b);
  // Raw bytes -> alphabet text (each byte becomes one code point).
  static std::string encode(std::string_view raw);
  static void encode_append(std::string_view raw, std::string& out);
  // Alphabet text -> raw bytes, appended to out. Characters outside the alphabet (and bytes of
  // malformed UTF-8) are copied unchanged, so any token text decodes to something.
  static void decode_append(std::string_view text, std::string& out);
};

}  // namespace tandem
