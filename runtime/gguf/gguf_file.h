// A GGUF model: one file, or a split set (NAME-00001-of-0000N.gguf) opened from its first shard.
// Everything is memory-mapped read-only; tensor data is never copied or written.
// Untrusted input: every count, length, offset and shape is checked, and errors name the
// file, key or tensor and the problem.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/gguf/gguf_value.h"
#include "runtime/quant/ggml_type.h"

namespace tandem {

class MappedFile;

struct GgufTensor {
  std::string name;
  GgmlType type;
  std::vector<int64_t> shape;  // ggml order: shape[0] is the contiguous row length
  uint64_t offset = 0;         // within its shard's data section
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;  // into the shard's mapping
  int shard = 0;

  int64_t elements() const;
  int64_t rows() const;  // product of shape[1..] (a zero-length row still counts its rows)
  uint64_t row_bytes() const { return shape.empty() ? nbytes : ggml_row_bytes(type, uint64_t(shape[0])); }
};

class GgufFile {
 public:
  // Opens path; when its name is a first shard (-00001-of-0000N), opens and checks the rest.
  static std::unique_ptr<GgufFile> open(const std::string& path);
  // Parses a single in-memory image (for fuzzing and tests); the bytes must outlive the result.
  static std::unique_ptr<GgufFile> parse(const uint8_t* data, size_t size, const std::string& label);
  ~GgufFile();

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  int shard_count() const { return int(shard_paths_.size()); }
  const std::vector<std::string>& shard_paths() const { return shard_paths_; }
  uint64_t alignment() const { return alignment_; }

  // Metadata (of the first shard; split bookkeeping keys included).
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }
  // Typed getters throw Error naming the key when it is missing or of the wrong type.
  uint64_t get_uint(std::string_view key) const;
  int64_t get_int(std::string_view key) const;
  double get_float(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  std::string get_string(std::string_view key) const;
  std::optional<uint64_t> get_uint_opt(std::string_view key) const;
  std::optional<double> get_float_opt(std::string_view key) const;
  std::optional<bool> get_bool_opt(std::string_view key) const;
  std::optional<std::string> get_string_opt(std::string_view key) const;
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::vector<int64_t> get_int_array(std::string_view key) const;
  std::vector<float> get_float_array(std::string_view key) const;
  // general.architecture, e.g. "deepseek2".
  std::string architecture() const { return get_string("general.architecture"); }

  // Tensors of all shards, in file order.
  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* find_tensor(std::string_view name) const;
  const GgufTensor& tensor(std::string_view name) const;  // throws Error naming it
  uint64_t total_tensor_bytes() const;

 private:
  GgufFile() = default;
  void parse_shard(const uint8_t* data, size_t size, const std::string& label, int shard);

  std::string path_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::vector<std::string> shard_paths_;
  std::vector<std::unique_ptr<MappedFile>> maps_;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace tandem
