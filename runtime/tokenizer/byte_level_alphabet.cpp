#include "runtime/tokenizer/byte_level_alphabet.h"

#include <array>

#include "runtime/tokenizer/utf8.h"

namespace tandem {

namespace {

struct AlphabetTables {
  std::array<uint32_t, 256> cp_of_byte{};
  std::array<std::string, 256> text_of_byte;
  std::array<int16_t, 512> byte_of_cp{};  // every alphabet code point is below 0x144

  AlphabetTables() {
    byte_of_cp.fill(-1);
    uint32_t next_extra = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      cp_of_byte[b] = printable ? b : next_extra++;
      byte_of_cp[cp_of_byte[b]] = int16_t(b);
      append_utf8(text_of_byte[b], cp_of_byte[b]);
    }
  }
};

const AlphabetTables& tables() {
  static const AlphabetTables t;
  return t;
}

}  // namespace

uint32_t ByteLevelAlphabet::code_point(uint8_t b) { return tables().cp_of_byte[b]; }

std::string_view ByteLevelAlphabet::text(uint8_t b) { return tables().text_of_byte[b]; }

std::string ByteLevelAlphabet::encode(std::string_view raw) {
  std::string out;
  encode_append(raw, out);
  return out;
}

void ByteLevelAlphabet::encode_append(std::string_view raw, std::string& out) {
  const auto& t = tables();
  out.reserve(out.size() + 2 * raw.size());
  for (char c : raw) out += t.text_of_byte[uint8_t(c)];
}

void ByteLevelAlphabet::decode_append(std::string_view text, std::string& out) {
  const auto& t = tables();
  size_t i = 0;
  while (i < text.size()) {
    const uint8_t lead = uint8_t(text[i]);
    if (lead < 0x80) {  // ASCII: printable ones stand for themselves, others are copied as is
      out += char(lead);
      ++i;
      continue;
    }
    const size_t n = utf8_sequence_length(text.substr(i));
    if (n == 2) {
      const uint32_t cp = (uint32_t(lead & 0x1F) << 6) | (uint8_t(text[i + 1]) & 0x3F);
      if (cp < t.byte_of_cp.size() && t.byte_of_cp[cp] >= 0) {
        out += char(t.byte_of_cp[cp]);
        i += 2;
        continue;
      }
    }
    const size_t take = n == 0 ? 1 : n;
    out.append(text.substr(i, take));
    i += take;
  }
}

}  // namespace tandem
