#include "runtime/gguf/gguf_writer.h"

#include <cstring>
#include <fstream>

#include "runtime/core/error.h"
#include "runtime/gguf/gguf_encoding.h"

namespace tandem {

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
  std::vector<GgufTensorInfo> infos;
  infos.reserve(tensors.size());
  for (const PendingTensor* t : tensors) infos.push_back({t->name, t->type, t->shape});
  std::vector<uint64_t> offsets;
  std::vector<uint8_t> out = gguf_encode_header(kv, infos, alignment_, &offsets);
  const size_t data_start = out.size();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& bytes = tensors[i]->bytes;
    out.resize(data_start + offsets[i], 0);
    out.insert(out.end(), bytes.begin(), bytes.end());
  }
  out.resize((out.size() + alignment_ - 1) / alignment_ * alignment_, 0);
  return out;
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
