// A metadata value of a GGUF file: one of the 13 GGUF value types, arrays nested to any depth.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace tandem {

enum class GgufValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};

std::string_view gguf_value_type_name(GgufValueType t);

struct GgufValue {
  GgufValueType type = GgufValueType::U8;
  GgufValueType array_type = GgufValueType::U8;  // element type when type == ARRAY
  // Unsigned integers live in uint64_t, signed in int64_t, floats in double; `type` keeps
  // the exact on-disk type so that a writer can reproduce it.
  std::variant<uint64_t, int64_t, double, bool, std::string, std::vector<GgufValue>> v;

  bool is_integer() const;
  bool is_float() const { return type == GgufValueType::F32 || type == GgufValueType::F64; }
  std::optional<int64_t> as_int() const;      // any integer type that fits in int64
  std::optional<double> as_number() const;    // any integer or float type
  const std::string* as_string() const;       // nullptr unless STRING
  const std::vector<GgufValue>* as_array() const;  // nullptr unless ARRAY

  static GgufValue u32(uint32_t x);
  static GgufValue i32(int32_t x);
  static GgufValue u64(uint64_t x);
  static GgufValue f32(float x);
  static GgufValue boolean(bool x);
  static GgufValue string(std::string x);
  static GgufValue array(GgufValueType elem, std::vector<GgufValue> items);
  static GgufValue string_array(const std::vector<std::string>& items);
  static GgufValue f32_array(const std::vector<float>& items);
  static GgufValue i32_array(const std::vector<int32_t>& items);
};

// Short rendering for `tandem inspect`: scalars in full, arrays as "[type x N]" plus a preview.
std::string gguf_value_summary(const GgufValue& v, size_t max_items = 8);

}  // namespace tandem
