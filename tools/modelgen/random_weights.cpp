#include "tools/modelgen/random_weights.h"

#include <cmath>
#include <cstring>

namespace tandem::modelgen {
namespace {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : s) h = (h ^ uint8_t(c)) * 0x100000001b3ull;
  return h;
}

// Approximately standard normal: the sum of four 16-bit uniforms (Irwin-Hall), rescaled to unit
// variance. One 64-bit draw per value; tails stop at 3.46 sigma, which suits weights well.
inline float unit_normal(uint64_t& state) {
  const uint64_t r = splitmix64(state);
  const uint32_t s = uint32_t(r & 0xFFFF) + uint32_t((r >> 16) & 0xFFFF) + uint32_t((r >> 32) & 0xFFFF) +
                     uint32_t(r >> 48);
  constexpr float kCenter = 2.0f * 65535.0f;
  constexpr float kScale = 1.7320508f / 65535.0f;  // sqrt(3): sum of 4 U(0,1) has variance 1/3
  return (float(s) - kCenter) * kScale;
}

}  // namespace

void fill_weights(const PlannedTensor& t, uint64_t seed, int64_t first_row, int64_t n_rows, float* out) {
  const int64_t n = t.info.shape[0];
  const uint64_t tensor_key = fnv1a(t.info.name) ^ (seed * 0xD1B54A32D192ED03ull);
  for (int64_t r = 0; r < n_rows; ++r) {
    uint64_t state = tensor_key + uint64_t(first_row + r) * 0x9E3779B97F4A7C15ull;
    splitmix64(state);
    float* row = out + r * n;
    if (t.init == WeightInit::NearOne) {
      for (int64_t i = 0; i < n; ++i) row[i] = 1.0f + t.scale * unit_normal(state);
    } else {
      for (int64_t i = 0; i < n; ++i) row[i] = t.scale * unit_normal(state);
    }
  }
}

void fill_from_block_pool(const PlannedTensor& t, uint64_t seed, int64_t first_row, int64_t n_rows,
                          const uint8_t* pool, int64_t pool_blocks, uint64_t block_bytes, uint8_t* out) {
  const int64_t blocks_per_row = t.info.shape[0] / int64_t(ggml_type_info(t.info.type).block_size);
  const uint64_t tensor_key = fnv1a(t.info.name) ^ (seed * 0xD1B54A32D192ED03ull) ^ 0x5bd1e995ull;
  for (int64_t r = 0; r < n_rows; ++r) {
    uint64_t state = tensor_key + uint64_t(first_row + r) * 0x9E3779B97F4A7C15ull;
    for (int64_t b = 0; b < blocks_per_row; ++b) {
      const uint64_t pick = splitmix64(state) % uint64_t(pool_blocks);
      std::memcpy(out, pool + pick * block_bytes, block_bytes);
      out += block_bytes;
    }
  }
}

}  // namespace tandem::modelgen
