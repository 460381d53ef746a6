// Byte encoding of a GGUF v3 header (magic, counts, metadata, tensor infos), shared by the
// in-memory GgufWriter and the streaming GgufStreamWriter so that both write identical files.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "runtime/gguf/gguf_value.h"
#include "runtime/quant/ggml_type.h"

namespace tandem {

struct GgufTensorInfo {
  std::string name;
  GgmlType type;
  std::vector<int64_t> shape;  // ggml order: shape[0] is the row length
  uint64_t nbytes() const;     // checks shape against the type's block size (throws Error naming it)
};

using GgufMetadata = std::vector<std::pair<std::string, GgufValue>>;

// Header bytes padded to `alignment`; the data section starts right after them. offsets (when
// given) receives each tensor's offset within the data section, every one aligned.
std::vector<uint8_t> gguf_encode_header(const GgufMetadata& kv, const std::vector<GgufTensorInfo>& tensors,
                                        uint64_t alignment, std::vector<uint64_t>* offsets);

}  // namespace tandem
