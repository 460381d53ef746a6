#include "runtime/quant/iq_grid_search.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "runtime/quant/iq_grids.h"

namespace tandem::iq_search {
namespace {

constexpr size_t kMaxNear = 48;  // candidates kept per off-codebook lattice point

int pow_int(int base, int exp) {
  int r = 1;
  while (exp--) r *= base;
  return r;
}

// Lattice code of level-index digits (element 0 least significant).
int code_of(const uint8_t* d, int group, int radix) {
  int c = 0;
  for (int j = group - 1; j >= 0; --j) c = c * radix + d[j];
  return c;
}

template <typename Word, size_t N>
Codebook build(const Word (&grid)[N], int group, std::vector<float> levels, std::vector<uint8_t> level_bytes) {
  Codebook cb;
  cb.group = group;
  cb.levels = std::move(levels);
  const int radix = int(cb.levels.size());
  const int codes = pow_int(radix, group);
  cb.digits.resize(N * size_t(group));
  cb.on_grid.assign(size_t(codes), -1);
  for (size_t i = 0; i < N; ++i) {
    for (int j = 0; j < group; ++j) {
      const uint8_t byte = uint8_t(uint64_t(grid[i]) >> (8 * j));
      cb.digits[i * size_t(group) + size_t(j)] =
          uint8_t(std::find(level_bytes.begin(), level_bytes.end(), byte) - level_bytes.begin());
    }
    cb.on_grid[size_t(code_of(&cb.digits[i * size_t(group)], group, radix))] = int32_t(i);
  }
  cb.near_begin.assign(size_t(codes) + 1, 0);
  std::vector<std::pair<float, uint16_t>> dist(N);
  uint8_t d[8] = {};
  for (int c = 0; c < codes; ++c) {
    cb.near_begin[size_t(c)] = uint32_t(cb.near.size());
    if (cb.on_grid[size_t(c)] >= 0) continue;
    for (int j = 0, r = c; j < group; ++j, r /= radix) d[j] = uint8_t(r % radix);
    for (size_t i = 0; i < N; ++i) {
      float s = 0;
      for (int j = 0; j < group; ++j) {
        const float e = cb.levels[d[j]] - cb.value(int(i), j);
        s += e * e;
      }
      dist[i] = {s, uint16_t(i)};
    }
    std::sort(dist.begin(), dist.end());
    // The nearest two distance shells, at most kMaxNear points.
    float shell = dist[0].first;
    int shells = 1;
    for (size_t i = 0; i < N && i < kMaxNear; ++i) {
      if (dist[i].first > shell) {
        if (++shells > 2) break;
        shell = dist[i].first;
      }
      cb.near.push_back(dist[i].second);
    }
  }
  cb.near_begin[size_t(codes)] = uint32_t(cb.near.size());
  return cb;
}

}  // namespace

const Codebook& iq2xxs_codebook() {
  static const Codebook cb = build(iq::kIq2xxsGrid, 8, {8, 25, 43}, {8, 25, 43});
  return cb;
}
const Codebook& iq2xs_codebook() {
  static const Codebook cb = build(iq::kIq2xsGrid, 8, {8, 25, 43}, {8, 25, 43});
  return cb;
}
const Codebook& iq2s_codebook() {
  static const Codebook cb = build(iq::kIq2sGrid, 8, {8, 25, 43}, {8, 25, 43});
  return cb;
}
const Codebook& iq3xxs_codebook() {
  static const Codebook cb =
      build(iq::kIq3xxsGrid, 4, {4, 12, 20, 28, 36, 44, 52, 62}, {4, 12, 20, 28, 36, 44, 52, 62});
  return cb;
}
const Codebook& iq3s_codebook() {
  static const Codebook cb = build(iq::kIq3sGrid, 4, {1, 3, 5, 7, 9, 11, 13, 15}, {1, 3, 5, 7, 9, 11, 13, 15});
  return cb;
}
const Codebook& iq1s_codebook() {
  static const Codebook cb = build(iq::kIq1sGrid, 8, {-1, 0, 1}, {0xff, 0x00, 0x01});
  return cb;
}

int best_point(const Codebook& cb, const float* y, const float* w) {
  const int radix = int(cb.levels.size());
  uint8_t d[8];
  for (int j = 0; j < cb.group; ++j) {
    int best = 0;
    for (int l = 1; l < radix; ++l)
      if (std::fabs(y[j] - cb.levels[size_t(l)]) < std::fabs(y[j] - cb.levels[size_t(best)])) best = l;
    d[j] = uint8_t(best);
  }
  const int code = code_of(d, cb.group, radix);
  if (cb.on_grid[size_t(code)] >= 0) return cb.on_grid[size_t(code)];
  int best = cb.near[cb.near_begin[size_t(code)]];
  float best_err = std::numeric_limits<float>::max();
  for (uint32_t k = cb.near_begin[size_t(code)]; k < cb.near_begin[size_t(code) + 1]; ++k) {
    const int p = cb.near[k];
    float err = 0;
    for (int j = 0; j < cb.group; ++j) {
      const float e = y[j] - cb.value(p, j);
      err += w[j] * e * e;
    }
    if (err < best_err) best_err = err, best = p;
  }
  return best;
}

}  // namespace tandem::iq_search
