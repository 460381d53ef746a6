#include "runtime/gguf/gguf_file.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <regex>

#include "runtime/core/error.h"
#include "runtime/core/mapped_file.h"

namespace tandem {
namespace {

constexpr uint32_t kMaxDims = 4;          // ggml tensors have at most 4 dimensions
constexpr int kMaxArrayDepth = 8;         // nested arrays deeper than this are refused
constexpr uint64_t kMaxNameBytes = 4096;  // keys and tensor names

// Bounds-checked little-endian reader over one shard's bytes.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& label)
      : data_(data), size_(size), label_(label) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }
  const std::string& label() const { return label_; }

  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const char* what, uint64_t max_len = std::numeric_limits<uint64_t>::max()) {
    const uint64_t len = read<uint64_t>(what);
    if (len > remaining()) fail(label_, ": ", what, " claims ", len, " bytes at offset ", pos_ - 8,
                                 " but only ", remaining(), " remain (truncated or corrupt file)");
    if (len > max_len) fail(label_, ": ", what, " is ", len, " bytes long (limit ", max_len, ")");
    std::string s(reinterpret_cast<const char*>(data_ + pos_), size_t(len));
    pos_ += size_t(len);
    return s;
  }

  void need(size_t n, const char* what) const {
    if (n > remaining())
      fail(label_, ": truncated: ", what, " needs ", n, " bytes at offset ", pos_, ", file has ", size_);
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string label_;
};

bool valid_value_type(uint32_t t) { return t <= uint32_t(GgufValueType::F64); }

// Smallest encoding of one value of type t: bounds how many elements a count may claim.
uint64_t min_value_bytes(GgufValueType t) {
  switch (t) {
    case GgufValueType::U8: case GgufValueType::I8: case GgufValueType::BOOL: return 1;
    case GgufValueType::U16: case GgufValueType::I16: return 2;
    case GgufValueType::U32: case GgufValueType::I32: case GgufValueType::F32: return 4;
    case GgufValueType::STRING: return 8;
    case GgufValueType::ARRAY: return 12;
    case GgufValueType::U64: case GgufValueType::I64: case GgufValueType::F64: return 8;
  }
  return 1;
}

GgufValue read_value(Cursor& c, GgufValueType type, const std::string& key, int depth) {
  GgufValue out;
  out.type = type;
  switch (type) {
    case GgufValueType::U8: out.v = uint64_t(c.read<uint8_t>(key.c_str())); break;
    case GgufValueType::I8: out.v = int64_t(c.read<int8_t>(key.c_str())); break;
    case GgufValueType::U16: out.v = uint64_t(c.read<uint16_t>(key.c_str())); break;
    case GgufValueType::I16: out.v = int64_t(c.read<int16_t>(key.c_str())); break;
    case GgufValueType::U32: out.v = uint64_t(c.read<uint32_t>(key.c_str())); break;
    case GgufValueType::I32: out.v = int64_t(c.read<int32_t>(key.c_str())); break;
    case GgufValueType::U64: out.v = c.read<uint64_t>(key.c_str()); break;
    case GgufValueType::I64: out.v = c.read<int64_t>(key.c_str()); break;
    case GgufValueType::F32: out.v = double(c.read<float>(key.c_str())); break;
    case GgufValueType::F64: out.v = c.read<double>(key.c_str()); break;
    case GgufValueType::BOOL: {
      const uint8_t b = c.read<uint8_t>(key.c_str());
      if (b > 1) fail(c.label(), ": key '", key, "': bool value ", int(b), " is neither 0 nor 1");
      out.v = b != 0;
      break;
    }
    case GgufValueType::STRING: out.v = c.read_string(("value of key '" + key + "'").c_str()); break;
    case GgufValueType::ARRAY: {
      if (depth >= kMaxArrayDepth)
        fail(c.label(), ": key '", key, "': arrays nested deeper than ", kMaxArrayDepth);
      const uint32_t et = c.read<uint32_t>(key.c_str());
      if (!valid_value_type(et))
        fail(c.label(), ": key '", key, "': unknown array element type ", et);
      const uint64_t n = c.read<uint64_t>(key.c_str());
      out.array_type = GgufValueType(et);
      if (n > c.remaining() / min_value_bytes(out.array_type))
        fail(c.label(), ": key '", key, "': array claims ", n, " elements of type ",
             gguf_value_type_name(out.array_type), ", more than the ", c.remaining(),
             " remaining bytes can hold");
      std::vector<GgufValue> items;
      items.reserve(size_t(n));
      for (uint64_t i = 0; i < n; ++i) items.push_back(read_value(c, out.array_type, key, depth + 1));
      out.v = std::move(items);
      break;
    }
  }
  return out;
}

