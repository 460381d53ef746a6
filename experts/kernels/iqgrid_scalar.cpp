// Scalar kernels for the lattice i-quants (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S)
// and the ternary types (TQ1_0, TQ2_0), against Q8K activations. Each group of 4 or 8 weights is
// a codebook point (runtime/quant/iq_grids.h) of small integers, so a group's dot with int8
// activations is an integer sum; the sub-block scale multiplies it in float. IQ1 points carry a
// shared +-1/8 shift: its part is delta times the sum of the group's activations. These are the
// oracle of the SIMD versions and run where those are missing (dispatch.cpp).
#include <cstring>

#include "experts/activation_blocks.h"
#include "experts/kernels/block_fields.h"
#include "experts/kernels/row_dot.h"
#include "runtime/quant/block_formats.h"
#include "runtime/quant/iq_grids.h"

namespace tandem::experts::scalar {
namespace {

// sum_j grid_j * sign_j * qa_j over 8 unsigned grid bytes, minus signs from `signs` (bit j).
int dot8_signed(uint64_t point, unsigned signs, const int8_t* qa) {
  int s = 0;
  for (int j = 0; j < 8; ++j) {
    const int v = int(uint8_t(point >> (8 * j))) * int(qa[j]);
    s += (signs >> j) & 1 ? -v : v;
  }
  return s;
}

int dot4_signed(uint32_t point, unsigned signs, const int8_t* qa) {
  int s = 0;
  for (int j = 0; j < 4; ++j) {
    const int v = int(uint8_t(point >> (8 * j))) * int(qa[j]);
    s += (signs >> j) & 1 ? -v : v;
  }
  return s;
}

// IQ1 group: sum grid_j * qa_j (grid bytes signed) and sum qa_j, for the delta term.
void dot8_iq1(uint64_t point, const int8_t* qa, int& grid_sum, int& act_sum) {
  grid_sum = act_sum = 0;
  for (int j = 0; j < 8; ++j) {
    grid_sum += int(int8_t(uint8_t(point >> (8 * j)))) * int(qa[j]);
    act_sum += qa[j];
  }
}

uint32_t load_u32(const void* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

float dot_iq2_xxs(int64_t n, const void* w, const void* act) {
  const auto* blocks = static_cast<const BlockIQ2_XXS*>(w);
  const auto* a = static_cast<const ActBlockQ8K*>(act);
  double total = 0;
  for (int64_t i = 0; i < n / 256; ++i) {
    const BlockIQ2_XXS& b = blocks[i];
    int64_t isum = 0;  // in units of 1/8 of d: scale (0.5 + s) / 4 = (2 s + 1) / 8
    for (int run = 0; run < 8; ++run) {
      const auto* idx = reinterpret_cast<const uint8_t*>(b.qs + 4 * run);
      const uint32_t aux = load_u32(b.qs + 4 * run + 2);
      int rs = 0;
      for (int g = 0; g < 4; ++g)
        rs += dot8_signed(iq::kIq2xxsGrid[idx[g]], iq::kSignsEven[(aux >> (7 * g)) & 127], a[i].qs + 32 * run + 8 * g);
      isum += int64_t(2 * (aux >> 28) + 1) * rs;
    }
    total += double(a[i].d) * double(half_to_float(b.d)) * double(isum) * 0.125;
  }
  return float(total);
}

float dot_iq2_xs(int64_t n, const void* w, const void* act) {
  const auto* blocks = static_cast<const BlockIQ2_XS*>(w);
  const auto* a = static_cast<const ActBlockQ8K*>(act);
  double total = 0;
  for (int64_t i = 0; i < n / 256; ++i) {
    const BlockIQ2_XS& b = blocks[i];
    int64_t isum = 0;
    for (int g = 0; g < 32; ++g) {
      const int s = (b.scales[g / 4] >> (4 * ((g / 2) % 2))) & 0xF;
      const uint16_t q = b.qs[g];
      isum += int64_t(2 * s + 1) * dot8_signed(iq::kIq2xsGrid[q & 511], iq::kSignsEven[q >> 9], a[i].qs + 8 * g);
    }
    total += double(a[i].d) * double(half_to_float(b.d)) * double(isum) * 0.125;
  }
  return float(total);
}

float dot_iq2_s(int64_t n, const void* w, const void* act) {
  const auto* blocks = static_cast<const BlockIQ2_S*>(w);
  const auto* a = static_cast<const ActBlockQ8K*>(act);
  double total = 0;
  for (int64_t i = 0; i < n / 256; ++i) {
    const BlockIQ2_S& b = blocks[i];
    const uint8_t* signs = b.qs + 32;
    int64_t isum = 0;
    for (int g = 0; g < 32; ++g) {
      const int s = (b.scales[g / 4] >> (4 * ((g / 2) % 2))) & 0xF;
      const int index = b.qs[g] | (((b.qh[g / 4] >> (2 * (g % 4))) & 3) << 8);
      isum += int64_t(2 * s + 1) * dot8_signed(iq::kIq2sGrid[index], signs[g], a[i].qs + 8 * g);
    }
    total += double(a[i].d) * double(half_to_float(b.d)) * double(isum) * 0.125;
  }
  return float(total);
}

float dot_iq3_xxs(int64_t n, const void* w, const void* act) {
  const auto* blocks = static_cast<const BlockIQ3_XXS*>(w);
  const auto* a = static_cast<const ActBlockQ8K*>(act);
  double total = 0;
  for (int64_t i = 0; i < n / 256; ++i) {
    const BlockIQ3_XXS& b = blocks[i];
    int64_t isum = 0;  // in units of d / 4: scale (0.5 + s) / 2 = (2 s + 1) / 4
    for (int run = 0; run < 8; ++run) {
      const uint8_t* idx = b.qs + 8 * run;
      const uint32_t aux = load_u32(b.qs + 64 + 4 * run);
      const int8_t* qa = a[i].qs + 32 * run;
      int rs = 0;
      for (int g = 0; g < 4; ++g) {
        const unsigned signs = iq::kSignsEven[(aux >> (7 * g)) & 127];
        rs += dot4_signed(iq::kIq3xxsGrid[idx[2 * g]], signs, qa + 8 * g) +
              dot4_signed(iq::kIq3xxsGrid[idx[2 * g + 1]], signs >> 4, qa + 8 * g + 4);
      }
      isum += int64_t(2 * (aux >> 28) + 1) * rs;
    }
    total += double(a[i].d) * double(half_to_float(b.d)) * double(isum) * 0.25;
  }
  return float(total);
}

float dot_iq3_s(int64_t n, const void* w, const void* act) {
  const auto* blocks = static_cast<const BlockIQ3_S*>(w);
  const auto* a = static_cast<const ActBlockQ8K*>(act);
  double total = 0;
  for (int64_t i = 0; i < n / 256; ++i) {
    const BlockIQ3_S& b = blocks[i];
    int64_t isum = 0;
    for (int run = 0; run < 8; ++run) {
      const int s = (b.scales[run / 2] >> (4 * (run % 2))) & 0xF;
      int rs = 0;
      for (int q = 0; q < 8; ++q) {
        const int index = b.qs[8 * run + q] | (((b.qh[run] >> q) & 1) << 8);
        rs += dot4_signed(iq::kIq3sGrid[index], unsigned(b.signs[4 * run + q / 2]) >> (4 * (q % 2)),
                          a[i].qs + 32 * run + 4 * q);
      }
      isum += int64_t(2 * s + 1) * rs;
    }
    total += double(a[i].d) * double(half_to_float(b.d)) * double(isum);
  }
  return float(total);
}

float dot_iq1_s(int64_t n, const void* w, const void* act) {
  const auto* blocks = static_cast<const BlockIQ1_S*>(w);
  const auto* a = static_cast<const ActBlockQ8K*>(act);
  double total = 0;
  for (int64_t i = 0; i < n / 256; ++i) {
    const BlockIQ1_S& b = blocks[i];
    double bsum = 0;
    for (int run = 0; run < 8; ++run) {
      const unsigned h = b.qh[run];
      int gs = 0, as = 0;
      for (int g = 0; g < 4; ++g) {
        int gsum, asum;
        dot8_iq1(iq::kIq1sGrid[b.qs[4 * run + g] | (((h >> (3 * g)) & 7) << 8)], a[i].qs + 32 * run + 8 * g, gsum, asum);
        gs += gsum, as += asum;
      }
      const double delta = h & 0x8000 ? -iq::kIq1sDelta : iq::kIq1sDelta;
      bsum += double(2 * ((h >> 12) & 7) + 1) * (double(gs) + delta * double(as));
    }
    total += double(a[i].d) * double(half_to_float(b.d)) * bsum;
  }
  return float(total);
}

float dot_iq1_m(int64_t n, const void* w, const void* act) {
  const auto* blocks = static_cast<const BlockIQ1_M*>(w);
  const auto* a = static_cast<const ActBlockQ8K*>(act);
  double total = 0;
  for (int64_t i = 0; i < n / 256; ++i) {
    const BlockIQ1_M& b = blocks[i];
    uint16_t sc[4];
    std::memcpy(sc, b.scales, sizeof sc);
    const uint16_t dbits = uint16_t((sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) | ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000));
    double bsum = 0;
    for (int g = 0; g < 32; ++g) {
      const int half = g / 2;
      const int s = (sc[half / 4] >> (3 * (half % 4))) & 7;
      const unsigned nib = (b.qh[g / 2] >> (4 * (g % 2))) & 0xF;
      int gsum, asum;
      dot8_iq1(iq::kIq1sGrid[b.qs[g] | ((nib & 7) << 8)], a[i].qs + 8 * g, gsum, asum);
      const double delta = nib & 8 ? -iq::kIq1sDelta : iq::kIq1sDelta;
      bsum += double(2 * s + 1) * (double(gsum) + delta * double(asum));
    }
    total += double(a[i].d) * double(half_to_float(dbits)) * bsum;
  }
  return float(total);
}

// Digit k (0 = most significant) of a TQ1_0 byte read as a base-3 fraction.
int tq1_trit(uint8_t byte, int k) {
  static constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
  return (int(uint8_t(byte * kPow3[k])) * 3) >> 8;
}

float dot_tq1_0(int64_t n, const void* w, const void* act) {
  const auto* blocks = static_cast<const BlockTQ1_0*>(w);
  const auto* a = static_cast<const ActBlockQ8K*>(act);
  double total = 0;
  for (int64_t i = 0; i < n / 256; ++i) {
    const BlockTQ1_0& b = blocks[i];
    const int8_t* qa = a[i].qs;
    int64_t isum = 0;
    for (int k = 0; k < 5; ++k)
      for (int m = 0; m < 32; ++m) isum += (tq1_trit(b.qs[m], k) - 1) * qa[32 * k + m];
    for (int k = 0; k < 5; ++k)
      for (int m = 0; m < 16; ++m) isum += (tq1_trit(b.qs[32 + m], k) - 1) * qa[160 + 16 * k + m];
    for (int k = 0; k < 4; ++k)
      for (int m = 0; m < 4; ++m) isum += (tq1_trit(b.qh[m], k) - 1) * qa[240 + 4 * k + m];
    total += double(a[i].d) * double(half_to_float(b.d)) * double(isum);
  }
  return float(total);
}

float dot_tq2_0(int64_t n, const void* w, const void* act) {
  const auto* blocks = static_cast<const BlockTQ2_0*>(w);
  const auto* a = static_cast<const ActBlockQ8K*>(act);
  double total = 0;
  for (int64_t i = 0; i < n / 256; ++i) {
    const BlockTQ2_0& b = blocks[i];
    int64_t isum = 0;
    for (int half = 0; half < 2; ++half)
      for (int l = 0; l < 4; ++l)
        for (int m = 0; m < 32; ++m)
          isum += (((b.qs[32 * half + m] >> (2 * l)) & 3) - 1) * a[i].qs[128 * half + 32 * l + m];
    total += double(a[i].d) * double(half_to_float(b.d)) * double(isum);
  }
  return float(total);
}

template <RowDotFn kOne>
void loop_many(int64_t n, const void* w, const void* const* acts, int n_acts, float* out) {
  for (int j = 0; j < n_acts; ++j) out[j] = kOne(n, w, acts[j]);
}

}  // namespace

RowKernels iqgrid_kernels(GgmlType t) {
  switch (t) {
    case GgmlType::IQ2_XXS: return {dot_iq2_xxs, loop_many<dot_iq2_xxs>};
    case GgmlType::IQ2_XS: return {dot_iq2_xs, loop_many<dot_iq2_xs>};
    case GgmlType::IQ2_S: return {dot_iq2_s, loop_many<dot_iq2_s>};
    case GgmlType::IQ3_XXS: return {dot_iq3_xxs, loop_many<dot_iq3_xxs>};
    case GgmlType::IQ3_S: return {dot_iq3_s, loop_many<dot_iq3_s>};
    case GgmlType::IQ1_S: return {dot_iq1_s, loop_many<dot_iq1_s>};
    case GgmlType::IQ1_M: return {dot_iq1_m, loop_many<dot_iq1_m>};
    case GgmlType::TQ1_0: return {dot_tq1_0, loop_many<dot_tq1_0>};
    case GgmlType::TQ2_0: return {dot_tq2_0, loop_many<dot_tq2_0>};
    default: return {};
  }
}

}  // namespace tandem::experts::scalar
