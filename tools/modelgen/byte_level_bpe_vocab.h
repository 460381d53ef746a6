// A small byte-level BPE vocabulary (GPT-2 alphabet, tokenizer.ggml.model "gpt2") learned
// deterministically from a built-in English / Chinese / code sample, so that generated models
// can tokenize real text without any external file.
//
// Token ids: 0..255 the byte symbols in GPT-2 alphabet order; then one token per learned merge
// (most frequent pair first, ties broken by the pair's ids); then the specials
// <｜begin▁of▁sentence｜> (bos, control), <｜end▁of▁sentence｜> (eos and padding, control),
// <｜User｜> and <｜Assistant｜> (user-defined); then <｜place▁holder▁no▁N｜> control tokens up to
// the requested size once the sample has no pair left to merge.
// The GGUF records tokenizer.ggml.pre = "deepseek-llm": merges were learned on pieces split much
// like that pre-tokenizer splits text (letters with a leading space, single digits, Han runs,
// punctuation runs), so tokenizing with it uses them well.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tandem::modelgen {

struct ByteLevelBpeVocab {
  std::vector<std::string> tokens;
  std::vector<int32_t> token_types;  // llama.cpp's: 1 normal, 3 control, 4 user-defined
  std::vector<std::string> merges;   // "left right", in priority order
  uint32_t bos = 0;
  uint32_t eos = 0;
};

// vocab_size >= 256 + 4 + 1.
ByteLevelBpeVocab build_byte_level_bpe_vocab(int64_t vocab_size);

// The sample the merges are learned from (also handy as test input for tokenizers).
const std::string& bpe_training_text();

// A DeepSeek-style Jinja chat template using the specials above.
const std::string& deepseek_chat_template();

}  // namespace tandem::modelgen
