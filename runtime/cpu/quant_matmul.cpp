#include "runtime/cpu/quant_matmul.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

#include "experts/activation_blocks.h"
#include "experts/kernels/repacked.h"
#include "experts/kernels/row_dot.h"
#include "runtime/core/error.h"
#include "runtime/quant/ggml_type.h"

namespace tandem::cpu {
namespace {

// Tokens per call of the many-activation kernel: 32 rows of Q8K activations of a 2048-wide
// input are 80 KB, which stays in L2 next to the weight tile.
constexpr int64_t kTokenBlock = 32;
constexpr int64_t kMaxRowTile = 64;

}  // namespace

struct QuantMatmul::Packed {
  const experts::RepackedFormat* fmt = nullptr;
  experts::RepackedTileFn tile = nullptr;
  int64_t rows = 0, cols = 0, group_bytes = 0;
  experts::AlignedBuffer bytes;
};

QuantMatmul::QuantMatmul(ThreadPool& pool, experts::CpuIsa isa) : pool_(pool), isa_(isa) {}
QuantMatmul::~QuantMatmul() = default;

int64_t QuantMatmul::prepare(const WeightMatrix& w) {
  if (w.empty() || packed_.count(w.data)) return 0;
  const experts::RepackedFormat* fmt = experts::repacked_format(w.type);
  const experts::RepackedTileFn tile = experts::repacked_tile_kernel(w.type, isa_);
  if (!fmt || !tile || w.cols % 256 != 0 || w.row_bytes != ggml_row_bytes(w.type, uint64_t(w.cols))) return 0;
  auto p = std::make_unique<Packed>();
  p->fmt = fmt, p->tile = tile, p->rows = w.rows, p->cols = w.cols, p->group_bytes = fmt->group_bytes(w.cols);
  const int64_t groups = (w.rows + experts::kRepackRows - 1) / experts::kRepackRows;
  p->bytes.reserve(size_t(fmt->bytes(w.rows, w.cols)));
  uint8_t* dst = p->bytes.as<uint8_t>();
  // Groups are independent: repack them on the pool (the output head is large).
  pool_.parallel_for(groups, 16, [&](int64_t b, int64_t e) {
    const int64_t r0 = b * experts::kRepackRows, r1 = std::min(w.rows, e * experts::kRepackRows);
    fmt->repack(w.row(r0), int64_t(w.row_bytes), r1 - r0, w.cols, dst + b * p->group_bytes);
  });
  const int64_t bytes = fmt->bytes(w.rows, w.cols);
  packed_.emplace(w.data, std::move(p));
  if (release_mapped_) {  // whole pages inside the matrix only
    static const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
    const uintptr_t first = (uintptr_t(w.data) + page - 1) & ~(page - 1);
    const uintptr_t last = (uintptr_t(w.data) + uintptr_t(w.rows) * uintptr_t(w.row_bytes)) & ~(page - 1);
    if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
  }
  return bytes;
}

const QuantMatmul::Packed* QuantMatmul::packed_for(const WeightMatrix& w, const RowGroups& g) {
  if (!repack_) return nullptr;
  auto it = packed_.find(w.data);
  if (it == packed_.end()) {
    // First product on w: repack it now (a scheduler that runs only some layers here packs
    // only those). Matrices without a layout are remembered as such.
    prepare(w);
    it = packed_.find(w.data);
    if (it == packed_.end()) it = packed_.emplace(w.data, nullptr).first;
  }
  if (!it->second) return nullptr;
  const Packed& p = *it->second;
  if (p.rows != w.rows || p.cols != w.cols) return nullptr;
  // Groups must start on a 16-row boundary of the layout (heads of 128 rows do).
  constexpr int64_t R = experts::kRepackRows;
  if (g.first_row % R != 0 || (g.n_groups > 1 && g.group_row_stride % R != 0)) return nullptr;
  if (g.n_groups > 1 && g.rows % R != 0) return nullptr;
  return &p;
}

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

  const Packed* packed = packed_for(w, g);
  if (packed) {
    constexpr int64_t R = experts::kRepackRows, T = experts::kRepackMaxTokens;
    const float* sums = nullptr;
    const int64_t n_sums = cols / 32;
    if (packed->fmt->uses_act_sums) {
      act_sums_.reserve(size_t(n_rows_in * n_sums) * sizeof(float));
      float* s = act_sums_.as<float>();
      for (int64_t i = 0; i < n_rows_in; ++i) experts::q8k_sub_block_sums(act_rows_[size_t(i)], cols, s + i * n_sums);
      sums = s;
    }
    // Work items: (group, tile of 16-row groups); tokens stream past each weight tile.
    const int64_t row_groups = (g.rows + R - 1) / R;
    const int64_t want = int64_t(pool_.size()) * 8;
    const int64_t tile = std::clamp<int64_t>((row_groups * g.n_groups + want - 1) / want, 1, kMaxRowTile / R);
    const int64_t tiles_per_group = (row_groups + tile - 1) / tile;
    const void* const* acts = act_rows_.data();
    pool_.parallel_for(g.n_groups * tiles_per_group, 1, [&](int64_t b, int64_t e) {
      float out[T * R];
      const void* a[T];
      const float* as[T];
      for (int64_t item = b; item < e; ++item) {
        const int64_t grp = item / tiles_per_group;
        const int64_t q0 = (item % tiles_per_group) * tile, q1 = std::min(row_groups, q0 + tile);
        const uint8_t* base = packed->bytes.as<uint8_t>() + (g.first_row + grp * g.group_row_stride) / R * packed->group_bytes;
        float* y = io.y + grp * io.y_group_stride;
        const int64_t first_in = grp * n_tokens;
        for (int64_t t0 = 0; t0 < n_tokens; t0 += T) {
          const int nt = int(std::min(T, n_tokens - t0));
          for (int j = 0; j < nt; ++j) {
            a[j] = acts[first_in + t0 + j];
            as[j] = sums ? sums + (first_in + t0 + j) * n_sums : nullptr;
          }
          for (int64_t q = q0; q < q1; ++q) {
            packed->tile(base + q * packed->group_bytes, cols, a, as, nt, out);
            const int64_t r = q * R, nr = std::min(R, g.rows - r);
            for (int j = 0; j < nt; ++j) {
              float* yr = y + (t0 + j) * io.y_token_stride + r;
              for (int64_t i = 0; i < nr; ++i) yr[i] = out[j * R + i];
            }
          }
        }
      }
    });
    return;
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
