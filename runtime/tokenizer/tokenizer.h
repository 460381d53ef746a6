// Text <-> token ids for byte-level BPE models (GGUF tokenizer.ggml.model == "gpt2").
//
// encode: special tokens are cut out of the raw text first (SpecialTokenMatcher), the rest is
// split by the model's PreTokenizer and each piece is BPE-encoded (BpePieceEncoder).
// decode: exact bytes; normal tokens map back through the byte-level alphabet.
//
// Any byte string encodes (malformed UTF-8 included: see PreTokenizer) and, without special
// tokens, decode(encode(x, false)) == x. A Tokenizer is immutable after construction and safe to
// use from several threads.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/tokenizer/bpe_vocab.h"
#include "runtime/tokenizer/pre_tokenizer.h"
#include "runtime/tokenizer/special_token_matcher.h"

namespace tandem {

class GgufFile;

class Tokenizer {
 public:
  // Uses PreTokenizer::for_name(vocab.pre()): an unknown pre-tokenizer name is an Error naming it.
  explicit Tokenizer(BpeVocab vocab);
  Tokenizer(BpeVocab vocab, PreTokenizer pre);
  static Tokenizer from_gguf(const GgufFile& file);

  const BpeVocab& vocab() const { return vocab_; }
  const PreTokenizer& pre_tokenizer() const { return pre_; }

  // add_special: prepend BOS / append EOS when the vocab says so (add_bos_token/add_eos_token).
  // parse_special: also recognise control-token texts such as "<|im_start|>" in text
  // (user_defined tokens are always recognised).
  std::vector<TokenId> encode(std::string_view text, bool add_special, bool parse_special) const;

  // render_control: control and unknown tokens give their text; otherwise nothing. Unused tokens
  // always give nothing. An id outside the vocabulary is an Error naming it.
  std::string decode(std::span<const TokenId> ids, bool render_control = false) const;
  void append_piece(TokenId id, bool render_control, std::string& out) const;
  std::string piece(TokenId id, bool render_control = false) const;

 private:
  BpeVocab vocab_;
  PreTokenizer pre_;
  SpecialTokenMatcher specials_;
};

}  // namespace tandem
