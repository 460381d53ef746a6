// Fuzzes the machine portrait parser (placement/machine_portrait.h) with arbitrary text: it must
// either parse or throw tandem::Error; a parsed portrait must then interpolate, tabulate and draw.
#include <cstddef>
#include <cstdint>
#include <string>

#include "placement/machine_portrait.h"
#include "runtime/core/error.h"

using namespace tandem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const placement::MachinePortrait p = placement::parse_portrait(text, "fuzz.json");
    for (size_t n = 0; n < p.nodes.size(); ++n) (void)p.node_bandwidth(int(n), 3);
    (void)p.topology();
    (void)placement::portrait_table(p);
    (void)placement::portrait_svg(p);
  } catch (const Error&) {
  }
  return 0;
}
