// Scalar kernels for the 32-element block types. Each block decodes to integer weights q[32]
// with w[i] = d * q[i] + m, so the dot with a Q8 activation block (a = da * qa) is
//   da * (d * sum_i q[i] qa[i] + m * sum_i qa[i]).
#include "experts/activation_blocks.h"
#include "experts/kernels/block_fields.h"
#include "experts/kernels/row_dot.h"
#include "runtime/quant/block_formats.h"

namespace tandem::experts::scalar {
namespace {

struct DecodedBlock {
  int q[32];
  float d, m;
};

uint32_t high_bits(const uint8_t qh[4]) {
  return uint32_t(qh[0]) | uint32_t(qh[1]) << 8 | uint32_t(qh[2]) << 16 | uint32_t(qh[3]) << 24;
}

void nibbles(const uint8_t* qs, int* q) {
  for (int i = 0; i < 16; ++i) q[i] = qs[i] & 0xF, q[i + 16] = qs[i] >> 4;
}

void decode(const BlockQ4_0& b, DecodedBlock& o) {
  nibbles(b.qs, o.q);
  for (int& v : o.q) v -= 8;
  o.d = half_to_float(b.d), o.m = 0;
}
void decode(const BlockQ4_1& b, DecodedBlock& o) {
  nibbles(b.qs, o.q);
  o.d = half_to_float(b.d), o.m = half_to_float(b.m);
}
void decode(const BlockQ5_0& b, DecodedBlock& o) {
  nibbles(b.qs, o.q);
  const uint32_t h = high_bits(b.qh);
  for (int i = 0; i < 32; ++i) o.q[i] = (o.q[i] | int((h >> i) & 1) << 4) - 16;
  o.d = half_to_float(b.d), o.m = 0;
}
void decode(const BlockQ5_1& b, DecodedBlock& o) {
  nibbles(b.qs, o.q);
  const uint32_t h = high_bits(b.qh);
  for (int i = 0; i < 32; ++i) o.q[i] |= int((h >> i) & 1) << 4;
  o.d = half_to_float(b.d), o.m = half_to_float(b.m);
}
void decode(const BlockQ8_0& b, DecodedBlock& o) {
  for (int i = 0; i < 32; ++i) o.q[i] = b.qs[i];
  o.d = half_to_float(b.d), o.m = 0;
}

template <typename Block>
float dot_legacy(int64_t n, const void* w, const void* act) {
  const auto* blocks = static_cast<const Block*>(w);
  const auto* a = static_cast<const ActBlockQ8*>(act);
  DecodedBlock dec;
  double total = 0;
  for (int64_t i = 0; i < n / 32; ++i) {
    decode(blocks[i], dec);
    int isum = 0;
    for (int k = 0; k < 32; ++k) isum += dec.q[k] * a[i].qs[k];
    total += double(a[i].d) * (double(dec.d) * isum + double(dec.m) * a[i].sum);
  }
  return float(total);
}


// Several activations, one at a time (this family decodes cheaply enough per activation).
template <RowDotFn kOne>
void loop_many(int64_t n, const void* w, const void* const* acts, int n_acts, float* out) {
  for (int j = 0; j < n_acts; ++j) out[j] = kOne(n, w, acts[j]);
}

}  // namespace

RowKernels legacy_kernels(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_0: return {dot_legacy<BlockQ4_0>, loop_many<dot_legacy<BlockQ4_0>>};
    case GgmlType::Q4_1: return {dot_legacy<BlockQ4_1>, loop_many<dot_legacy<BlockQ4_1>>};
    case GgmlType::Q5_0: return {dot_legacy<BlockQ5_0>, loop_many<dot_legacy<BlockQ5_0>>};
    case GgmlType::Q5_1: return {dot_legacy<BlockQ5_1>, loop_many<dot_legacy<BlockQ5_1>>};
    case GgmlType::Q8_0: return {dot_legacy<BlockQ8_0>, loop_many<dot_legacy<BlockQ8_0>>};
    default: return {};
  }
}

}  // namespace tandem::experts::scalar
