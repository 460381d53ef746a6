#include "runtime/gguf/gguf_value.h"

#include <limits>
#include <sstream>

namespace tandem {

std::string_view gguf_value_type_name(GgufValueType t) {
  switch (t) {
    case GgufValueType::U8: return "u8";
    case GgufValueType::I8: return "i8";
    case GgufValueType::U16: return "u16";
    case GgufValueType::I16: return "i16";
    case GgufValueType::U32: return "u32";
    case GgufValueType::I32: return "i32";
    case GgufValueType::F32: return "f32";
    case GgufValueType::BOOL: return "bool";
    case GgufValueType::STRING: return "string";
    case GgufValueType::ARRAY: return "array";
    case GgufValueType::U64: return "u64";
    case GgufValueType::I64: return "i64";
    case GgufValueType::F64: return "f64";
  }
  return "unknown";
}

bool GgufValue::is_integer() const {
  return std::holds_alternative<uint64_t>(v) || std::holds_alternative<int64_t>(v);
}

std::optional<int64_t> GgufValue::as_int() const {
  if (auto* u = std::get_if<uint64_t>(&v)) {
    if (*u > uint64_t(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return int64_t(*u);
  }
  if (auto* i = std::get_if<int64_t>(&v)) return *i;
  return std::nullopt;
}

std::optional<double> GgufValue::as_number() const {
  if (auto* u = std::get_if<uint64_t>(&v)) return double(*u);
  if (auto* i = std::get_if<int64_t>(&v)) return double(*i);
  if (auto* d = std::get_if<double>(&v)) return *d;
  return std::nullopt;
}

const std::string* GgufValue::as_string() const { return std::get_if<std::string>(&v); }
const std::vector<GgufValue>* GgufValue::as_array() const {
  return std::get_if<std::vector<GgufValue>>(&v);
}

GgufValue GgufValue::u32(uint32_t x) { return {GgufValueType::U32, GgufValueType::U8, uint64_t(x)}; }
GgufValue GgufValue::i32(int32_t x) { return {GgufValueType::I32, GgufValueType::U8, int64_t(x)}; }
GgufValue GgufValue::u64(uint64_t x) { return {GgufValueType::U64, GgufValueType::U8, x}; }
GgufValue GgufValue::f32(float x) { return {GgufValueType::F32, GgufValueType::U8, double(x)}; }
GgufValue GgufValue::boolean(bool x) { return {GgufValueType::BOOL, GgufValueType::U8, x}; }
GgufValue GgufValue::string(std::string x) {
  return {GgufValueType::STRING, GgufValueType::U8, std::move(x)};
}
GgufValue GgufValue::array(GgufValueType elem, std::vector<GgufValue> items) {
  return {GgufValueType::ARRAY, elem, std::move(items)};
}
GgufValue GgufValue::string_array(const std::vector<std::string>& items) {
  std::vector<GgufValue> out;
  out.reserve(items.size());
  for (const auto& s : items) out.push_back(string(s));
  return array(GgufValueType::STRING, std::move(out));
}
GgufValue GgufValue::f32_array(const std::vector<float>& items) {
  std::vector<GgufValue> out;
  out.reserve(items.size());
  for (float f : items) out.push_back(f32(f));
  return array(GgufValueType::F32, std::move(out));
}
GgufValue GgufValue::i32_array(const std::vector<int32_t>& items) {
  std::vector<GgufValue> out;
  out.reserve(items.size());
  for (int32_t i : items) out.push_back(i32(i));
  return array(GgufValueType::I32, std::move(out));
}

std::string gguf_value_summary(const GgufValue& v, size_t max_items) {
  std::ostringstream s;
  if (auto* a = v.as_array()) {
    s << "[" << gguf_value_type_name(v.array_type) << " x " << a->size() << "]";
    if (!a->empty()) {
      s << " ";
      for (size_t i = 0; i < a->size() && i < max_items; ++i)
        s << (i ? ", " : "") << gguf_value_summary((*a)[i], max_items);
      if (a->size() > max_items) s << ", ...";
    }
  } else if (auto* str = v.as_string()) {
    std::string shown = str->size() > 80 ? str->substr(0, 77) + "..." : *str;
    s << '"';
    for (char c : shown) {
      if (c == '\n') s << "\\n";
      else if (c == '"') s << "\\\"";
      else s << c;
    }
    s << '"';
  } else if (auto* b = std::get_if<bool>(&v.v)) {
    s << (*b ? "true" : "false");
  } else if (auto* u = std::get_if<uint64_t>(&v.v)) {
    s << *u;
  } else if (auto* i = std::get_if<int64_t>(&v.v)) {
    s << *i;
  } else if (auto* d = std::get_if<double>(&v.v)) {
    s << *d;
  }
  return s.str();
}

}  // namespace tandem
