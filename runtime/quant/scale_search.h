// Least-squares fits of one sub-block's scale (and min) for a given integer range, used by the
// reference quantizers. A small grid of trial scales around the naive one is rounded, refitted
// by least squares, and the one with the smallest squared error wins.
#pragma once

namespace tandem {

struct ScaleAndMin {
  float scale;  // >= 0
  float min;    // >= 0; the format subtracts it: x ~= scale * q - min
};

// x ~= scale * q - min with q in 0..qmax (the form of Q2_K, Q4_K, Q5_K). min >= 0 because the
// formats store it unsigned; rows that are all positive get min = 0.
ScaleAndMin fit_scale_min(const float* x, int n, int qmax);

// x ~= scale * q with q in -qneg..qneg-1 (the form of Q3_K, Q6_K). The scale may be negative,
// so the side holding the largest magnitude can use the extra negative level.
float fit_symmetric_scale(const float* x, int n, int qneg);

}  // namespace tandem
