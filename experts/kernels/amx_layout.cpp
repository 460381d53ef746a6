// Repacking into the AMX layout (load time, plain x86-64) and the scalar definition of a tile.
#include "experts/kernels/amx_layout.h"

#include <cstring>
#include <vector>

#include "experts/kernels/block_fields.h"
#include "runtime/core/error.h"
#include "runtime/quant/block_formats.h"

namespace tandem::experts {
namespace {

// One row decoded to integer quants with one scale (and min) per step.
struct DecodedRow {
  std::vector<int8_t> q;
  std::vector<float> scale, min;
};

void decode_row(const AmxFormat& f, const uint8_t* row, int64_t cols, DecodedRow& out) {
  out.q.resize(size_t(cols));
  out.scale.resize(size_t(cols / f.step_cols));
  out.min.assign(size_t(cols / f.step_cols), 0.0f);
  switch (f.type) {
    case GgmlType::Q4_K:
      for (int64_t b = 0; b < cols / 256; ++b) {
        const auto& blk = reinterpret_cast<const BlockQ4_K*>(row)[b];
        const float d = half_to_float(blk.d), dmin = half_to_float(blk.dmin);
        for (int s = 0; s < 8; ++s) {
          int sc, m;
          k4_scale_min(blk.scales, s, &sc, &m);
          out.scale[size_t(b * 8 + s)] = d * float(sc);
          out.min[size_t(b * 8 + s)] = dmin * float(m);
        }
        for (int i = 0; i < 256; ++i) {
          const int byte = blk.qs[32 * (i / 64) + i % 32];
          out.q[size_t(b * 256 + i)] = int8_t((i % 64) < 32 ? (byte & 0xF) : (byte >> 4));
        }
      }
      return;
    case GgmlType::Q6_K:
      for (int64_t b = 0; b < cols / 256; ++b) {
        const auto& blk = reinterpret_cast<const BlockQ6_K*>(row)[b];
        const float d = half_to_float(blk.d);
        for (int g = 0; g < 16; ++g) out.scale[size_t(b * 16 + g)] = d * float(blk.scales[g]);
        for (int i = 0; i < 256; ++i) {
          const int half = i / 128, quarter = (i % 128) / 32, l = i % 32;
          const uint8_t* ql = blk.ql + 64 * half;
          const uint8_t* qh = blk.qh + 32 * half;
          const int low = quarter & 1 ? ql[l + 32] : ql[l];
          const int nibble = quarter < 2 ? (low & 0xF) : (low >> 4);
          out.q[size_t(b * 256 + i)] = int8_t((nibble | (((qh[l] >> (2 * quarter)) & 3) << 4)) - 32);
        }
      }
      return;
    case GgmlType::Q8_0:
      for (int64_t b = 0; b < cols / 32; ++b) {
        const auto& blk = reinterpret_cast<const BlockQ8_0*>(row)[b];
        out.scale[size_t(b)] = half_to_float(blk.d);
        std::memcpy(out.q.data() + b * 32, blk.qs, 32);
      }
      return;
    default: fail("AMX layout: no int8 decoding for ", ggml_type_name(f.type));
  }
}

uint16_t float_to_bf16(float v) {  // round to nearest even (weights are finite)
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  return uint16_t((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
}

}  // namespace

std::optional<AmxFormat> amx_format(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_K: return AmxFormat{type, false, 32, true, ActFormat::Q8K};
    case GgmlType::Q6_K: return AmxFormat{type, false, 16, false, ActFormat::Q8K};
    case GgmlType::Q8_0: return AmxFormat{type, false, 32, false, ActFormat::Q8};
    case GgmlType::BF16:
    case GgmlType::F16: return AmxFormat{type, true, 32, false, ActFormat::F32};
    default: return std::nullopt;
  }
}

void AmxTokenBlock::reserve(const AmxFormat& f, int64_t n_cols) {
  cols = n_cols;
  values.reserve(size_t(kAmxTokens * n_cols * (f.bf16 ? 2 : 1)));
  const size_t steps = size_t(n_cols / f.step_cols);
  scale.reserve(steps * kAmxTokens * sizeof(float));
  sum.reserve(steps * kAmxTokens * sizeof(float));
}

void amx_repack(const AmxFormat& f, const uint8_t* rows, int64_t row_bytes, int64_t n_rows, int64_t cols, uint8_t* dst) {
  if (cols % f.step_cols != 0) fail("AMX layout: ", cols, " columns is not a multiple of ", f.step_cols);
  const int64_t n_groups = (n_rows + kAmxRows - 1) / kAmxRows, steps = cols / f.step_cols;
  const int64_t group_bytes = amx_group_bytes(f, cols), step_bytes = f.step_bytes();
  std::memset(dst, 0, size_t(n_groups * group_bytes));
  DecodedRow dec;
  std::vector<uint16_t> bf(static_cast<size_t>(cols));
  for (int64_t row = 0; row < n_rows; ++row) {
    const int64_t r = row % kAmxRows;
    uint8_t* group = dst + row / kAmxRows * group_bytes;
    const uint8_t* src = rows + row * row_bytes;
    if (f.bf16) {
      for (int64_t c = 0; c < cols; ++c) {
        uint16_t h;
        std::memcpy(&h, src + 2 * c, 2);
        bf[size_t(c)] = f.type == GgmlType::BF16 ? h : float_to_bf16(half_to_float(h));
      }
      for (int64_t s = 0; s < steps; ++s) {
        auto* w = reinterpret_cast<uint16_t*>(group + s * step_bytes);
        for (int c = 0; c < 32; ++c) w[(c / 2) * 32 + r * 2 + c % 2] = bf[size_t(s * 32 + c)];
      }
      continue;
    }
    decode_row(f, src, cols, dec);
    for (int64_t s = 0; s < steps; ++s) {
      uint8_t* step = group + s * step_bytes;
      for (int c = 0; c < f.step_cols; c += 4)  // 4 consecutive columns are one word of row r
        std::memcpy(step + (c / 4) * 64 + r * 4, dec.q.data() + s * f.step_cols + c, 4);
      float* scale = reinterpret_cast<float*>(step + f.step_cols * 16);
      scale[r] = dec.scale[size_t(s)];
      if (f.has_min) scale[16 + r] = dec.min[size_t(s)];
    }
  }
}

void amx_tile_scalar(const AmxFormat& f, const uint8_t* group, int64_t cols, const AmxTokenBlock& acts, float* out) {
  const int64_t steps = cols / f.step_cols, step_bytes = f.step_bytes();
  for (int t = 0; t < kAmxTokens; ++t)
    for (int r = 0; r < kAmxRows; ++r) {
      double acc = 0;
      for (int64_t s = 0; s < steps; ++s) {
        const uint8_t* step = group + s * step_bytes;
        if (f.bf16) {
          const auto* w = reinterpret_cast<const uint16_t*>(step);
          const uint16_t* a = acts.values.as<uint16_t>() + t * cols + s * 32;
          for (int c = 0; c < 32; ++c)
            acc += double(bfloat_to_float(w[(c / 2) * 32 + r * 2 + c % 2])) * bfloat_to_float(a[c]);
          continue;
        }
        const int8_t* a = acts.values.as<int8_t>() + t * cols + s * f.step_cols;
        int32_t dot = 0;
        for (int c = 0; c < f.step_cols; ++c) dot += int32_t(int8_t(step[(c / 4) * 64 + r * 4 + c % 4])) * a[c];
        const float* scale = reinterpret_cast<const float*>(step + f.step_cols * 16);
        acc += double(scale[r]) * acts.scale.as<float>()[s * 16 + t] * dot;
        if (f.has_min) acc -= double(scale[16 + r]) * acts.sum.as<float>()[s * 16 + t];
      }
      out[t * kAmxRows + r] = float(acc);
    }
}

}  // namespace tandem::experts
