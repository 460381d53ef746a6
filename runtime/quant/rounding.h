// Round-to-nearest into an integer quant range, shared by the reference quantizers.
#pragma once

#include <algorithm>
#include <cmath>

namespace tandem {

// Nearest integer to v (ties away from zero), clamped to lo..hi. Clamping first keeps lround
// in range for huge v.
inline int round_clamp(float v, int lo, int hi) {
  return int(std::lround(std::clamp(v, float(lo), float(hi))));
}

// v / d rounded and clamped; 0 when d is 0 (an all-zero block).
inline int quantize_value(float v, float d, int lo, int hi) {
  return d == 0.0f ? std::clamp(0, lo, hi) : round_clamp(v / d, lo, hi);
}

}  // namespace tandem