struct SplitName {
  std::string prefix;
  int index;
  int count;
};

std::optional<SplitName> parse_split_name(const std::string& path) {
  static const std::regex re(R"((.*)-(\d{5})-of-(\d{5})\.gguf)");
  std::smatch m;
  if (!std::regex_match(path, m, re)) return std::nullopt;
  return SplitName{m[1].str(), std::stoi(m[2].str()), std::stoi(m[3].str())};
}

std::string split_path(const std::string& prefix, int index, int count) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "-%05d-of-%05d.gguf", index, count);
  return prefix + buf;
}

}  // namespace

int64_t GgufTensor::elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t GgufTensor::rows() const {
  int64_t n = 1;
  for (size_t i = 1; i < shape.size(); ++i) n *= shape[i];
  return n;
}

GgufFile::~GgufFile() = default;

std::unique_ptr<GgufFile> GgufFile::parse(const uint8_t* data, size_t size, const std::string& label) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->path_ = label;
  f->shard_paths_ = {label};
  f->parse_shard(data, size, label, 0);
  return f;
}

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->path_ = path;
  auto first = std::make_unique<MappedFile>(path);
  f->parse_shard(first->data(), first->size(), path, 0);
  f->maps_.push_back(std::move(first));
  f->shard_paths_ = {path};

  const auto split_count = f->get_uint_opt("split.count");
  const auto name = parse_split_name(path);
  if (name && name->index != 1)
    fail(path, ": this is shard ", name->index, " of ", name->count,
         "; open the first shard (", split_path(name->prefix, 1, name->count), ")");
  if (!split_count || *split_count <= 1) return f;

  if (!name)
    fail(path, ": metadata says the model is split into ", *split_count,
         " files, but the name does not follow NAME-00001-of-0000N.gguf, so the others cannot be found");
  if (uint64_t(name->count) != *split_count)
    fail(path, ": name says ", name->count, " shards but split.count is ", *split_count);
  if (auto no = f->get_uint_opt("split.no"); no && *no != 0)
    fail(path, ": split.no is ", *no, ", expected 0 for the first shard");

  for (int i = 2; i <= name->count; ++i) {
    const std::string sp = split_path(name->prefix, i, name->count);
    if (!std::filesystem::exists(sp))
      fail(path, ": shard ", i, " of ", name->count, " is missing: ", sp);
    auto map = std::make_unique<MappedFile>(sp);
    // Each shard is a full GGUF; parse it into a scratch file object, then adopt its tensors.
    std::unique_ptr<GgufFile> shard(new GgufFile());
    shard->parse_shard(map->data(), map->size(), sp, i - 1);
    const auto no = shard->get_uint_opt("split.no");
    const auto cnt = shard->get_uint_opt("split.count");
    if (!no || *no != uint64_t(i - 1))
      fail(sp, ": split.no is ", no ? std::to_string(*no) : std::string("missing"), ", expected ", i - 1);
    if (!cnt || *cnt != *split_count)
      fail(sp, ": split.count is ", cnt ? std::to_string(*cnt) : std::string("missing"),
           ", the first shard says ", *split_count);
    for (auto& t : shard->tensors_) {
      if (f->tensor_index_.count(t.name))
        fail(sp, ": tensor '", t.name, "' also appears in an earlier shard");
      f->tensor_index_[t.name] = f->tensors_.size();
      f->tensors_.push_back(std::move(t));
    }
    f->shard_paths_.push_back(sp);
    f->maps_.push_back(std::move(map));
  }
  if (auto total = f->get_uint_opt("split.tensors.count"); total && *total != f->tensors_.size())
    fail(path, ": split.tensors.count says ", *total, " tensors but the ", name->count,
         " shards hold ", f->tensors_.size());
  return f;
}

