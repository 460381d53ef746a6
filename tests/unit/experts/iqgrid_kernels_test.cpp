// Row dots of the lattice i-quants and ternary types on raw random blocks (every grid index,
// sign byte, scale and delta bit), on every ISA this CPU runs: the scalar kernel against the
// reference decoder times the quantized activations, and each ISA's kernel (SIMD where written,
// the scalar fallback elsewhere) against the scalar one.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "experts/activation_blocks.h"
#include "experts/aligned_buffer.h"
#include "experts/kernels/row_dot.h"
#include "runtime/core/half.h"
#include "runtime/quant/block_formats.h"
#include "runtime/quant/dequantize.h"
#include "tests/unit/experts/random_weights.h"

namespace tandem::experts {
namespace {

const GgmlType kTypes[] = {GgmlType::IQ2_XXS, GgmlType::IQ2_XS, GgmlType::IQ2_S, GgmlType::IQ3_XXS, GgmlType::IQ3_S,
                           GgmlType::IQ1_S,   GgmlType::IQ1_M,  GgmlType::TQ1_0, GgmlType::TQ2_0};

// Random bytes with a finite fp16 scale where the type keeps it: first (IQ1_S .. IQ3_S), last
// (TQ*), or spread over the top nibbles of the four scale words (IQ1_M).
std::vector<uint8_t> random_blocks(GgmlType t, int64_t n, std::mt19937& rng) {
  const auto& info = ggml_type_info(t);
  std::vector<uint8_t> bytes(ggml_row_bytes(t, uint64_t(n)));
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> d(-0.02f, 0.02f);
  for (auto& b : bytes) b = uint8_t(byte(rng));
  for (size_t at = 0; at < bytes.size(); at += info.type_size) {
    const uint16_t h = f32_to_f16(d(rng));
    if (t == GgmlType::IQ1_M) {
      uint8_t* sc = &bytes[at + offsetof(BlockIQ1_M, scales)];
      for (int k = 0; k < 4; ++k) sc[2 * k + 1] = uint8_t((sc[2 * k + 1] & 0x0F) | (((h >> (4 * k)) & 0xF) << 4));
    } else {
      const size_t off = (t == GgmlType::TQ1_0 || t == GgmlType::TQ2_0) ? info.type_size - 2 : 0;
      std::memcpy(&bytes[at + off], &h, 2);
    }
  }
  return bytes;
}

TEST(IqGridKernels, RandomBlocksOnEveryIsa) {
  std::mt19937 rng(7);
  for (GgmlType t : kTypes) {
    ASSERT_EQ(activation_format(t), ActFormat::Q8K);
    for (int64_t n : {256, 768, 2048}) {
      const auto w = random_blocks(t, n, rng);
      const auto x = test::random_floats(size_t(n), rng, 1.0f);
      AlignedBuffer act;
      act.reserve(size_t(activation_row_bytes(ActFormat::Q8K, n)));
      quantize_activation_row(ActFormat::Q8K, x.data(), act.as(), n);
      std::vector<float> deq(static_cast<size_t>(n));
      dequantize_row(t, w.data(), deq.data(), n);
      double exact = 0, scale = 0;  // the decoded row against the activations the kernel reads
      for (int64_t i = 0; i < n; ++i) {
        const auto& b = reinterpret_cast<const ActBlockQ8K*>(act.as())[i / 256];
        const double term = double(deq[size_t(i)]) * b.d * b.qs[i % 256];
        exact += term, scale += std::fabs(term);
      }
      const float scalar = row_dot_kernel(t, CpuIsa::Scalar)(n, w.data(), act.as());
      EXPECT_NEAR(scalar, exact, 1e-5 * std::max(1.0, scale)) << ggml_type_name(t) << " n=" << n;
      for (CpuIsa isa : {CpuIsa::Avx2, CpuIsa::Avx512}) {
        if (!cpu_supports(isa)) continue;
        const RowKernels k = row_kernels(t, isa);
        EXPECT_NEAR(k.one(n, w.data(), act.as()), scalar, 1e-5 * std::max(1.0, scale))
            << ggml_type_name(t) << " " << cpu_isa_name(isa) << " n=" << n;
        const void* acts[5] = {act.as(), act.as(), act.as(), act.as(), act.as()};
        float out[5];
        k.many(n, w.data(), acts, 5, out);
        for (float v : out)
          EXPECT_NEAR(v, scalar, 1e-5 * std::max(1.0, scale)) << ggml_type_name(t) << " " << cpu_isa_name(isa) << " many";
      }
    }
  }
}

}  // namespace
}  // namespace tandem::experts
