#include "runtime/gpu/codebooks.h"

#include "runtime/core/error.h"
#include "runtime/quant/iq_grids.h"

namespace tandem::gpu {
namespace {

template <class T, size_t N>
std::vector<uint32_t> words(const T (&grid)[N]) {
  std::vector<uint32_t> w;
  w.reserve(N * sizeof(T) / 4);
  for (T v : grid)
    for (size_t k = 0; k < sizeof(T) / 4; ++k) w.push_back(uint32_t(uint64_t(v) >> (32 * k)));
  return w;
}

}  // namespace

bool has_codebook(GgmlType type) {
  switch (type) {
    case GgmlType::IQ1_S: case GgmlType::IQ1_M: case GgmlType::IQ2_XXS: case GgmlType::IQ2_XS: case GgmlType::IQ2_S:
    case GgmlType::IQ3_XXS: case GgmlType::IQ3_S:
      return true;
    default: return false;
  }
}

std::vector<uint32_t> codebook_words(GgmlType type) {
  switch (type) {
    case GgmlType::IQ2_XXS: return words(iq::kIq2xxsGrid);
    case GgmlType::IQ2_XS: return words(iq::kIq2xsGrid);
    case GgmlType::IQ2_S: return words(iq::kIq2sGrid);
    case GgmlType::IQ3_XXS: return words(iq::kIq3xxsGrid);
    case GgmlType::IQ3_S: return words(iq::kIq3sGrid);
    case GgmlType::IQ1_S: case GgmlType::IQ1_M: return words(iq::kIq1sGrid);
    default: fail("GPU codebook: weight type ", ggml_type_name(type), " has none");
  }
}

}  // namespace tandem::gpu