void GgufFile::parse_shard(const uint8_t* data, size_t size, const std::string& label, int shard) {
  Cursor c(data, size, label);
  c.need(4, "magic");
  if (std::memcmp(data, "GGUF", 4) != 0) fail(label, ": not a GGUF file (bad magic)");
  c.read<uint32_t>("magic");
  const uint32_t version = c.read<uint32_t>("version");
  if (version != 2 && version != 3)
    fail(label, ": GGUF version ", version, " is not supported (only 2 and 3)");
  if (shard == 0) version_ = version;
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata count");
  if (n_kv > c.remaining() / 13)
    fail(label, ": metadata count ", n_kv, " is impossible for a file of ", size, " bytes");
  if (n_tensors > c.remaining() / 24)
    fail(label, ": tensor count ", n_tensors, " is impossible for a file of ", size, " bytes");

  std::vector<std::pair<std::string, GgufValue>> kv;
  std::map<std::string, size_t, std::less<>> kv_index;
  kv.reserve(size_t(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.read_string("metadata key", kMaxNameBytes);
    const uint32_t t = c.read<uint32_t>("metadata value type");
    if (!valid_value_type(t)) fail(label, ": key '", key, "' has unknown value type ", t);
    GgufValue v = read_value(c, GgufValueType(t), key, 0);
    if (kv_index.count(key)) fail(label, ": key '", key, "' appears twice");
    kv_index[key] = kv.size();
    kv.emplace_back(std::move(key), std::move(v));
  }

  uint64_t alignment = 32;
  if (auto it = kv_index.find("general.alignment"); it != kv_index.end()) {
    const auto a = kv[it->second].second.as_int();
    if (!a || *a <= 0 || (*a & (*a - 1)) != 0 || *a > (1 << 20))
      fail(label, ": general.alignment must be a power of two up to 1 MiB, got ",
           gguf_value_summary(kv[it->second].second));
    alignment = uint64_t(*a);
  }

  std::vector<GgufTensor> tensors;
  tensors.reserve(size_t(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensor t;
    t.name = c.read_string("tensor name", kMaxNameBytes);
    t.shard = shard;
    const uint32_t n_dims = c.read<uint32_t>("tensor dimension count");
    if (n_dims == 0 || n_dims > kMaxDims)
      fail(label, ": tensor '", t.name, "' has ", n_dims, " dimensions (1 to ", kMaxDims, " allowed)");
    int64_t elements = 1;
    int64_t nonzero = 1;  // product of the non-zero dims: bounds rows() even when one dim is 0
    for (uint32_t d = 0; d < n_dims; ++d) {
      const int64_t n = c.read<int64_t>("tensor dimension");
      if (n < 0) fail(label, ": tensor '", t.name, "' has negative dimension ", n);
      if (n != 0 && nonzero > std::numeric_limits<int64_t>::max() / n)
        fail(label, ": tensor '", t.name, "' has a shape whose element count overflows");
      if (n != 0) nonzero *= n;
      elements *= n;
      t.shape.push_back(n);
    }
    const uint32_t type_id = c.read<uint32_t>("tensor type");
    const auto info = ggml_type_info(type_id);
    if (!info) fail(label, ": tensor '", t.name, "' has unknown type id ", type_id);
    t.type = GgmlType(type_id);
    if (t.shape[0] % info->block_size != 0)
      fail(label, ": tensor '", t.name, "' of type ", info->name, " has rows of ", t.shape[0],
           " elements, not a multiple of the block size ", info->block_size);
    const uint64_t blocks = uint64_t(elements) / info->block_size;
    if (blocks != 0 && info->type_size > std::numeric_limits<uint64_t>::max() / blocks)
      fail(label, ": tensor '", t.name, "' byte size overflows");
    t.nbytes = blocks * info->type_size;
    t.offset = c.read<uint64_t>("tensor offset");
    if (t.offset % alignment != 0)
      fail(label, ": tensor '", t.name, "' offset ", t.offset, " is not aligned to ", alignment);
    tensors.push_back(std::move(t));
  }

  const uint64_t data_start = (uint64_t(c.pos()) + alignment - 1) / alignment * alignment;
  const uint64_t data_size = data_start <= size ? size - data_start : 0;
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return tensors[a].offset < tensors[b].offset; });
  for (size_t k = 0; k < order.size(); ++k) {
    GgufTensor& t = tensors[order[k]];
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      fail(label, ": tensor '", t.name, "' data [", t.offset, ", ", t.offset + t.nbytes,
           ") lies outside the data section of ", data_size, " bytes (truncated file?)");
    if (k + 1 < order.size()) {
      const GgufTensor& next = tensors[order[k + 1]];
      if (t.nbytes > 0 && next.offset < t.offset + t.nbytes)
        fail(label, ": tensors '", t.name, "' and '", next.name, "' overlap in the data section");
    }
    t.data = data + data_start + t.offset;
  }

  // A later shard is parsed into a scratch object, so its keys land there (for the split checks).
  kv_ = std::move(kv);
  kv_index_ = std::move(kv_index);
  alignment_ = alignment;
  for (auto& t : tensors) {
    if (tensor_index_.count(t.name)) fail(label, ": tensor '", t.name, "' appears twice");
    tensor_index_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

namespace {
[[noreturn]] void wrong_type(const std::string& path, std::string_view key, const GgufValue& v,
                             const char* wanted) {
  fail(path, ": metadata key '", key, "' is ", gguf_value_type_name(v.type), ", expected ", wanted);
}
}  // namespace

std::optional<uint64_t> GgufFile::get_uint_opt(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  // Unsigned values above INT64_MAX are valid here (as_int() cannot represent them).
  if (auto* u = std::get_if<uint64_t>(&v->v)) return *u;
  const auto i = v->as_int();
  if (!v->is_integer() || !i || *i < 0) wrong_type(path_, key, *v, "a non-negative integer");
  return uint64_t(*i);
}

uint64_t GgufFile::get_uint(std::string_view key) const {
  if (auto v = get_uint_opt(key)) return *v;
  fail(path_, ": metadata key '", key, "' is missing");
}

int64_t GgufFile::get_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) fail(path_, ": metadata key '", key, "' is missing");
  const auto i = v->as_int();
  if (!i) wrong_type(path_, key, *v, "an integer");
  return *i;
}

