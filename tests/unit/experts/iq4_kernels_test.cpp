// IQ4_NL / IQ4_XS row dots on raw random blocks (every nibble, every 6-bit run scale, both
// signs of d), on every ISA this CPU runs: each SIMD kernel against the scalar one, and the
// scalar one against the reference decoder times the quantized activations.
#include <gtest/gtest.h>

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

std::vector<uint8_t> random_blocks(GgmlType t, int64_t n, std::mt19937& rng) {
  const auto& info = ggml_type_info(t);
  std::vector<uint8_t> bytes(ggml_row_bytes(t, uint64_t(n)));
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> d(-0.02f, 0.02f);
  for (auto& b : bytes) b = uint8_t(byte(rng));
  for (size_t at = 0; at < bytes.size(); at += info.type_size) {
    const uint16_t h = f32_to_f16(d(rng));
    bytes[at] = uint8_t(h & 0xFF);
    bytes[at + 1] = uint8_t(h >> 8);
  }
  return bytes;
}

TEST(Iq4Kernels, RandomBlocksOnEveryIsa) {
  std::mt19937 rng(42);
  for (GgmlType t : {GgmlType::IQ4_NL, GgmlType::IQ4_XS}) {
    const ActFormat fmt = activation_format(t);
    for (int64_t n : {256, 768, 2048}) {
      const auto w = random_blocks(t, n, rng);
      const auto x = test::random_floats(size_t(n), rng, 1.0f);
      AlignedBuffer act;
      act.reserve(size_t(activation_row_bytes(fmt, n)));
      quantize_activation_row(fmt, x.data(), act.as(), n);
      std::vector<float> deq(static_cast<size_t>(n));
      dequantize_row(t, w.data(), deq.data(), n);
      double exact = 0;  // the decoded row against the activations the kernel reads
      for (int64_t i = 0; i < n; ++i) {
        const void* blocks = act.as();
        float a;
        if (fmt == ActFormat::Q8K) {
          const auto& b = static_cast<const ActBlockQ8K*>(blocks)[i / 256];
          a = b.d * b.qs[i % 256];
        } else {
          const auto& b = static_cast<const ActBlockQ8*>(blocks)[i / 32];
          a = b.d * b.qs[i % 32];
        }
        exact += double(deq[size_t(i)]) * a;
      }
      const float scalar = row_dot_kernel(t, CpuIsa::Scalar)(n, w.data(), act.as());
      EXPECT_NEAR(scalar, exact, 1e-4 * std::max(1.0, std::fabs(exact))) << ggml_type_name(t) << " n=" << n;
      for (CpuIsa isa : {CpuIsa::Avx2, CpuIsa::Avx512}) {
        if (!cpu_supports(isa)) continue;
        const RowKernels k = row_kernels(t, isa);
        EXPECT_NEAR(k.one(n, w.data(), act.as()), scalar, 1e-4 * std::max(1.0f, std::fabs(scalar)))
            << ggml_type_name(t) << " " << cpu_isa_name(isa) << " n=" << n;
        const void* acts[6] = {act.as(), act.as(), act.as(), act.as(), act.as(), act.as()};
        float out[6];
        k.many(n, w.data(), acts, 6, out);
        for (float v : out)
          EXPECT_NEAR(v, scalar, 1e-4 * std::max(1.0f, std::fabs(scalar)))
              << ggml_type_name(t) << " " << cpu_isa_name(isa) << " many, n=" << n;
      }
    }
  }
}

}  // namespace
}  // namespace tandem::experts
