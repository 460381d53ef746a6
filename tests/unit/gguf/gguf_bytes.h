// Builds GGUF images byte by byte so that tests can break any field on purpose.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/gguf/gguf_file.h"

namespace tandem::test {

struct GgufBytes {
  std::vector<uint8_t> b;

  template <typename T>
  GgufBytes& put(T v) {
    const size_t at = b.size();
    b.resize(at + sizeof(T));
    std::memcpy(b.data() + at, &v, sizeof(T));
    return *this;
  }
  GgufBytes& u32(uint32_t v) { return put(v); }
  GgufBytes& u64(uint64_t v) { return put(v); }
  GgufBytes& i64(int64_t v) { return put(v); }
  GgufBytes& str(const std::string& s) {
    u64(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  GgufBytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    b.insert(b.end(), {'G', 'G', 'U', 'F'});
    return u32(version).u64(n_tensors).u64(n_kv);
  }
  GgufBytes& kv_u32(const std::string& key, uint32_t v) { return str(key).u32(4).u32(v); }
  GgufBytes& kv_str(const std::string& key, const std::string& v) { return str(key).u32(8).str(v); }
  GgufBytes& tensor_info(const std::string& name, const std::vector<int64_t>& shape, uint32_t type,
                         uint64_t offset) {
    str(name).u32(uint32_t(shape.size()));
    for (int64_t d : shape) i64(d);
    return u32(type).u64(offset);
  }
  GgufBytes& pad(size_t alignment = 32) {
    while (b.size() % alignment) b.push_back(0);
    return *this;
  }
  GgufBytes& zeros(size_t n) {
    b.resize(b.size() + n, 0);
    return *this;
  }
};

// The message of the Error that parsing throws; a test failure when parsing succeeds.
inline std::string parse_error(const std::vector<uint8_t>& bytes, const std::string& label = "bad.gguf") {
  try {
    GgufFile::parse(bytes.data(), bytes.size(), label);
  } catch (const Error& e) {
    return e.what();
  }
  return "(parsed without error)";
}

}  // namespace tandem::test
