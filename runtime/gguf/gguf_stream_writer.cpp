#include "runtime/gguf/gguf_stream_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "runtime/core/error.h"

namespace tandem {
namespace {

void pwrite_all(int fd, const std::string& path, const void* bytes, size_t n, uint64_t at) {
  const auto* p = static_cast<const uint8_t*>(bytes);
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, off_t(at));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail(path, ": write of ", n, " bytes at offset ", at, " failed: ", std::strerror(errno));
    p += w;
    n -= size_t(w);
    at += uint64_t(w);
  }
}

}  // namespace

GgufStreamWriter::GgufStreamWriter(std::string path, GgufMetadata kv, std::vector<GgufTensorInfo> tensors,
                                   uint32_t alignment)
    : path_(std::move(path)), tensors_(std::move(tensors)) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    fail(path_, ": alignment ", alignment, " is not a power of two");
  if (alignment != 32) kv.emplace_back("general.alignment", GgufValue::u32(alignment));
  std::vector<uint64_t> offsets;
  const std::vector<uint8_t> header = gguf_encode_header(kv, tensors_, alignment, &offsets);
  sizes_.reserve(tensors_.size());
  file_size_ = header.size();
  for (size_t i = 0; i < tensors_.size(); ++i) {
    sizes_.push_back(tensors_[i].nbytes());
    file_offsets_.push_back(header.size() + offsets[i]);
    file_size_ = file_offsets_.back() + (sizes_.back() + alignment - 1) / alignment * alignment;
  }
  // Written beside the target and renamed over it by finish(): a reader that has the old file
  // mapped keeps it whole, and an interrupted generation leaves no truncated model behind.
  partial_ = path_ + ".partial-" + std::to_string(::getpid());
  fd_ = ::open(partial_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(path_, ": cannot open ", partial_, " for writing: ", std::strerror(errno));
  try {
    // The file gets its final size now; padding between tensors stays as zeros.
    if (::ftruncate(fd_, off_t(file_size_)) != 0)
      fail(path_, ": cannot size the file to ", file_size_, " bytes: ", std::strerror(errno));
    pwrite_all(fd_, path_, header.data(), header.size(), 0);
  } catch (...) {
    ::close(fd_);
    ::unlink(partial_.c_str());
    throw;
  }
}

GgufStreamWriter::~GgufStreamWriter() {
  if (fd_ < 0) return;
  ::close(fd_);
  ::unlink(partial_.c_str());  // never finished: no half-written model
}

void GgufStreamWriter::write(size_t i, uint64_t at, const void* bytes, size_t n) {
  if (i >= tensors_.size()) fail(path_, ": no tensor number ", i);
  if (at > sizes_[i] || n > sizes_[i] - at)
    fail(path_, ": tensor '", tensors_[i].name, "': write of ", n, " bytes at ", at, " exceeds its ",
         sizes_[i], " bytes");
  if (fd_ < 0) fail(path_, ": already finished");
  pwrite_all(fd_, path_, bytes, n, file_offsets_[i] + at);
}

void GgufStreamWriter::finish() {
  if (fd_ < 0) return;
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    ::unlink(partial_.c_str());
    fail(path_, ": close failed: ", std::strerror(errno));
  }
  if (::rename(partial_.c_str(), path_.c_str()) != 0) {
    const int e = errno;
    ::unlink(partial_.c_str());
    fail(path_, ": cannot move ", partial_, " into place: ", std::strerror(e));
  }
}

}  // namespace tandem
