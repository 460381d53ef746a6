// Splits text into the pieces that byte-level BPE then encodes one by one, with the regex
// sequence a model was trained with (GGUF key tokenizer.ggml.pre).
//
// Several regexes apply in sequence: each one splits every current piece into its matches and
// the text between them, all kept (Hugging Face's Split with "isolated" behaviour). Regexes run
// with PCRE2 in UTF + UCP mode, so \s, \p{L}, \p{N}, \p{P} follow Unicode, and anchors and
// lookaheads see one piece at a time.
//
// Malformed UTF-8 never reaches PCRE2: each byte that is not part of a well-formed sequence
// becomes a piece of its own, and the valid runs between them are split as usual. So any byte
// string tokenizes, and decoding gives the same bytes back.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tandem {

class PreTokenizer {
 public:
  // Known names: "deepseek-llm", "deepseek-coder", "deepseek-v3", "qwen2" (+ "deepseek-r1-qwen"),
  // "llama-bpe" (+ "llama3", "llama-v3"), "gpt-2" / "default". Throws Error naming an unknown one.
  static PreTokenizer for_name(const std::string& name);
  // A custom regex sequence (tests, and models whose regexes we learn later).
  PreTokenizer(std::string name, const std::vector<std::string>& regexes);
  ~PreTokenizer();
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;

  const std::string& name() const { return name_; }
  // True for the names whose Hugging Face tokenizer sets ignore_merges (llama 3): a piece that
  // is itself in the vocabulary is emitted whole, without running merges.
  bool ignores_merges() const { return ignore_merges_; }

  // Pieces of text, in order, covering it exactly (views into text). Thread-safe.
  std::vector<std::string_view> split(std::string_view text) const;

  static std::vector<std::string> known_names();

 private:
  struct CompiledRegex;
  void split_valid(std::string_view text, std::vector<std::string_view>& out) const;

  std::string name_;
  bool ignore_merges_ = false;
  std::vector<std::unique_ptr<CompiledRegex>> regexes_;
};

}  // namespace tandem
