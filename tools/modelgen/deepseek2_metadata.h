// The metadata of a generated deepseek2 GGUF: the keys, value types and order that llama.cpp's
// converter writes, the tokenizer included.
#pragma once

#include <cstdint>

#include "runtime/gguf/gguf_encoding.h"
#include "tools/modelgen/deepseek2_options.h"

namespace tandem::modelgen {

struct Deepseek2Metadata {
  GgufMetadata kv;
  int64_t vocab = 0;  // number of tokens: the rows of token_embd and output
};

// Builds the built-in vocabulary, or copies the tokenizer.* keys of o.vocab_from.
Deepseek2Metadata deepseek2_metadata(const Deepseek2Options& o);

// llama.cpp's general.file_type for a model whose bulk (the expert matrices) is of type t.
uint32_t llama_file_type(GgmlType bulk);

}  // namespace tandem::modelgen