std::optional<double> GgufFile::get_float_opt(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  const auto d = v->as_number();
  if (!d) wrong_type(path_, key, *v, "a number");
  return d;
}

double GgufFile::get_float(std::string_view key) const {
  if (auto v = get_float_opt(key)) return *v;
  fail(path_, ": metadata key '", key, "' is missing");
}

std::optional<bool> GgufFile::get_bool_opt(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (auto* b = std::get_if<bool>(&v->v)) return *b;
  wrong_type(path_, key, *v, "a bool");
}

bool GgufFile::get_bool(std::string_view key) const {
  if (auto v = get_bool_opt(key)) return *v;
  fail(path_, ": metadata key '", key, "' is missing");
}

std::optional<std::string> GgufFile::get_string_opt(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (auto* s = v->as_string()) return *s;
  wrong_type(path_, key, *v, "a string");
}

std::string GgufFile::get_string(std::string_view key) const {
  if (auto v = get_string_opt(key)) return *v;
  fail(path_, ": metadata key '", key, "' is missing");
}

namespace {
const std::vector<GgufValue>& require_array(const GgufFile& f, std::string_view key) {
  const GgufValue* v = f.find(key);
  if (!v) fail(f.path(), ": metadata key '", key, "' is missing");
  const auto* a = v->as_array();
  if (!a) fail(f.path(), ": metadata key '", key, "' is ", gguf_value_type_name(v->type), ", expected an array");
  return *a;
}
}  // namespace

std::vector<std::string> GgufFile::get_string_array(std::string_view key) const {
  const auto& a = require_array(*this, key);
  std::vector<std::string> out;
  out.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    const auto* s = a[i].as_string();
    if (!s) fail(path_, ": metadata key '", key, "' element ", i, " is not a string");
    out.push_back(*s);
  }
  return out;
}

std::vector<int64_t> GgufFile::get_int_array(std::string_view key) const {
  const auto& a = require_array(*this, key);
  std::vector<int64_t> out;
  out.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    const auto v = a[i].as_int();
    if (!v) fail(path_, ": metadata key '", key, "' element ", i, " is not an integer");
    out.push_back(*v);
  }
  return out;
}

std::vector<float> GgufFile::get_float_array(std::string_view key) const {
  const auto& a = require_array(*this, key);
  std::vector<float> out;
  out.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    const auto v = a[i].as_number();
    if (!v) fail(path_, ": metadata key '", key, "' element ", i, " is not a number");
    out.push_back(float(*v));
  }
  return out;
}

const GgufTensor* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensor& GgufFile::tensor(std::string_view name) const {
  if (const GgufTensor* t = find_tensor(name)) return *t;
  fail(path_, ": tensor '", name, "' is missing");
}

uint64_t GgufFile::total_tensor_bytes() const {
  uint64_t n = 0;
  for (const auto& t : tensors_) n += t.nbytes;
  return n;
}

}  // namespace tandem
