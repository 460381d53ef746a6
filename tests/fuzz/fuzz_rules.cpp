// Fuzzes the placement rules parser with arbitrary YAML text: it must either parse or throw
// tandem::Error, and a parsed rule's name regex must then match a tensor name without throwing.
#include <cstddef>
#include <cstdint>
#include <string>

#include "placement/rules.h"
#include "runtime/core/error.h"

using namespace tandem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const placement::Rules rules = placement::parse_rules_text(text, "fuzz.yaml");
    for (const placement::Rule& r : rules.rules) {
      if (r.match.layers) (void)r.match.layers->contains(7);
      if (r.match.experts) (void)r.match.experts->str();
      (void)r.place.device.str();
      if (r.match.name && r.match.name->size() < 64) (void)placement::full_match(*r.match.name, "blk.3.ffn_up_exps.weight");
    }
  } catch (const Error&) {
  }
  return 0;
}
