// Writes one GGUF file whose tensor data arrives after the header, in pieces and from any number
// of threads (positioned writes at offsets fixed up front): a multi-GB model is never held in
// memory at once. The in-memory GgufWriter remains the simple choice for small files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/gguf/gguf_encoding.h"

namespace tandem {

class GgufStreamWriter {
 public:
  // Writes the header to a file beside path, which finish() renames to path (an unfinished
  // writer removes it). An alignment other than 32 is recorded in
  // general.alignment, as GgufWriter does.
  GgufStreamWriter(std::string path, GgufMetadata kv, std::vector<GgufTensorInfo> tensors,
                   uint32_t alignment = 32);
  ~GgufStreamWriter();  // without finish(): closes and removes the partial file
  GgufStreamWriter(const GgufStreamWriter&) = delete;
  GgufStreamWriter& operator=(const GgufStreamWriter&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  uint64_t tensor_bytes(size_t i) const { return sizes_.at(i); }
  uint64_t file_size() const { return file_size_; }

  // Writes n bytes at byte `at` of tensor i's data. Thread-safe; throws Error naming the tensor
  // when the range lies outside it, or the path when the write fails.
  void write(size_t i, uint64_t at, const void* bytes, size_t n);
  // Closes the file and moves it to path; throws Error naming the path on failure.
  void finish();

 private:
  std::string path_;
  std::string partial_;  // where the data goes until finish()
  std::vector<GgufTensorInfo> tensors_;
  std::vector<uint64_t> sizes_;
  std::vector<uint64_t> file_offsets_;  // absolute position of each tensor's data
  uint64_t file_size_ = 0;
  int fd_ = -1;
};

}  // namespace tandem
