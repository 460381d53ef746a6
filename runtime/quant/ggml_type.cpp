#include "runtime/quant/ggml_type.h"

#include <array>
#include <cctype>

#include "runtime/core/error.h"
#include "runtime/quant/block_formats.h"

namespace tandem {
namespace {

struct Entry {
  uint32_t id;
  GgmlTypeInfo info;
};

// Sizes follow the block layouts in block_formats.h; the sizes of the types tandem cannot compute
// yet (MXFP4) let the loader check bounds and report the type by name.
constexpr std::array kTypes = {
    Entry{0, {"f32", 1, 4, true}},        Entry{1, {"f16", 1, 2, true}},
    Entry{2, {"q4_0", 32, 18, true}},     Entry{3, {"q4_1", 32, 20, true}},
    Entry{6, {"q5_0", 32, 22, true}},     Entry{7, {"q5_1", 32, 24, true}},
    Entry{8, {"q8_0", 32, 34, true}},     Entry{9, {"q8_1", 32, 36, false}},
    Entry{10, {"q2_K", 256, 84, true}},   Entry{11, {"q3_K", 256, 110, true}},
    Entry{12, {"q4_K", 256, 144, true}},  Entry{13, {"q5_K", 256, 176, true}},
    Entry{14, {"q6_K", 256, 210, true}},  Entry{15, {"q8_K", 256, 292, false}},
    Entry{16, {"iq2_xxs", 256, sizeof(BlockIQ2_XXS), true}}, Entry{17, {"iq2_xs", 256, sizeof(BlockIQ2_XS), true}},
    Entry{18, {"iq3_xxs", 256, sizeof(BlockIQ3_XXS), true}}, Entry{19, {"iq1_s", 256, sizeof(BlockIQ1_S), true}},
    Entry{20, {"iq4_nl", 32, 18, true}}, Entry{21, {"iq3_s", 256, sizeof(BlockIQ3_S), true}},
    Entry{22, {"iq2_s", 256, sizeof(BlockIQ2_S), true}}, Entry{23, {"iq4_xs", 256, 136, true}},
    Entry{24, {"i8", 1, 1, false}},       Entry{25, {"i16", 1, 2, false}},
    Entry{26, {"i32", 1, 4, false}},      Entry{27, {"i64", 1, 8, false}},
    Entry{28, {"f64", 1, 8, false}},      Entry{29, {"iq1_m", 256, sizeof(BlockIQ1_M), true}},
    Entry{30, {"bf16", 1, 2, true}},      Entry{34, {"tq1_0", 256, sizeof(BlockTQ1_0), true}},
    Entry{35, {"tq2_0", 256, sizeof(BlockTQ2_0), true}}, Entry{39, {"mxfp4", 32, 17, false}},
};

}  // namespace

std::optional<GgmlTypeInfo> ggml_type_info(uint32_t id) {
  for (const auto& e : kTypes)
    if (e.id == id) return e.info;
  return std::nullopt;
}

const GgmlTypeInfo& ggml_type_info(GgmlType t) {
  for (const auto& e : kTypes)
    if (e.id == uint32_t(t)) return e.info;
  fail("unknown ggml type id ", uint32_t(t));
}

std::string_view ggml_type_name(GgmlType t) { return ggml_type_info(t).name; }

std::optional<GgmlType> ggml_type_from_name(std::string_view name) {
  for (const auto& e : kTypes) {
    if (e.info.name.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i)
      same = std::tolower(static_cast<unsigned char>(name[i])) ==
             std::tolower(static_cast<unsigned char>(e.info.name[i]));
    if (same) return GgmlType(e.id);
  }
  return std::nullopt;
}

}  // namespace tandem
