// Random expert weights for tests: float matrices quantized with the reference quantizer.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>
#include <random>
#include <vector>

#include "experts/moe_engine.h"
#include "runtime/quant/quantize.h"

namespace tandem::test {

inline std::vector<float> random_floats(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// rows x cols matrices, n_matrices of them back to back, quantized row by row.
inline std::vector<uint8_t> random_matrices(GgmlType type, int64_t n_matrices, int64_t rows, int64_t cols,
                                            std::mt19937& rng, float scale) {
  const int64_t row_bytes = int64_t(ggml_row_bytes(type, uint64_t(cols)));
  std::vector<uint8_t> out(size_t(n_matrices * rows * row_bytes));
  for (int64_t r = 0; r < n_matrices * rows; ++r) {
    const auto row = random_floats(size_t(cols), rng, scale);
    quantize_row(type, row.data(), out.data() + r * row_bytes, cols);
  }
  return out;
}

struct RandomLayer {
  std::vector<uint8_t> gate, up, down;
  MoeLayerWeights weights;
};

inline RandomLayer random_layer(GgmlType gate_up, GgmlType down, int64_t n_experts, int64_t hidden, int64_t ffn,
                                uint32_t seed) {
  std::mt19937 rng(seed);
  RandomLayer L;
  // Scales keep SiLU in its curved range and outputs of order one.
  L.gate = random_matrices(gate_up, n_experts, ffn, hidden, rng, 1.0f / std::sqrt(float(hidden)) * 2.0f);
  L.up = random_matrices(gate_up, n_experts, ffn, hidden, rng, 1.0f / std::sqrt(float(hidden)) * 2.0f);
  L.down = random_matrices(down, n_experts, hidden, ffn, rng, 1.0f / std::sqrt(float(ffn)) * 2.0f);
  L.weights = {gate_up, gate_up, down, L.gate.data(), L.up.data(), L.down.data(), n_experts, hidden, ffn};
  return L;
}

// The same random layer for every test that asks (quantizing is the slow part of these tests).
inline const RandomLayer& cached_layer(GgmlType gate_up, GgmlType down, int64_t n_experts, int64_t hidden,
                                       int64_t ffn, uint32_t seed) {
  using Key = std::tuple<GgmlType, GgmlType, int64_t, int64_t, int64_t, uint32_t>;
  static std::map<Key, std::unique_ptr<RandomLayer>> cache;
  auto& slot = cache[Key{gate_up, down, n_experts, hidden, ffn, seed}];
  if (!slot) slot = std::make_unique<RandomLayer>(random_layer(gate_up, down, n_experts, hidden, ffn, seed));
  return *slot;
}

// Normalised mean squared error of `got` against `want`.
inline double nmse(const std::vector<float>& got, const std::vector<float>& want) {
  double err = 0, ref = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    err += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    ref += double(want[i]) * want[i];
  }
  return ref > 0 ? err / ref : err;
}

}  // namespace tandem::test
