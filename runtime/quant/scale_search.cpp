#include "runtime/quant/scale_search.h"

#include <algorithm>
#include <cmath>

#include "runtime/quant/rounding.h"

namespace tandem {
namespace {

// Trial inverse scales are (levels + kStep * k) / range for k in -kSteps..kSteps: slightly
// coarser or finer than the naive grid, which often clips a few outliers for less error overall.
constexpr int kSteps = 20;
constexpr float kStep = 0.05f;

}  // namespace

ScaleAndMin fit_scale_min(const float* x, int n, int qmax) {
  float lo = 0.0f, hi = x[0];
  for (int i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  if (hi <= lo) return {0.0f, -lo};  // constant row: the min alone reproduces it
  const float range = hi - lo;
  ScaleAndMin best{range / float(qmax), -lo};
  double best_err = 0.0;
  for (int i = 0; i < n; ++i) {
    const int q = round_clamp((x[i] - lo) / best.scale, 0, qmax);
    const double e = double(best.scale) * q - best.min - x[i];
    best_err += e * e;
  }
  for (int k = -kSteps; k <= kSteps; ++k) {
    const float iscale = (float(qmax) + kStep * float(k)) / range;
    // Least squares of x ~= a * q + c over the rounded q.
    double sq = 0, sx = 0, sqq = 0, sqx = 0;
    for (int i = 0; i < n; ++i) {
      const int q = round_clamp((x[i] - lo) * iscale, 0, qmax);
      sq += q;
      sx += x[i];
      sqq += double(q) * q;
      sqx += double(q) * x[i];
    }
    const double det = n * sqq - sq * sq;
    if (det <= 0) continue;
    double a = (n * sqx - sq * sx) / det;
    double c = (sx - a * sq) / n;
    if (c > 0) {  // the offset must be <= 0: refit through the origin
      c = 0;
      a = sqx / sqq;
    }
    if (a <= 0) continue;
    double err = 0;
    for (int i = 0; i < n; ++i) {
      const int q = round_clamp(float((x[i] - c) / a), 0, qmax);
      const double e = a * q + c - x[i];
      err += e * e;
    }
    if (err < best_err) {
      best_err = err;
      best = {float(a), float(-c)};
    }
  }
  return best;
}

float fit_symmetric_scale(const float* x, int n, int qneg) {
  float extreme = 0.0f;  // the element of largest magnitude, with its sign
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > std::fabs(extreme)) extreme = x[i];
  if (extreme == 0.0f) return 0.0f;
  float best = 0.0f;
  double best_err = 0.0;
  for (int i = 0; i < n; ++i) best_err += double(x[i]) * x[i];  // error of scale 0
  // Map the extreme onto -qneg (negative scale for a positive extreme) or onto +(qneg - 1).
  for (const float levels : {-float(qneg), float(qneg - 1)}) {
    for (int k = -kSteps; k <= kSteps; ++k) {
      const float iscale = (levels + (levels < 0 ? -kStep : kStep) * float(k)) / extreme;
      double sqq = 0, sqx = 0;
      for (int i = 0; i < n; ++i) {
        const int q = round_clamp(x[i] * iscale, -qneg, qneg - 1);
        sqq += double(q) * q;
        sqx += double(q) * x[i];
      }
      if (sqq == 0) continue;
      const double s = sqx / sqq;
      if (s == 0) continue;
      double err = 0;
      for (int i = 0; i < n; ++i) {
        const int q = round_clamp(float(x[i] / s), -qneg, qneg - 1);
        const double e = s * q - x[i];
        err += e * e;
      }
      if (err < best_err) {
        best_err = err;
        best = float(s);
      }
    }
  }
  return best;
}

}  // namespace tandem
