#include "tools/modelgen/byte_level_bpe_vocab.h"

#include <map>
#include <utility>

#include "runtime/core/error.h"
#include "runtime/tokenizer/byte_level_alphabet.h"

namespace tandem::modelgen {
namespace {

enum class CharClass { Letter, Digit, Han, Space, Other };

struct CodePoint {
  uint32_t cp;
  size_t at, len;  // byte range in the text
};

std::vector<CodePoint> decode_utf8(const std::string& s) {
  std::vector<CodePoint> out;
  for (size_t i = 0; i < s.size();) {
    const auto c = uint8_t(s[i]);
    size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (i + n > s.size()) n = 1;
    uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
    for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (uint8_t(s[i + k]) & 0x3F);
    out.push_back({cp, i, n});
    i += n;
  }
  return out;
}

CharClass classify(uint32_t cp) {
  if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return CharClass::Letter;
  if (cp >= '0' && cp <= '9') return CharClass::Digit;
  if (cp == ' ' || cp == '\n' || cp == '\t' || cp == '\r') return CharClass::Space;
  if (cp >= 0x4E00 && cp <= 0x9FFF) return CharClass::Han;
  if ((cp >= 0x3000 && cp <= 0x303F) || (cp >= 0xFF00 && cp <= 0xFFEF)) return CharClass::Other;
  return cp >= 0x80 ? CharClass::Letter : CharClass::Other;
}

// Word-like pieces that merges never cross, close to DeepSeek's pre-tokenizer: an optional
// leading space plus a run of letters or of punctuation, single digits, runs of Han characters,
// runs of whitespace.
std::map<std::string, int64_t> split_words(const std::string& text) {
  const auto cps = decode_utf8(text);
  std::map<std::string, int64_t> words;
  size_t i = 0;
  while (i < cps.size()) {
    const size_t start = i;
    CharClass cls = classify(cps[i].cp);
    if (cps[i].cp == ' ' && i + 1 < cps.size()) {
      const CharClass next = classify(cps[i + 1].cp);
      if (next == CharClass::Letter || next == CharClass::Other) {
        cls = next;
        ++i;
      }
    }
    if (cls == CharClass::Digit) {
      ++i;
    } else {
      while (i < cps.size() && classify(cps[i].cp) == cls) ++i;
      if (i == start) ++i;
    }
    const size_t from = cps[start].at;
    const size_t to = i < cps.size() ? cps[i].at : text.size();
    ++words[text.substr(from, to - from)];
  }
  return words;
}

// GPT-2 order of the byte symbols: printable Latin-1 first, the rest after.
std::vector<uint8_t> alphabet_order() {
  std::vector<uint8_t> order;
  std::vector<bool> taken(256, false);
  auto add_range = [&](int lo, int hi) {
    for (int b = lo; b <= hi; ++b) {
      order.push_back(uint8_t(b));
      taken[size_t(b)] = true;
    }
  };
  add_range('!', '~');
  add_range(0xA1, 0xAC);
  add_range(0xAE, 0xFF);
  for (int b = 0; b < 256; ++b)
    if (!taken[size_t(b)]) order.push_back(uint8_t(b));
  return order;
}

constexpr int32_t kNormal = 1, kControl = 3, kUserDefined = 4;

}  // namespace

ByteLevelBpeVocab build_byte_level_bpe_vocab(int64_t vocab_size) {
  const std::vector<std::string> specials = {"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>",
                                             "<｜Assistant｜>"};
  if (vocab_size < int64_t(256 + specials.size() + 1))
    fail("vocabulary size ", vocab_size, " is too small (at least ", 256 + specials.size() + 1, ")");
  ByteLevelBpeVocab v;
  std::map<std::string, int> id_of;
  std::vector<int> id_of_byte(256);
  const auto order = alphabet_order();
  for (size_t i = 0; i < order.size(); ++i) {
    v.tokens.emplace_back(ByteLevelAlphabet::text(order[i]));
    id_of[v.tokens.back()] = int(i);
    id_of_byte[order[i]] = int(i);
  }

  struct Word {
    std::vector<int> symbols;
    int64_t count;
  };
  std::vector<Word> words;
  for (const auto& [text, count] : split_words(bpe_training_text())) {
    Word w{{}, count};
    for (char c : text) w.symbols.push_back(id_of_byte[uint8_t(c)]);
    words.push_back(std::move(w));
  }

  const size_t bpe_target = size_t(vocab_size) - specials.size();
  while (v.tokens.size() < bpe_target) {
    std::map<std::pair<int, int>, int64_t> pairs;
    for (const auto& w : words)
      for (size_t k = 0; k + 1 < w.symbols.size(); ++k) pairs[{w.symbols[k], w.symbols[k + 1]}] += w.count;
    if (pairs.empty()) break;
    auto best = pairs.begin();  // most frequent; the smallest ids win ties (map order)
    for (auto it = pairs.begin(); it != pairs.end(); ++it)
      if (it->second > best->second) best = it;
    const auto [a, b] = best->first;
    const std::string merged = v.tokens[size_t(a)] + v.tokens[size_t(b)];
    v.merges.push_back(v.tokens[size_t(a)] + " " + v.tokens[size_t(b)]);
    int id;
    if (auto it = id_of.find(merged); it != id_of.end()) {
      id = it->second;
    } else {
      id = int(v.tokens.size());
      v.tokens.push_back(merged);
      id_of[merged] = id;
    }
    for (auto& w : words) {
      std::vector<int> out;
      out.reserve(w.symbols.size());
      for (size_t k = 0; k < w.symbols.size(); ++k) {
        if (k + 1 < w.symbols.size() && w.symbols[k] == a && w.symbols[k + 1] == b) {
          out.push_back(id);
          ++k;
        } else {
          out.push_back(w.symbols[k]);
        }
      }
      w.symbols = std::move(out);
    }
  }
  v.token_types.assign(v.tokens.size(), kNormal);

  v.bos = uint32_t(v.tokens.size());
  v.eos = v.bos + 1;
  for (size_t i = 0; i < specials.size(); ++i) {
    v.tokens.push_back(specials[i]);
    v.token_types.push_back(i < 2 ? kControl : kUserDefined);
  }
  for (int64_t n = 0; int64_t(v.tokens.size()) < vocab_size; ++n) {
    v.tokens.push_back("<｜place▁holder▁no▁" + std::to_string(n) + "｜>");
    v.token_types.push_back(kControl);
  }
  return v;
}

const std::string& deepseek_chat_template() {
  // System text first, then User/Assistant turns; an assistant turn ends with the eos token.
  static const std::string t =
      "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
      "{{ bos_token }}"
      "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] }}{% endif %}{% endfor %}"
      "{% for message in messages %}"
      "{% if message['role'] == 'user' %}{{ '<｜User｜>' + message['content'] }}"
      "{% elif message['role'] == 'assistant' %}{{ '<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>' }}"
      "{% endif %}{% endfor %}"
      "{% if add_generation_prompt %}{{ '<｜Assistant｜>' }}{% endif %}";
  return t;
}

}  // namespace tandem::modelgen
