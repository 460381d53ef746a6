#define PCRE2_CODE_UNIT_WIDTH 8
#include "runtime/tokenizer/pre_tokenizer.h"

#include <pcre2.h>

#include "runtime/core/error.h"
#include "runtime/tokenizer/utf8.h"

namespace tandem {

namespace {

// The regex sequences, as published in each model's tokenizer.json (pre_tokenizer section).

// GPT-2 / default.
const char* const kGpt2 = R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))re";

// Llama 3 (tiktoken cl100k style): case-insensitive contractions, digits in groups of 1-3.
const char* const kLlama3 =
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

// Qwen2: as Llama 3 but every digit alone.
const char* const kQwen2 =
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

// DeepSeek LLM (v1/v2 chat models): newlines, letters of cased scripts, ASCII/CJK punctuation,
// trailing spaces, CJK/Hangul runs, digit runs.
const char* const kDeepseekLlmLetters =
    R"re(\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+)re";
const char* const kDeepseekLlmPunct = R"re(\s?[!-/:-~！-／：-～‘-‟　-。]+)re";

// CJK ideographs, the U+0800..U+4E00 block run and Hangul, shared by DeepSeek LLM and Coder.
const char* const kDeepseekCjk = R"re([一-龥ࠀ-一가-퟿]+)re";

// DeepSeek V3 / R1: digits in groups of 1-3, CJK + kana runs, then a cl100k-like split where
// an ASCII punctuation mark may lead a run of ASCII letters and marks join letters.
const char* const kDeepseekV3Main =
    R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

struct NamedSequence {
  const char* name;
  std::vector<std::string> regexes;
  bool ignore_merges;
};

const std::vector<NamedSequence>& sequences() {
  static const std::vector<NamedSequence> all = {
      {"gpt-2", {kGpt2}, false},
      {"default", {kGpt2}, false},
      {"llama-bpe", {kLlama3}, true},
      {"llama3", {kLlama3}, true},
      {"llama-v3", {kLlama3}, true},
      {"qwen2", {kQwen2}, false},
      {"deepseek-r1-qwen", {kQwen2}, false},
      {"deepseek-llm",
       {R"re([\r\n])re", kDeepseekLlmLetters, kDeepseekLlmPunct, R"re(\s+$)re", kDeepseekCjk,
        R"re(\p{N}+)re"},
       false},
      {"deepseek-coder",
       {R"re([\r\n])re", R"re(\s?\p{L}+)re", R"re(\s?\p{P}+)re", kDeepseekCjk, R"re(\p{N})re"},
       false},
      {"deepseek-v3", {R"re(\p{N}{1,3})re", R"re([一-龥぀-ゟ゠-ヿ]+)re", kDeepseekV3Main}, false},
  };
  return all;
}

}  // namespace

struct PreTokenizer::CompiledRegex {
  pcre2_code* code = nullptr;
  ~CompiledRegex() { pcre2_code_free(code); }
};

PreTokenizer PreTokenizer::for_name(const std::string& name) {
  for (const auto& s : sequences()) {
    if (name == s.name) {
      PreTokenizer p(name, s.regexes);
      p.ignore_merges_ = s.ignore_merges;
      return p;
    }
  }
  std::string known;
  for (const auto& s : sequences()) known += std::string(known.empty() ? "" : ", ") + s.name;
  fail("tokenizer.ggml.pre: unsupported pre-tokenizer '", name, "' (supported: ", known, ")");
}

std::vector<std::string> PreTokenizer::known_names() {
  std::vector<std::string> names;
  for (const auto& s : sequences()) names.emplace_back(s.name);
  return names;
}

PreTokenizer::PreTokenizer(std::string name, const std::vector<std::string>& regexes)
    : name_(std::move(name)) {
  for (const auto& pattern : regexes) {
    int err = 0;
    PCRE2_SIZE err_offset = 0;
    auto re = std::make_unique<CompiledRegex>();
    // DOLLAR_ENDONLY: '$' means the end of the piece, never "before a final newline".
    re->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                             PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &err, &err_offset, nullptr);
    if (!re->code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      fail("pre-tokenizer ", name_, ": regex '", pattern, "' does not compile at offset ", err_offset,
           ": ", reinterpret_cast<const char*>(msg));
    }
    pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);  // failure is fine: the interpreter runs
    regexes_.push_back(std::move(re));
  }
}

PreTokenizer::~PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;

std::vector<std::string_view> PreTokenizer::split(std::string_view text) const {
  std::vector<std::string_view> out;
  size_t run_start = 0;
  size_t i = 0;
  while (i < text.size()) {
    const size_t n = utf8_sequence_length(text.substr(i));
    if (n > 0) {
      i += n;
      continue;
    }
    if (i > run_start) split_valid(text.substr(run_start, i - run_start), out);
    out.push_back(text.substr(i, 1));  // a malformed byte stands alone
    run_start = ++i;
  }
  if (i > run_start) split_valid(text.substr(run_start, i - run_start), out);
  return out;
}

void PreTokenizer::split_valid(std::string_view text, std::vector<std::string_view>& out) const {
  std::vector<std::string_view> pieces{text};
  std::vector<std::string_view> next;
  for (const auto& re : regexes_) {
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match(
        pcre2_match_data_create(1, nullptr), &pcre2_match_data_free);
    if (!match) fail("pre-tokenizer ", name_, ": out of memory for match data");
    pcre2_match_data* md = match.get();
    next.clear();
    for (std::string_view piece : pieces) {
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
      size_t pos = 0;
      size_t last = 0;
      while (pos < piece.size()) {
        int rc = pcre2_match(re->code, subject, piece.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
          // The JIT's small stack ran out on a long run; the interpreter uses the heap.
          rc = pcre2_match(re->code, subject, piece.size(), pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md,
                           nullptr);
        }
        if (rc < 0) break;  // no further match (or a resource limit): the rest stays one piece
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        const size_t start = ov[0];
        const size_t end = ov[1];
        if (end <= start) {  // empty match: step over one character
          const size_t n = utf8_sequence_length(piece.substr(start));
          pos = start + (n == 0 ? 1 : n);
          continue;
        }
        if (start > last) next.push_back(piece.substr(last, start - last));
        next.push_back(piece.substr(start, end - start));
        last = pos = end;
      }
      if (last < piece.size()) next.push_back(piece.substr(last));
    }
    pieces.swap(next);
  }
  out.insert(out.end(), pieces.begin(), pieces.end());
}

}  // namespace tandem
