#include "runtime/tokenizer/tokenizer.h"

#include "runtime/core/error.h"
#include "runtime/gguf/gguf_file.h"
#include "runtime/tokenizer/bpe_piece_encoder.h"
#include "runtime/tokenizer/byte_level_alphabet.h"

namespace tandem {

namespace {

// "<0x1F>" -> 0x1F; -1 when text is not of that form.
int byte_token_value(const std::string& text) {
  if (text.size() != 6 || text.compare(0, 3, "<0x") != 0 || text[5] != '>') return -1;
  int v = 0;
  for (int i = 3; i < 5; ++i) {
    const char c = text[size_t(i)];
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

}  // namespace

Tokenizer::Tokenizer(BpeVocab vocab)
    : vocab_(std::move(vocab)), pre_(PreTokenizer::for_name(vocab_.pre())), specials_(vocab_) {}

Tokenizer::Tokenizer(BpeVocab vocab, PreTokenizer pre)
    : vocab_(std::move(vocab)), pre_(std::move(pre)), specials_(vocab_) {}

Tokenizer Tokenizer::from_gguf(const GgufFile& file) { return Tokenizer(BpeVocab::from_gguf(file)); }

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<TokenId> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && vocab_.config().add_bos && vocab_.bos() != kNoToken) out.push_back(vocab_.bos());
  BpePieceEncoder bpe(vocab_);
  const bool ignore_merges = pre_.ignores_merges();
  for (const auto& segment : specials_.split(text, parse_special)) {
    if (segment.token != kNoToken) {
      out.push_back(segment.token);
      continue;
    }
    for (std::string_view piece : pre_.split(segment.text)) bpe.encode(piece, ignore_merges, out);
  }
  if (add_special && vocab_.config().add_eos && vocab_.eos() != kNoToken) out.push_back(vocab_.eos());
  return out;
}

void Tokenizer::append_piece(TokenId id, bool render_control, std::string& out) const {
  if (!vocab_.contains(id)) fail("decode: token id ", id, " is outside the vocabulary of ", vocab_.size(), " tokens");
  const std::string& text = vocab_.text(id);
  switch (vocab_.type(id)) {
    case TokenType::Normal:
    case TokenType::Undefined:
      ByteLevelAlphabet::decode_append(text, out);
      break;
    case TokenType::Byte: {
      const int b = byte_token_value(text);
      if (b >= 0) out += char(b);
      else ByteLevelAlphabet::decode_append(text, out);
      break;
    }
    case TokenType::UserDefined:
      out += text;  // stored as the raw text it stands for
      break;
    case TokenType::Control:
    case TokenType::Unknown:
      if (render_control) out += text;
      break;
    case TokenType::Unused:
      break;
  }
}

std::string Tokenizer::piece(TokenId id, bool render_control) const {
  std::string out;
  append_piece(id, render_control, out);
  return out;
}

std::string Tokenizer::decode(std::span<const TokenId> ids, bool render_control) const {
  std::string out;
  for (TokenId id : ids) append_piece(id, render_control, out);
  return out;
}

}  // namespace tandem
