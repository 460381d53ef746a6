// Every row-dot kernel on every ISA this CPU runs, against an fp32 dot of the dequantized row
// (accuracy) and against the scalar kernel (the SIMD paths must compute the same integers).
#include <gtest/gtest.h>

#include <cmath>

#include "experts/activation_blocks.h"
#include "experts/aligned_buffer.h"
#include "experts/kernels/row_dot.h"
#include "runtime/core/error.h"
#include "runtime/core/knobs.h"
#include "runtime/quant/dequantize.h"
#include "tests/unit/experts/random_weights.h"

namespace tandem::experts {
namespace {

const GgmlType kTypes[] = {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q2_K, GgmlType::Q3_K,
                           GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                           GgmlType::BF16, GgmlType::F16,  GgmlType::F32,  GgmlType::IQ4_NL, GgmlType::IQ4_XS};

// NMSE of the kernel against the fp32 dot: 8-bit activations (the largest value of each block
// maps to 127) give up to 3e-4 here, where a block holds an 8-sigma outlier channel.
constexpr double kQuantizedActivationNmse = 1e-3;

// The activation values the kernel really multiplies: d * q of each block.
std::vector<float> dequantized_activation(ActFormat fmt, const void* act, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (fmt == ActFormat::Q8K) {
      const auto& b = static_cast<const ActBlockQ8K*>(act)[i / 256];
      out[size_t(i)] = b.d * b.qs[i % 256];
    } else if (fmt == ActFormat::Q8) {
      const auto& b = static_cast<const ActBlockQ8*>(act)[i / 32];
      out[size_t(i)] = b.d * b.qs[i % 32];
    } else {
      out[size_t(i)] = static_cast<const float*>(act)[i];
    }
  }
  return out;
}

struct Case {
  GgmlType type;
  CpuIsa isa;
};

std::string case_name(const testing::TestParamInfo<Case>& info) {
  return std::string(ggml_type_name(info.param.type)) + "_" + std::string(cpu_isa_name(info.param.isa));
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (CpuIsa isa : {CpuIsa::Scalar, CpuIsa::Avx2, CpuIsa::Avx512})
    for (GgmlType t : kTypes) cases.push_back({t, isa});
  return cases;
}

class RowDotTest : public testing::TestWithParam<Case> {};

TEST_P(RowDotTest, MatchesDequantizedDotAndScalarKernel) {
  const auto [type, isa] = GetParam();
  if (!cpu_supports(isa)) GTEST_SKIP() << "CPU lacks " << cpu_isa_name(isa);
  const int64_t block = ggml_type_info(type).block_size;
  const ActFormat fmt = activation_format(type);
  std::mt19937 rng(1234 + uint32_t(type));
  // Several lengths: one block, a few blocks, and for plain types a length with a SIMD tail.
  std::vector<int64_t> lengths = {std::max<int64_t>(block, 32) * (block == 256 ? 1 : 2), block == 256 ? 1024 : 320};
  if (block == 1) lengths.push_back(77);
  if (block == 32) lengths.push_back(96);  // an odd block count: 2-block SIMD steps have a tail
  const RowDotFn kernel = row_dot_kernel(type, isa);
  const RowDotFn scalar = row_dot_kernel(type, CpuIsa::Scalar);
  for (int64_t n : lengths) {
    const int rows = 16;
    const auto w = test::random_matrices(type, 1, rows, n, rng, 1.0f);
    const int64_t row_bytes = int64_t(ggml_row_bytes(type, uint64_t(n)));
    std::vector<float> got, want, exact, via_scalar;
    for (int trial = 0; trial < 3; ++trial) {
      // Activations with an outlier channel, as real hidden states have.
      auto x = test::random_floats(size_t(n), rng, 1.0f);
      x[size_t(trial * 7) % size_t(n)] *= 8.0f;
      AlignedBuffer act;
      act.reserve(size_t(activation_row_bytes(fmt, n)));
      quantize_activation_row(fmt, x.data(), act.as(), n);
      const auto xq = dequantized_activation(fmt, act.as(), n);
      std::vector<float> deq(static_cast<size_t>(n));
      for (int r = 0; r < rows; ++r) {
        const uint8_t* row = w.data() + r * row_bytes;
        dequantize_row(type, row, deq.data(), n);
        double ref = 0, ref_q = 0;
        for (int64_t i = 0; i < n; ++i) {
          ref += double(deq[size_t(i)]) * x[size_t(i)];
          ref_q += double(deq[size_t(i)]) * xq[size_t(i)];
        }
        want.push_back(float(ref));
        exact.push_back(float(ref_q));
        got.push_back(kernel(n, row, act.as()));
        via_scalar.push_back(scalar(n, row, act.as()));
      }
    }
    const double bound = fmt == ActFormat::F32 ? 1e-10 : kQuantizedActivationNmse;
    EXPECT_LT(test::nmse(got, want), bound) << "n=" << n;
    EXPECT_LT(test::nmse(got, exact), 1e-10) << "n=" << n << ": wrong against the quantized activations";
    EXPECT_LT(test::nmse(got, via_scalar), 1e-10) << "n=" << n << ": SIMD and scalar kernels disagree";
  }
}

// The multi-activation kernel gives what the one-activation kernel gives, for counts that do and
// do not fill its passes.
TEST_P(RowDotTest, ManyActivationsMatchOneAtATime) {
  const auto [type, isa] = GetParam();
  if (!cpu_supports(isa)) GTEST_SKIP() << "CPU lacks " << cpu_isa_name(isa);
  const int64_t n = ggml_type_info(type).block_size == 256 ? 512 : 64;
  const ActFormat fmt = activation_format(type);
  std::mt19937 rng(77);
  const auto w = test::random_matrices(type, 1, 1, n, rng, 1.0f);
  const int64_t act_bytes = activation_row_bytes(fmt, n);
  const RowKernels k = row_kernels(type, isa);
  for (int count : {1, 3, 4, 5, 8, 9, 17, 31}) {
    AlignedBuffer act;
    act.reserve(size_t(act_bytes * count));
    std::vector<const void*> rows;
    for (int j = 0; j < count; ++j) {
      const auto x = test::random_floats(size_t(n), rng, 1.0f);
      quantize_activation_row(fmt, x.data(), act.as() + j * act_bytes, n);
      rows.push_back(act.as() + j * act_bytes);
    }
    std::vector<float> many(static_cast<size_t>(count)), one;
    k.many(n, w.data(), rows.data(), count, many.data());
    for (int j = 0; j < count; ++j) one.push_back(k.one(n, w.data(), rows[size_t(j)]));
    EXPECT_LT(test::nmse(many, one), 1e-12) << "count=" << count;
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, RowDotTest, testing::ValuesIn(all_cases()), case_name);

TEST(ActivationQuantize, Q8KBlockSumsAndScale) {
  std::mt19937 rng(7);
  const auto x = test::random_floats(512, rng, 3.0f);
  ActBlockQ8K blocks[2];
  quantize_activation_row(ActFormat::Q8K, x.data(), blocks, 512);
  for (int b = 0; b < 2; ++b) {
    int amax = 0;
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += blocks[b].qs[16 * g + i], amax = std::max(amax, std::abs(int(blocks[b].qs[16 * g + i])));
      EXPECT_EQ(blocks[b].bsums[g], sum);
    }
    EXPECT_EQ(amax, 127);
    for (int i = 0; i < 256; ++i) EXPECT_NEAR(blocks[b].d * blocks[b].qs[i], x[size_t(256 * b + i)], blocks[b].d * 0.5f + 1e-6f);
  }
}

TEST(ActivationQuantize, RejectsPartialBlocks) {
  std::vector<float> x(100);
  ActBlockQ8 out[4];
  EXPECT_THROW(quantize_activation_row(ActFormat::Q8, x.data(), out, 100), Error);
}

TEST(RowDotKernel, UnsupportedTypeIsNamed) {
  try {
    row_dot_kernel(GgmlType::MXFP4, CpuIsa::Scalar);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mxfp4"), std::string::npos) << e.what();
  }
}

TEST(CpuIsa, KnobOverride) {
  knobs::set("TANDEM_CPU_ISA", "scalar");
  EXPECT_EQ(selected_cpu_isa(), CpuIsa::Scalar);
  knobs::set("TANDEM_CPU_ISA", "sse9");
  EXPECT_THROW(selected_cpu_isa(), Error);
  knobs::unset("TANDEM_CPU_ISA");
  if (!knobs::value("TANDEM_CPU_ISA")) {
    EXPECT_EQ(selected_cpu_isa(), best_cpu_isa());
  }
}

}  // namespace
}  // namespace tandem::experts
