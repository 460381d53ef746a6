// A growable 64-byte-aligned scratch buffer (contents are not kept when it grows).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

namespace tandem::experts {

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  ~AlignedBuffer() { std::free(data_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  void reserve(size_t bytes) {
    if (bytes <= size_) return;
    std::free(data_);
    size_ = (bytes + 63) / 64 * 64;
    data_ = static_cast<unsigned char*>(std::aligned_alloc(64, size_));
    if (!data_) size_ = 0, throw std::bad_alloc();
  }
  template <typename T = unsigned char>
  T* as() const { return reinterpret_cast<T*>(data_); }

 private:
  unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace tandem::experts
