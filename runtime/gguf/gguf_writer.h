// Writes GGUF v3 files: used by the random-model generator and by tests that build files
// (including deliberately broken ones) byte by byte.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/gguf/gguf_value.h"
#include "runtime/quant/ggml_type.h"

namespace tandem {

class GgufWriter {
 public:
  void set(std::string key, GgufValue value);  // replaces an existing key
  // Adds a tensor; bytes must hold exactly ggml_row_bytes(type, shape[0]) * rows.
  void add_tensor(std::string name, GgmlType type, std::vector<int64_t> shape,
                  std::vector<uint8_t> bytes);
  void set_alignment(uint32_t a) { alignment_ = a; }

  std::vector<uint8_t> to_bytes() const;
  void write(const std::string& path) const;  // throws Error naming the path
  // Writes NAME-0000i-of-0000N.gguf shards (path is the first shard's name), at most
  // max_tensors_per_shard tensors each, with the split.* keys llama.cpp writes.
  void write_split(const std::string& first_path, int max_tensors_per_shard) const;

  size_t tensor_count() const { return tensors_.size(); }

 private:
  struct PendingTensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::vector<uint8_t> serialize(const std::vector<std::pair<std::string, GgufValue>>& kv,
                                 const std::vector<const PendingTensor*>& tensors) const;

  uint32_t alignment_ = 32;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace tandem
