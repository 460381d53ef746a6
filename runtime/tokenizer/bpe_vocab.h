// The vocabulary of a byte-level BPE tokenizer: token texts and types, merge ranks, special ids
// and flags, as stored under GGUF's tokenizer.ggml.* keys.
//
// Normal tokens are stored in GPT-2's byte-level alphabet (see ByteLevelAlphabet); control and
// user_defined tokens are stored as the raw UTF-8 text they stand for.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tandem {

class GgufFile;

using TokenId = int32_t;
constexpr TokenId kNoToken = -1;

// The values of tokenizer.ggml.token_type (llama.cpp's numbering).
enum class TokenType : int32_t {
  Undefined = 0,  // also given to out-of-range values; handled like Normal
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};

struct BpeVocabConfig {
  std::string pre = "default";  // tokenizer.ggml.pre
  TokenId bos = kNoToken;
  TokenId eos = kNoToken;
  TokenId pad = kNoToken;
  TokenId unk = kNoToken;
  bool add_bos = false;
  bool add_eos = false;
};

class BpeVocab {
 public:
  struct Merge {
    int32_t rank;    // index in the merges list: lower merges first
    TokenId result;  // the token the two parts become
  };

  // tokens[i] is the text of id i; types empty means all Normal; merges are "left right" in rank
  // order. Throws Error naming the offending entry (bad merge syntax, special id out of range).
  // Merges whose parts or result are not tokens are skipped (counted in skipped_merges()).
  static BpeVocab build(std::vector<std::string> tokens, std::vector<TokenType> types,
                        const std::vector<std::string>& merges, BpeVocabConfig config);
  // Reads tokenizer.ggml.{model,pre,tokens,token_type,merges,bos_token_id,eos_token_id,
  // padding_token_id,unknown_token_id,add_bos_token,add_eos_token}. Only model "gpt2" is
  // accepted; another is an Error naming it.
  static BpeVocab from_gguf(const GgufFile& file);

  size_t size() const { return texts_.size(); }
  bool contains(TokenId id) const { return id >= 0 && size_t(id) < texts_.size(); }
  const std::string& text(TokenId id) const { return texts_[size_t(id)]; }
  TokenType type(TokenId id) const { return types_[size_t(id)]; }
  // Id of the token with exactly this text; Normal tokens win over others of the same text.
  TokenId find(std::string_view text) const;
  // The token of the single alphabet character for byte b, or kNoToken when the vocab lacks it.
  TokenId byte_token(uint8_t b) const { return byte_tokens_[b]; }
  const Merge* find_merge(TokenId left, TokenId right) const;
  size_t merge_count() const { return merges_.size(); }
  size_t skipped_merges() const { return skipped_merges_; }

  const BpeVocabConfig& config() const { return config_; }
  const std::string& pre() const { return config_.pre; }
  TokenId bos() const { return config_.bos; }
  TokenId eos() const { return config_.eos; }
  TokenId pad() const { return config_.pad; }
  TokenId unk() const { return config_.unk; }

 private:
  BpeVocab() = default;  // only build() makes one
  struct TextHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  static uint64_t pair_key(TokenId l, TokenId r) { return (uint64_t(uint32_t(l)) << 32) | uint32_t(r); }

  std::vector<std::string> texts_;
  std::vector<TokenType> types_;
  std::unordered_map<std::string, TokenId, TextHash, std::equal_to<>> ids_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::array<TokenId, 256> byte_tokens_{};
  size_t skipped_merges_ = 0;
  BpeVocabConfig config_;
};

}  // namespace tandem
