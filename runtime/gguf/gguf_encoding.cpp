#include "runtime/gguf/gguf_encoding.h"

#include <cstring>

#include "runtime/core/error.h"

namespace tandem {
namespace {

class ByteSink {
 public:
  explicit ByteSink(std::vector<uint8_t>& out) : bytes(out) {}
  template <typename T>
  void put(T v) {
    const size_t at = bytes.size();
    bytes.resize(at + sizeof(T));
    std::memcpy(bytes.data() + at, &v, sizeof(T));
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    bytes.insert(bytes.end(), s.begin(), s.end());
  }
  std::vector<uint8_t>& bytes;
};

void put_value(ByteSink& out, const std::string& key, const GgufValue& v, GgufValueType type) {
  // A value whose variant does not match its declared type is a caller bug: name the key.
  auto get = [&](auto* tag) -> decltype(auto) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* p = std::get_if<T>(&v.v);
    if (!p) fail("GGUF writer: key '", key, "': value does not hold a ", gguf_value_type_name(type));
    return *p;
  };
  switch (type) {
    case GgufValueType::U8: out.put<uint8_t>(uint8_t(get((uint64_t*)nullptr))); break;
    case GgufValueType::I8: out.put<int8_t>(int8_t(get((int64_t*)nullptr))); break;
    case GgufValueType::U16: out.put<uint16_t>(uint16_t(get((uint64_t*)nullptr))); break;
    case GgufValueType::I16: out.put<int16_t>(int16_t(get((int64_t*)nullptr))); break;
    case GgufValueType::U32: out.put<uint32_t>(uint32_t(get((uint64_t*)nullptr))); break;
    case GgufValueType::I32: out.put<int32_t>(int32_t(get((int64_t*)nullptr))); break;
    case GgufValueType::U64: out.put<uint64_t>(get((uint64_t*)nullptr)); break;
    case GgufValueType::I64: out.put<int64_t>(get((int64_t*)nullptr)); break;
    case GgufValueType::F32: out.put<float>(float(get((double*)nullptr))); break;
    case GgufValueType::F64: out.put<double>(get((double*)nullptr)); break;
    case GgufValueType::BOOL: out.put<uint8_t>(get((bool*)nullptr) ? 1 : 0); break;
    case GgufValueType::STRING: out.put_string(get((std::string*)nullptr)); break;
    case GgufValueType::ARRAY: {
      const auto& items = get((std::vector<GgufValue>*)nullptr);
      out.put<uint32_t>(uint32_t(v.array_type));
      out.put<uint64_t>(items.size());
      for (const auto& item : items) {
        if (item.type != v.array_type)
          fail("GGUF writer: key '", key, "': array element of type ", gguf_value_type_name(item.type),
               " in an array of ", gguf_value_type_name(v.array_type));
        put_value(out, key, item, v.array_type);
      }
      break;
    }
    default: fail("GGUF writer: key '", key, "': unknown value type ", uint32_t(type));
  }
}

}  // namespace

uint64_t GgufTensorInfo::nbytes() const {
  const auto& info = ggml_type_info(type);
  if (shape.empty() || shape.size() > 4 || shape[0] % info.block_size != 0)
    fail("GGUF writer: tensor '", name, "' has rows that are not a multiple of the ", info.name, " block (",
         info.block_size, ") or a rank outside 1..4");
  uint64_t rows = 1;
  for (size_t i = 1; i < shape.size(); ++i) {
    if (shape[i] < 0) fail("GGUF writer: tensor '", name, "' has a negative dimension");
    rows *= uint64_t(shape[i]);
  }
  return ggml_row_bytes(type, uint64_t(shape[0])) * rows;
}

std::vector<uint8_t> gguf_encode_header(const GgufMetadata& kv, const std::vector<GgufTensorInfo>& tensors,
                                        uint64_t alignment, std::vector<uint64_t>* offsets) {
  std::vector<uint8_t> bytes;
  ByteSink out(bytes);
  out.put<uint32_t>(0x46554747);  // "GGUF" little-endian
  out.put<uint32_t>(3);
  out.put<uint64_t>(tensors.size());
  out.put<uint64_t>(kv.size());
  for (const auto& [k, v] : kv) {
    out.put_string(k);
    out.put<uint32_t>(uint32_t(v.type));
    put_value(out, k, v, v.type);
  }
  if (offsets) offsets->clear();
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    out.put_string(t.name);
    out.put<uint32_t>(uint32_t(t.shape.size()));
    for (int64_t d : t.shape) out.put<int64_t>(d);
    out.put<uint32_t>(uint32_t(t.type));
    out.put<uint64_t>(offset);
    if (offsets) offsets->push_back(offset);
    offset += (t.nbytes() + alignment - 1) / alignment * alignment;
  }
  bytes.resize((bytes.size() + alignment - 1) / alignment * alignment, 0);
  return bytes;
}

}  // namespace tandem
