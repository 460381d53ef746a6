#include "runtime/cpu/quant_matmul.h"

#include <algorithm>

#include "experts/activation_blocks.h"
#include "experts/kernels/row_dot.h"
#include "runtime/core/error.h"

namespace tandem::cpu {
namespace {

// Tokens per call of the many-activation kernel: 32 rows of Q8K activations of a 2048-wide
// input are 80 KB, which stays in L2 next to the weight tile.
constexpr int64_t kTokenBlock = 32;
constexpr int64_t kMaxRowTile = 64;

}  // namespace

void QuantMatmul::matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y) {
  grouped(w, RowGroups{1, w.rows, 0, 0}, GroupedIo{x, w.cols, 0, y, w.rows, 0}, n_tokens);
}

void QuantMatmul::grouped(const WeightMatrix& w, const RowGroups& g, const GroupedIo& io, int64_t n_tokens) {
  if (n_tokens <= 0 || g.n_groups <= 0 || g.rows <= 0) return;
  if (w.empty()) fail("matmul: weight matrix '", w.name, "' is absent");
  const int64_t last_row = g.first_row + (g.n_groups - 1) * g.group_row_stride + g.rows;
  if (g.first_row < 0 || g.group_row_stride < 0 || last_row > w.rows)
    fail("matmul: row groups reach row ", last_row, " of '", w.name, "', which has ", w.rows);
  const experts::RowKernels k = experts::row_kernels(w.type, isa_);
  const experts::ActFormat fmt = experts::activation_format(w.type);
  const int64_t cols = w.cols;
  const int64_t n_rows_in = g.n_groups * n_tokens;

  // Quantize every input row once (fp32 formats read the input in place).
  act_rows_.resize(size_t(n_rows_in));
  auto input = [&](int64_t i) { return io.x + (i % n_tokens) * io.x_token_stride + (i / n_tokens) * io.x_group_stride; };
  if (fmt == experts::ActFormat::F32) {
    for (int64_t i = 0; i < n_rows_in; ++i) act_rows_[size_t(i)] = input(i);
  } else {
    const int64_t row_bytes = (experts::activation_row_bytes(fmt, cols) + 63) / 64 * 64;
    acts_.reserve(size_t(row_bytes * n_rows_in));
    unsigned char* base = acts_.as();
    for (int64_t i = 0; i < n_rows_in; ++i) act_rows_[size_t(i)] = base + i * row_bytes;
    pool_.parallel_for(n_rows_in, std::max<int64_t>(1, 64 / std::max<int64_t>(1, cols / 1024)),
                       [&](int64_t b, int64_t e) {
                         for (int64_t i = b; i < e; ++i)
                           experts::quantize_activation_row(fmt, input(i), base + i * row_bytes, cols);
                       });
  }

  // Work items: (group, tile of rows); enough of them that the threads balance.
  const int64_t want_items = int64_t(pool_.size()) * 8;
  const int64_t tile = std::clamp<int64_t>((g.rows * g.n_groups + want_items - 1) / want_items, 1, kMaxRowTile);
  const int64_t tiles_per_group = (g.rows + tile - 1) / tile;
  const void* const* acts = act_rows_.data();
  pool_.parallel_for(g.n_groups * tiles_per_group, 1, [&](int64_t b, int64_t e) {
    float out[kTokenBlock];
    for (int64_t item = b; item < e; ++item) {
      const int64_t grp = item / tiles_per_group;
      const int64_t r0 = (item % tiles_per_group) * tile, r1 = std::min(g.rows, r0 + tile);
      const uint8_t* rows = w.row(g.first_row + grp * g.group_row_stride);
      float* y = io.y + grp * io.y_group_stride;
      const void* const* grp_acts = acts + grp * n_tokens;
      for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokenBlock) {
        const int nb = int(std::min(kTokenBlock, n_tokens - t0));
        for (int64_t r = r0; r < r1; ++r) {
          const uint8_t* wr = rows + uint64_t(r) * w.row_bytes;
          if (nb == 1) {
            y[t0 * io.y_token_stride + r] = k.one(cols, wr, grp_acts[t0]);
            continue;
          }
          k.many(cols, wr, grp_acts + t0, nb, out);
          for (int j = 0; j < nb; ++j) y[(t0 + j) * io.y_token_stride + r] = out[j];
        }
      }
    }
  });
}

}  // namespace tandem::cpu
