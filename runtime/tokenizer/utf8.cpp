#include "runtime/tokenizer/utf8.h"

namespace tandem {

namespace {

bool is_continuation(uint8_t b) { return (b & 0xC0) == 0x80; }

// Bounds of the second byte, which rule out overlongs, surrogates and > U+10FFFF (RFC 3629).
void second_byte_range(uint8_t lead, uint8_t& lo, uint8_t& hi) {
  lo = 0x80;
  hi = 0xBF;
  if (lead == 0xE0) lo = 0xA0;
  if (lead == 0xED) hi = 0x9F;
  if (lead == 0xF0) lo = 0x90;
  if (lead == 0xF4) hi = 0x8F;
}

// Expected sequence length for a lead byte, 0 when it can never start a sequence.
size_t length_from_lead(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

// How many bytes of s (at most its expected length) form a valid prefix of one sequence.
size_t valid_prefix(std::string_view s, size_t expected) {
  size_t n = 1;
  const uint8_t lead = uint8_t(s[0]);
  for (; n < expected && n < s.size(); ++n) {
    const uint8_t b = uint8_t(s[n]);
    if (n == 1) {
      uint8_t lo, hi;
      second_byte_range(lead, lo, hi);
      if (b < lo || b > hi) break;
    } else if (!is_continuation(b)) {
      break;
    }
  }
  return n;
}

}  // namespace

size_t utf8_sequence_length(std::string_view s) {
  if (s.empty()) return 0;
  const size_t expected = length_from_lead(uint8_t(s[0]));
  if (expected == 0) return 0;
  return valid_prefix(s, expected) == expected ? expected : 0;
}

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const size_t n = utf8_sequence_length(s.substr(i));
    if (n == 0) return false;
    i += n;
  }
  return true;
}

size_t utf8_incomplete_tail_length(std::string_view s) {
  // A sequence is at most 4 bytes, so an incomplete one starts within the last 3.
  const size_t lookback = s.size() < 3 ? s.size() : 3;
  for (size_t k = 1; k <= lookback; ++k) {
    const size_t start = s.size() - k;
    const uint8_t b = uint8_t(s[start]);
    if (is_continuation(b)) continue;
    const size_t expected = length_from_lead(b);
    if (expected <= k) return 0;  // ASCII, invalid lead, or a sequence that is already long enough
    return valid_prefix(s.substr(start), expected) == k ? k : 0;
  }
  return 0;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

}  // namespace tandem
