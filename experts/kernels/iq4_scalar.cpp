// Scalar kernels for the non-linear 4-bit types: each nibble indexes the codebook kIq4nlValues,
// so a 32-element run decodes to integer levels v[32] with w = scale * v, and its dot with
// int8 activations a = da * qa is da * scale * sum v qa. IQ4_NL runs are whole blocks against
// Q8 activation blocks; IQ4_XS has 8 runs with 6-bit scales per super-block against Q8K.
#include "experts/activation_blocks.h"
#include "experts/kernels/block_fields.h"
#include "experts/kernels/row_dot.h"
#include "runtime/quant/block_formats.h"

namespace tandem::experts::scalar {
namespace {

// sum over a run of 32 of level(nibble) * qa, nibble order as stored (byte j: j low, j+16 high).
int run_dot(const uint8_t* qs, const int8_t* qa) {
  int sum = 0;
  for (int j = 0; j < 16; ++j)
    sum += kIq4nlValues[qs[j] & 0xF] * qa[j] + kIq4nlValues[qs[j] >> 4] * qa[j + 16];
  return sum;
}

float dot_iq4_nl(int64_t n, const void* w, const void* act) {
  const auto* blocks = static_cast<const BlockIQ4_NL*>(w);
  const auto* a = static_cast<const ActBlockQ8*>(act);
  double total = 0;
  for (int64_t i = 0; i < n / 32; ++i)
    total += double(a[i].d) * double(half_to_float(blocks[i].d)) * run_dot(blocks[i].qs, a[i].qs);
  return float(total);
}

float dot_iq4_xs(int64_t n, const void* w, const void* act) {
  const auto* blocks = static_cast<const BlockIQ4_XS*>(w);
  const auto* a = static_cast<const ActBlockQ8K*>(act);
  double total = 0;
  for (int64_t i = 0; i < n / 256; ++i) {
    const BlockIQ4_XS& b = blocks[i];
    int64_t isum = 0;
    for (int r = 0; r < 8; ++r) {
      const int ls = (((b.scales_l[r / 2] >> (4 * (r % 2))) & 0xF) | (((b.scales_h >> (2 * r)) & 3) << 4)) - 32;
      isum += int64_t(ls) * run_dot(b.qs + 16 * r, a[i].qs + 32 * r);
    }
    total += double(a[i].d) * double(half_to_float(b.d)) * double(isum);
  }
  return float(total);
}

template <RowDotFn kOne>
void loop_many(int64_t n, const void* w, const void* const* acts, int n_acts, float* out) {
  for (int j = 0; j < n_acts; ++j) out[j] = kOne(n, w, acts[j]);
}

}  // namespace

RowKernels iq4_kernels(GgmlType t) {
  switch (t) {
    case GgmlType::IQ4_NL: return {dot_iq4_nl, loop_many<dot_iq4_nl>};
    case GgmlType::IQ4_XS: return {dot_iq4_xs, loop_many<dot_iq4_xs>};
    default: return {};
  }
}

}  // namespace tandem::experts::scalar
