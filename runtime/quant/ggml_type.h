// Tensor element types as numbered in GGUF files (the ggml type ids), with their block geometry.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace tandem {

enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
};

struct GgmlTypeInfo {
  std::string_view name;  // as llama.cpp prints it: "q4_K", "f16", ...
  uint32_t block_size;    // elements per block (1 for plain types)
  uint32_t type_size;     // bytes per block
  bool can_compute;       // tandem has a dequantizer for it
};

// nullopt for an id no GGUF type uses.
std::optional<GgmlTypeInfo> ggml_type_info(uint32_t id);
const GgmlTypeInfo& ggml_type_info(GgmlType t);  // t must be a known type
std::string_view ggml_type_name(GgmlType t);
std::optional<GgmlType> ggml_type_from_name(std::string_view name);  // case-insensitive

// True for the block formats (q4_0 ... q8_K, iq*, tq*, mxfp4); false for float and integer types.
inline bool ggml_type_is_quantized(GgmlType t) { return ggml_type_info(t).block_size > 1; }

// Bytes of a row of n elements; n must be a multiple of the block size (checked by callers).
inline uint64_t ggml_row_bytes(GgmlType t, uint64_t n) {
  const auto& i = ggml_type_info(t);
  return n / i.block_size * i.type_size;
}

}  // namespace tandem
