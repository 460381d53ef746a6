// Codebooks of the i-quant formats (IQ1_S/M, IQ2_XXS/XS/S, IQ3_XXS/S): the lattice points a grid
// index selects and the sign table of the even-parity sign bytes. They are part of the GGUF
// format (chosen by usage, not by a formula); iq_grids.cpp holds them packed and expands them at
// compile time into these tables, which every decoder and kernel reads.
#pragma once

#include <cstdint>

namespace tandem::iq {
// Expanded codebooks: byte j of entry i is the j-th value of grid point i.
extern const uint64_t kIq2xxsGrid[256];   // magnitudes (unsigned bytes)
extern const uint64_t kIq2xsGrid[512];
extern const uint64_t kIq2sGrid[1024];
extern const uint32_t kIq3xxsGrid[256];
extern const uint32_t kIq3sGrid[512];
extern const uint64_t kIq1sGrid[2048];    // signed bytes -1, 0, +1
extern const uint8_t kSignsEven[128];     // 7 sign bits -> 8 signs with even parity (ksigns)
constexpr float kIq1sDelta = 0.125f;      // IQ1_S / IQ1_M delta
}
