// Scalar K-quant kernels: the readable definition the SIMD files are tested against. Each block
// is decoded to integer weights q[256] with a scale (and min) per 16-element group, so that
//   w[i] = d * scale[g] * q[i] - dmin * min[g]   (g = i / 16)
// and the dot product with a Q8K activation block (a = da * qa) is
//   da * (d * sum_g scale[g] * sum_i q[i] qa[i]  -  dmin * sum_g min[g] * bsum[g]).
#include "experts/activation_blocks.h"
#include "experts/kernels/block_fields.h"
#include "experts/kernels/row_dot.h"
#include "runtime/quant/block_formats.h"

namespace tandem::experts::scalar {
namespace {

struct DecodedKBlock {
  int q[256];
  int scale[16];
  int min[16];
  float d, dmin;
};

void decode(const BlockQ2_K& b, DecodedKBlock& o) {
  o.d = half_to_float(b.d);
  o.dmin = half_to_float(b.dmin);
  for (int g = 0; g < 16; ++g) o.scale[g] = b.scales[g] & 0xF, o.min[g] = b.scales[g] >> 4;
  for (int i = 0; i < 256; ++i) {
    const int half = i / 128, shift = 2 * ((i % 128) / 32), l = i % 32;
    o.q[i] = (b.qs[32 * half + l] >> shift) & 3;
  }
}

void decode(const BlockQ3_K& b, DecodedKBlock& o) {
  o.d = half_to_float(b.d);
  o.dmin = 0;
  for (int g = 0; g < 16; ++g) o.scale[g] = q3k_scale(b.scales, g), o.min[g] = 0;
  for (int i = 0; i < 256; ++i) {
    const int half = i / 128, j = (i % 128) / 32, l = i % 32;
    const int low = (b.qs[32 * half + l] >> (2 * j)) & 3;
    const int high = (b.hmask[l] >> (4 * half + j)) & 1;
    o.q[i] = low - (high ? 0 : 4);
  }
}

void decode(const BlockQ4_K& b, DecodedKBlock& o) {
  o.d = half_to_float(b.d);
  o.dmin = half_to_float(b.dmin);
  for (int g = 0; g < 16; ++g) k4_scale_min(b.scales, g / 2, &o.scale[g], &o.min[g]);
  for (int i = 0; i < 256; ++i) {
    const int chunk = i / 64, l = i % 32;
    const int byte = b.qs[32 * chunk + l];
    o.q[i] = (i % 64) < 32 ? (byte & 0xF) : (byte >> 4);
  }
}

void decode(const BlockQ5_K& b, DecodedKBlock& o) {
  o.d = half_to_float(b.d);
  o.dmin = half_to_float(b.dmin);
  for (int g = 0; g < 16; ++g) k4_scale_min(b.scales, g / 2, &o.scale[g], &o.min[g]);
  for (int i = 0; i < 256; ++i) {
    const int chunk = i / 64, l = i % 32, sub = i / 32;
    const int byte = b.qs[32 * chunk + l];
    const int low = (i % 64) < 32 ? (byte & 0xF) : (byte >> 4);
    o.q[i] = low | (((b.qh[l] >> sub) & 1) << 4);
  }
}

void decode(const BlockQ6_K& b, DecodedKBlock& o) {
  o.d = half_to_float(b.d);
  o.dmin = 0;
  for (int g = 0; g < 16; ++g) o.scale[g] = b.scales[g], o.min[g] = 0;
  for (int i = 0; i < 256; ++i) {
    const int half = i / 128, quarter = (i % 128) / 32, l = i % 32;
    const uint8_t* ql = b.ql + 64 * half;
    const uint8_t* qh = b.qh + 32 * half;
    const int low = quarter & 1 ? ql[l + 32] : ql[l];
    const int nibble = quarter < 2 ? (low & 0xF) : (low >> 4);
    const int high = (qh[l] >> (2 * quarter)) & 3;
    o.q[i] = (nibble | (high << 4)) - 32;
  }
}

template <typename Block>
float dot_kquant(int64_t n, const void* w, const void* act) {
  const auto* blocks = static_cast<const Block*>(w);
  const auto* a = static_cast<const ActBlockQ8K*>(act);
  DecodedKBlock dec;
  double total = 0;
  for (int64_t i = 0; i < n / 256; ++i) {
    decode(blocks[i], dec);
    int64_t isum = 0, msum = 0;
    for (int g = 0; g < 16; ++g) {
      int gsum = 0;
      for (int k = 16 * g; k < 16 * g + 16; ++k) gsum += dec.q[k] * a[i].qs[k];
      isum += int64_t(dec.scale[g]) * gsum;
      msum += int64_t(dec.min[g]) * a[i].bsums[g];
    }
    total += double(a[i].d) * (double(dec.d) * double(isum) - double(dec.dmin) * double(msum));
  }
  return float(total);
}


// Several activations, one at a time (this family decodes cheaply enough per activation).
template <RowDotFn kOne>
void loop_many(int64_t n, const void* w, const void* const* acts, int n_acts, float* out) {
  for (int j = 0; j < n_acts; ++j) out[j] = kOne(n, w, acts[j]);
}

}  // namespace

RowKernels kquant_kernels(GgmlType t) {
  switch (t) {
    case GgmlType::Q2_K: return {dot_kquant<BlockQ2_K>, loop_many<dot_kquant<BlockQ2_K>>};
    case GgmlType::Q3_K: return {dot_kquant<BlockQ3_K>, loop_many<dot_kquant<BlockQ3_K>>};
    case GgmlType::Q4_K: return {dot_kquant<BlockQ4_K>, loop_many<dot_kquant<BlockQ4_K>>};
    case GgmlType::Q5_K: return {dot_kquant<BlockQ5_K>, loop_many<dot_kquant<BlockQ5_K>>};
    case GgmlType::Q6_K: return {dot_kquant<BlockQ6_K>, loop_many<dot_kquant<BlockQ6_K>>};
    default: return {};
  }
}

}  // namespace tandem::experts::scalar
