#include "runtime/gguf/gguf_writer.h"

#include <cstring>
#include <fstream>

#include "runtime/core/error.h"

namespace tandem {
namespace {

class ByteSink {
 public:
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
  void pad_to(uint64_t alignment) {
    while (bytes.size() % alignment) bytes.push_back(0);
  }
  std::vector<uint8_t> bytes;
};

void put_value(ByteSink& out, const GgufValue& v, GgufValueType type) {
  switch (type) {
    case GgufValueType::U8: out.put<uint8_t>(uint8_t(std::get<uint64_t>(v.v))); break;
    case GgufValueType::I8: out.put<int8_t>(int8_t(std::get<int64_t>(v.v))); break;
    case GgufValueType::U16: out.put<uint16_t>(uint16_t(std::get<uint64_t>(v.v))); break;
    case GgufValueType::I16: out.put<int16_t>(int16_t(std::get<int64_t>(v.v))); break;
    case GgufValueType::U32: out.put<uint32_t>(uint32_t(std::get<uint64_t>(v.v))); break;
    case GgufValueType::I32: out.put<int32_t>(int32_t(std::get<int64_t>(v.v))); break;
    case GgufValueType::U64: out.put<uint64_t>(std::get<uint64_t>(v.v)); break;
    case GgufValueType::I64: out.put<int64_t>(std::get<int64_t>(v.v)); break;
    case GgufValueType::F32: out.put<float>(float(std::get<double>(v.v))); break;
    case GgufValueType::F64: out.put<double>(std::get<double>(v.v)); break;
    case GgufValueType::BOOL: out.put<uint8_t>(std::get<bool>(v.v) ? 1 : 0); break;
    case GgufValueType::STRING: out.put_string(std::get<std::string>(v.v)); break;
    case GgufValueType::ARRAY: {
      const auto& items = std::get<std::vector<GgufValue>>(v.v);
      out.put<uint32_t>(uint32_t(v.array_type));
      out.put<uint64_t>(items.size());
      for (const auto& item : items) {
        if (item.type != v.array_type) fail("GGUF writer: array element of type ",
                                            gguf_value_type_name(item.type), " in an array of ",
                                            gguf_value_type_name(v.array_type));
        put_value(out, item, v.array_type);
      }
      break;
    }
  }
}

}  // namespace

void GgufWriter::set(std::string key, GgufValue value) {
  for (auto& [k, v] : kv_)
    if (k == key) {
      v = std::move(value);
      return;
    }
  kv_.emplace_back(std::move(key), std::move(value));
}

void GgufWriter::add_tensor(std::string name, GgmlType type, std::vector<int64_t> shape,
                            std::vector<uint8_t> bytes) {
  const auto& info = ggml_type_info(type);
  if (shape.empty() || shape[0] % info.block_size != 0)
    fail("GGUF writer: tensor '", name, "' rows are not a multiple of the ", info.name, " block");
  uint64_t rows = 1;
  for (size_t i = 1; i < shape.size(); ++i) rows *= uint64_t(shape[i]);
  const uint64_t want = ggml_row_bytes(type, uint64_t(shape[0])) * rows;
  if (bytes.size() != want)
    fail("GGUF writer: tensor '", name, "' has ", bytes.size(), " bytes, its shape needs ", want);
  tensors_.push_back({std::move(name), type, std::move(shape), std::move(bytes)});
}

std::vector<uint8_t> GgufWriter::serialize(const std::vector<std::pair<std::string, GgufValue>>& kv,
                                           const std::vector<const PendingTensor*>& tensors) const {
  ByteSink out;
  out.put<uint32_t>(0x46554747);  // "GGUF" little-endian
  out.put<uint32_t>(3);
  out.put<uint64_t>(tensors.size());
  out.put<uint64_t>(kv.size());
  for (const auto& [k, v] : kv) {
    out.put_string(k);
    out.put<uint32_t>(uint32_t(v.type));
    put_value(out, v, v.type);
  }
  uint64_t offset = 0;
  for (const PendingTensor* t : tensors) {
    out.put_string(t->name);
    out.put<uint32_t>(uint32_t(t->shape.size()));
    for (int64_t d : t->shape) out.put<int64_t>(d);
    out.put<uint32_t>(uint32_t(t->type));
    out.put<uint64_t>(offset);
    offset += (t->bytes.size() + alignment_ - 1) / alignment_ * alignment_;
  }
  out.pad_to(alignment_);
  for (const PendingTensor* t : tensors) {
    out.bytes.insert(out.bytes.end(), t->bytes.begin(), t->bytes.end());
    out.pad_to(alignment_);
  }
  return std::move(out.bytes);
}

std::vector<uint8_t> GgufWriter::to_bytes() const {
  auto kv = kv_;
  if (alignment_ != 32) kv.emplace_back("general.alignment", GgufValue::u32(alignment_));
  std::vector<const PendingTensor*> all;
  for (const auto& t : tensors_) all.push_back(&t);
  return serialize(kv, all);
}

namespace {
void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) fail(path, ": cannot open for writing");
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  if (!f) fail(path, ": write failed");
}
}  // namespace

void GgufWriter::write(const std::string& path) const { write_bytes(path, to_bytes()); }

void GgufWriter::write_split(const std::string& first_path, int max_tensors_per_shard) const {
  const std::string suffix = "-00001-of-";
  const auto at = first_path.rfind(suffix);
  if (at == std::string::npos || max_tensors_per_shard <= 0)
    fail("GGUF writer: split output name must look like NAME-00001-of-0000N.gguf: ", first_path);
  const std::string prefix = first_path.substr(0, at);
  const int count = int((tensors_.size() + size_t(max_tensors_per_shard) - 1) / size_t(max_tensors_per_shard));
  for (int s = 0; s < std::max(count, 1); ++s) {
    std::vector<std::pair<std::string, GgufValue>> kv;
    if (s == 0) {
      kv = kv_;
      if (alignment_ != 32) kv.emplace_back("general.alignment", GgufValue::u32(alignment_));
    } else if (alignment_ != 32) {
      kv.emplace_back("general.alignment", GgufValue::u32(alignment_));
    }
    kv.emplace_back("split.no", GgufValue{GgufValueType::U16, GgufValueType::U8, uint64_t(s)});
    kv.emplace_back("split.count", GgufValue{GgufValueType::U16, GgufValueType::U8, uint64_t(count)});
    kv.emplace_back("split.tensors.count", GgufValue::i32(int32_t(tensors_.size())));
    std::vector<const PendingTensor*> part;
    for (size_t i = size_t(s) * size_t(max_tensors_per_shard);
         i < tensors_.size() && i < size_t(s + 1) * size_t(max_tensors_per_shard); ++i)
      part.push_back(&tensors_[i]);
    char name[32];
    std::snprintf(name, sizeof name, "-%05d-of-%05d.gguf", s + 1, count);
    write_bytes(prefix + name, serialize(kv, part));
  }
}

}  // namespace tandem
