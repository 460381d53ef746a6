// UTF-8 facts the tokenizer needs: sequence lengths, validity of a run, and incomplete tails.
// Text reaching the tokenizer is untrusted bytes; nothing here assumes it is valid.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tandem {

// Length of the well-formed UTF-8 sequence starting at s[0] (1..4), or 0 when s does not start
// with one (bad lead byte, bad continuation, overlong form, surrogate, > U+10FFFF, or truncated).
size_t utf8_sequence_length(std::string_view s);

// True when every byte of s belongs to a well-formed UTF-8 sequence.
bool is_valid_utf8(std::string_view s);

// Number of bytes at the end of s that begin a well-formed sequence but stop before its end
// (0..3): the bytes a streaming decoder must hold back until more arrive.
size_t utf8_incomplete_tail_length(std::string_view s);

// Appends the UTF-8 encoding of code point cp (cp must be <= 0x10FFFF).
void append_utf8(std::string& out, uint32_t cp);

}  // namespace tandem
