// Fuzzes the expert statistics parser (placement/expert_stats.h) with arbitrary text: it must
// either parse or throw tandem::Error; a parsed file's hit rates and hot lists must then compute.
#include <cstddef>
#include <cstdint>
#include <string>

#include "placement/expert_stats.h"
#include "runtime/core/error.h"

using namespace tandem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const placement::ExpertStats s = placement::parse_expert_stats(text, "fuzz.json");
    for (const placement::LayerExpertCounts& l : s.layers) {
      (void)s.hit_rates(l.layer);
      (void)placement::expert_list_text(placement::hottest_experts(l, 4));
    }
    (void)placement::expert_stats_json(s).dump();
  } catch (const Error&) {
  }
  return 0;
}
