#include "runtime/tokenizer/bpe_vocab.h"

#include "runtime/core/error.h"
#include "runtime/gguf/gguf_file.h"
#include "runtime/tokenizer/byte_level_alphabet.h"

namespace tandem {

namespace {

bool is_plain(TokenType t) { return t == TokenType::Normal || t == TokenType::Undefined || t == TokenType::Byte; }

void check_special(const char* key, TokenId id, size_t n) {
  if (id != kNoToken && (id < 0 || size_t(id) >= n))
    fail("tokenizer.ggml.", key, ": token id ", id, " is outside the vocabulary of ", n, " tokens");
}

}  // namespace

BpeVocab BpeVocab::build(std::vector<std::string> tokens, std::vector<TokenType> types,
                         const std::vector<std::string>& merges, BpeVocabConfig config) {
  if (tokens.empty()) fail("tokenizer.ggml.tokens: the vocabulary is empty");
  if (tokens.size() > size_t(INT32_MAX)) fail("tokenizer.ggml.tokens: ", tokens.size(), " tokens is too many");
  if (types.empty()) types.assign(tokens.size(), TokenType::Normal);
  if (types.size() != tokens.size())
    fail("tokenizer.ggml.token_type: ", types.size(), " entries for ", tokens.size(), " tokens");
  for (auto& t : types)
    if (int32_t(t) < 0 || int32_t(t) > int32_t(TokenType::Byte)) t = TokenType::Undefined;
  check_special("bos_token_id", config.bos, tokens.size());
  check_special("eos_token_id", config.eos, tokens.size());
  check_special("padding_token_id", config.pad, tokens.size());
  check_special("unknown_token_id", config.unk, tokens.size());

  BpeVocab v;
  v.texts_ = std::move(tokens);
  v.types_ = std::move(types);
  v.config_ = std::move(config);
  v.ids_.reserve(v.texts_.size());
  // Special tokens first, then plain ones, so that a plain token owns a text both share.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < v.texts_.size(); ++i) {
      if (v.texts_[i].empty() || is_plain(v.types_[i]) != (pass == 1)) continue;
      v.ids_[v.texts_[i]] = TokenId(i);
    }
  }
  for (int b = 0; b < 256; ++b) v.byte_tokens_[b] = v.find(ByteLevelAlphabet::text(uint8_t(b)));

  v.merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string& m = merges[rank];
    // Alphabet text has no raw space, so the separator is the first space after the first char.
    const size_t sep = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
    if (sep == std::string::npos || sep + 1 >= m.size())
      fail("tokenizer.ggml.merges[", rank, "]: '", m, "' is not two tokens separated by a space");
    const std::string_view left = std::string_view(m).substr(0, sep);
    const std::string_view right = std::string_view(m).substr(sep + 1);
    const TokenId l = v.find(left);
    const TokenId r = v.find(right);
    const TokenId joined = v.find(std::string(left) + std::string(right));
    if (l == kNoToken || r == kNoToken || joined == kNoToken) {
      ++v.skipped_merges_;
      continue;
    }
    v.merges_.emplace(pair_key(l, r), Merge{int32_t(rank), joined});  // first (lowest rank) wins
  }
  return v;
}

TokenId BpeVocab::find(std::string_view text) const {
  auto it = ids_.find(text);
  return it == ids_.end() ? kNoToken : it->second;
}

const BpeVocab::Merge* BpeVocab::find_merge(TokenId left, TokenId right) const {
  auto it = merges_.find(pair_key(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

BpeVocab BpeVocab::from_gguf(const GgufFile& file) {
  const std::string model = file.get_string("tokenizer.ggml.model");
  if (model != "gpt2")
    fail(file.path(), ": tokenizer.ggml.model '", model,
         "' is not supported (only 'gpt2', byte-level BPE, is implemented)");

  BpeVocabConfig config;
  if (auto pre = file.get_string_opt("tokenizer.ggml.pre")) config.pre = *pre;
  auto special = [&](const char* key) -> TokenId {
    const auto id = file.get_uint_opt(std::string("tokenizer.ggml.") + key);
    if (!id) return kNoToken;
    if (*id > uint64_t(INT32_MAX)) fail("tokenizer.ggml.", key, ": token id ", *id, " is out of range");
    return TokenId(*id);
  };
  config.bos = special("bos_token_id");
  config.eos = special("eos_token_id");
  config.pad = special("padding_token_id");
  config.unk = special("unknown_token_id");
  config.add_bos = file.get_bool_opt("tokenizer.ggml.add_bos_token").value_or(false);
  config.add_eos = file.get_bool_opt("tokenizer.ggml.add_eos_token").value_or(false);

  std::vector<std::string> tokens = file.get_string_array("tokenizer.ggml.tokens");
  std::vector<TokenType> types;
  if (file.has("tokenizer.ggml.token_type")) {
    const std::vector<int64_t> raw = file.get_int_array("tokenizer.ggml.token_type");
    types.reserve(raw.size());
    for (int64_t t : raw) types.push_back(t >= 0 && t <= 6 ? TokenType(t) : TokenType::Undefined);
  }
  const std::vector<std::string> merges = file.get_string_array("tokenizer.ggml.merges");
  return build(std::move(tokens), std::move(types), merges, std::move(config));
}

}  // namespace tandem
