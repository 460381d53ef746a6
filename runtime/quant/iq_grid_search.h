// Nearest codebook point for the lattice i-quant encoders (internal to runtime/quant). A
// codebook holds only some of the points of its lattice (levels^group), so rounding each element
// to its nearest level may land off the codebook; for every off-codebook lattice point the
// codebook points within its two nearest distance shells are listed once, at first use, and the
// weighted search runs over those. With the rounded point on the codebook it is the exact
// weighted optimum (the error is a sum over elements).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tandem::iq_search {

struct Codebook {
  int group = 0;                   // elements per point: 8 or 4
  std::vector<float> levels;       // the values one element can take, ascending
  std::vector<uint8_t> digits;     // point i, element j: level index digits[i * group + j]
  std::vector<int32_t> on_grid;    // lattice code -> codebook index, or -1
  std::vector<uint32_t> near_begin;  // lattice code -> its candidates near[near_begin[c] ..)
  std::vector<uint16_t> near;

  float value(int point, int j) const { return levels[digits[size_t(point) * size_t(group) + size_t(j)]]; }
};

// The codebooks of iq_grids.h; IQ2 and IQ3 ones hold magnitudes, IQ1_S's the values -1, 0, +1.
const Codebook& iq2xxs_codebook();
const Codebook& iq2xs_codebook();
const Codebook& iq2s_codebook();
const Codebook& iq3xxs_codebook();
const Codebook& iq3s_codebook();
const Codebook& iq1s_codebook();

// The point minimising sum_j w[j] * (y[j] - value(point, j))^2 over group elements, with y in
// level units (the targets divided by the scale).
int best_point(const Codebook& cb, const float* y, const float* w);

}  // namespace tandem::iq_search
