// Lattice i-quant SIMD row dots (IQ1_S, IQ1_M, IQ2_XXS/XS/S, IQ3_XXS/S) on raw random blocks, per
// type: each avx2/avx512 kernel against the scalar one with 19 different activation rows, the
// many-activation kernels on partial passes, a full pass and more than one (1-19 rows), and the
// scalar one against the reference decoder (dequantize_row) times the quantized activations.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "experts/activation_blocks.h"
#include "experts/aligned_buffer.h"
#include "experts/kernels/row_dot.h"
#include "runtime/core/half.h"
#include "runtime/quant/dequantize.h"
#include "tests/unit/experts/random_weights.h"

namespace tandem::experts {
namespace {

// Random bytes with a finite, small super-block scale: at bytes 0-1 for every type but IQ1_M,
// whose f16 scale is spread over the top nibbles of its four scale words (bytes 48-55).
std::vector<uint8_t> random_lattice_blocks(GgmlType t, int64_t n, std::mt19937& rng) {
  const auto& info = ggml_type_info(t);
  std::vector<uint8_t> bytes(ggml_row_bytes(t, uint64_t(n)));
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> d(-0.02f, 0.02f);
  for (auto& b : bytes) b = uint8_t(byte(rng));
  for (size_t at = 0; at < bytes.size(); at += info.type_size) {
    const uint16_t h = f32_to_f16(d(rng));
    if (t == GgmlType::IQ1_M) {
      for (int k = 0; k < 4; ++k) {
        uint8_t& hi = bytes[at + 49 + 2 * k];
        hi = uint8_t((hi & 0x0F) | (((h >> (4 * k)) & 0xF) << 4));
      }
    } else {
      bytes[at] = uint8_t(h & 0xFF);
      bytes[at + 1] = uint8_t(h >> 8);
    }
  }
  return bytes;
}

double exact_dot(GgmlType t, const std::vector<uint8_t>& w, const ActBlockQ8K* act, int64_t n) {
  std::vector<float> deq(static_cast<size_t>(n));
  dequantize_row(t, w.data(), deq.data(), n);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(deq[size_t(i)]) * double(act[i / 256].d) * act[i / 256].qs[i % 256];
  return s;
}

class IqGridSimdKernels : public ::testing::TestWithParam<GgmlType> {};

TEST_P(IqGridSimdKernels, RandomBlocksOnEveryIsa) {
  const GgmlType t = GetParam();
  std::mt19937 rng(7 + unsigned(t));
  ASSERT_EQ(activation_format(t), ActFormat::Q8K);
  for (int64_t n : {256, 768, 2048}) {
    const auto w = random_lattice_blocks(t, n, rng);
    constexpr int kActs = 19;
    std::vector<AlignedBuffer> acts(kActs);
    const void* act_ptrs[kActs];
    for (int j = 0; j < kActs; ++j) {
      const auto x = test::random_floats(size_t(n), rng, 1.0f);
      acts[size_t(j)].reserve(size_t(activation_row_bytes(ActFormat::Q8K, n)));
      quantize_activation_row(ActFormat::Q8K, x.data(), acts[size_t(j)].as(), n);
      act_ptrs[j] = acts[size_t(j)].as();
    }
    float scalar[kActs];
    const RowKernels ref = row_kernels(t, CpuIsa::Scalar);
    for (int j = 0; j < kActs; ++j) {
      scalar[j] = ref.one(n, w.data(), act_ptrs[j]);
      const double exact = exact_dot(t, w, static_cast<const ActBlockQ8K*>(act_ptrs[j]), n);
      EXPECT_NEAR(scalar[j], exact, 1e-4 * std::max(1.0, std::fabs(exact))) << ggml_type_name(t) << " n=" << n;
    }
    // avx2, avx512 as dispatched, and both builds of avx512 (plain; VBMI + GFNI where the CPU has them).
    struct Variant {
      const char* name;
      bool runs;
      RowKernels k;
    };
    const bool avx512 = cpu_supports(CpuIsa::Avx512);
    const Variant variants[] = {
        {"avx2", cpu_supports(CpuIsa::Avx2), cpu_supports(CpuIsa::Avx2) ? row_kernels(t, CpuIsa::Avx2) : RowKernels{}},
        {"avx512", avx512, avx512 ? row_kernels(t, CpuIsa::Avx512) : RowKernels{}},
        {"avx512-plain", avx512, avx512::iqgrid_kernels_plain(t)},
        {"avx512-vbmi-gfni", avx512 && cpu_features().avx512_vbmi_gfni, avx512::iqgrid_kernels_vbmi(t)},
    };
    for (const Variant& v : variants) {
      if (!v.runs) continue;
      const RowKernels& k = v.k;
      ASSERT_TRUE(k.one && k.many) << ggml_type_name(t) << " " << v.name;
      for (int j = 0; j < kActs; ++j)
        EXPECT_NEAR(k.one(n, w.data(), act_ptrs[j]), scalar[j], 1e-4 * std::max(1.0f, std::fabs(scalar[j])))
            << ggml_type_name(t) << " " << v.name << " n=" << n;
      for (int count : {1, 2, 3, 6, 8, 9, 16, kActs}) {  // partial passes, a full one and more than one
        float out[kActs];
        k.many(n, w.data(), act_ptrs, count, out);
        for (int j = 0; j < count; ++j)
          EXPECT_NEAR(out[j], scalar[j], 1e-4 * std::max(1.0f, std::fabs(scalar[j])))
              << ggml_type_name(t) << " " << v.name << " many(" << count << ") n=" << n;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, IqGridSimdKernels,
                         ::testing::Values(GgmlType::IQ2_XXS, GgmlType::IQ1_S, GgmlType::IQ3_XXS, GgmlType::IQ1_M,
                                           GgmlType::IQ2_XS, GgmlType::IQ2_S, GgmlType::IQ3_S),
                         [](const auto& info) { return std::string(ggml_type_name(info.param)); });

}  // namespace
}  // namespace tandem::experts
