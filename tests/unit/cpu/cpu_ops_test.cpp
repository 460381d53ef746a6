// runtime/cpu ops against plain fp64/fp32 references on random data: every weight type the
// kernels take, odd sizes, several thread counts and every ISA this CPU runs.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "experts/cpu_isa.h"
#include "runtime/cpu/mla_attention.h"
#include "runtime/cpu/quant_matmul.h"
#include "runtime/cpu/row_ops.h"
#include "runtime/cpu/thread_pool.h"
#include "runtime/model/reference_ops.h"
#include "runtime/model/rope.h"
#include "runtime/quant/dequantize.h"
#include "runtime/quant/quantize.h"

namespace tandem::cpu {
namespace {

std::vector<float> random_floats(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

double rel_l2(const std::vector<float>& got, const std::vector<double>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  return std::sqrt(num / den);
}

std::vector<experts::CpuIsa> isas() {
  std::vector<experts::CpuIsa> out;
  for (auto isa : {experts::CpuIsa::Scalar, experts::CpuIsa::Avx2, experts::CpuIsa::Avx512})
    if (experts::cpu_supports(isa)) out.push_back(isa);
  return out;
}

struct QuantizedMatrix {
  std::vector<uint8_t> bytes;
  WeightMatrix view;
  std::vector<float> dequantized;  // what the kernels must reproduce
};

QuantizedMatrix random_matrix(GgmlType type, int64_t rows, int64_t cols, std::mt19937& rng) {
  QuantizedMatrix m;
  const uint64_t rb = ggml_row_bytes(type, uint64_t(cols));
  m.bytes.resize(size_t(rb * uint64_t(rows)));
  m.dequantized.resize(size_t(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    const auto row = random_floats(size_t(cols), rng, 1.0f / std::sqrt(float(cols)));
    quantize_row(type, row.data(), m.bytes.data() + uint64_t(r) * rb, cols);
    dequantize_row(type, m.bytes.data() + uint64_t(r) * rb, m.dequantized.data() + r * cols, cols);
  }
  m.view.name = "test";
  m.view.type = type;
  m.view.rows = rows;
  m.view.cols = cols;
  m.view.row_bytes = rb;
  m.view.data = m.bytes.data();
  return m;
}

// Quantized activations (8 bits per block) cost ~0.5-1 % relative error; fp32 ones none.
double tolerance(GgmlType t) {
  return (t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16) ? 1e-5 : 0.02;
}

int64_t cols_for(GgmlType t) {
  const int64_t block = int64_t(ggml_type_info(t).block_size);
  return block == 256 ? 512 : block == 32 ? 96 : 77;  // odd where the type allows
}

const GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
                           GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K,
                           GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

TEST(QuantMatmul, MatchesDequantizedProductForEveryTypeThreadCountAndTokenCount) {
  std::mt19937 rng(3);
  for (GgmlType type : kTypes) {
    const int64_t rows = 37, cols = cols_for(type);
    const QuantizedMatrix m = random_matrix(type, rows, cols, rng);
    for (int64_t n_tokens : {1, 5, 41}) {  // 41: more than one block of tokens
      const auto x = random_floats(size_t(n_tokens * cols), rng);
      std::vector<double> want(size_t(n_tokens * rows));
      for (int64_t t = 0; t < n_tokens; ++t)
        for (int64_t r = 0; r < rows; ++r) {
          double acc = 0;
          for (int64_t c = 0; c < cols; ++c) acc += double(m.dequantized[size_t(r * cols + c)]) * x[size_t(t * cols + c)];
          want[size_t(t * rows + r)] = acc;
        }
      for (auto isa : isas())
        for (int threads : {1, 2, 3}) {
          ThreadPool pool(threads);
          QuantMatmul mm(pool, isa);
          std::vector<float> y(want.size(), NAN);
          mm.matmul(m.view, x.data(), n_tokens, y.data());
          EXPECT_LT(rel_l2(y, want), tolerance(type))
              << ggml_type_name(type) << " tokens " << n_tokens << " threads " << threads << " isa "
              << experts::cpu_isa_name(isa);
        }
    }
  }
}

TEST(QuantMatmul, GroupedProductsUseTheirOwnRowsInputsAndOutputs) {
  std::mt19937 rng(5);
  // 3 groups of 7 rows at stride 10 from row 2 (a legacy attn_kv_b's v rows), strided io.
  const int64_t groups = 3, rows = 7, first = 2, stride = 10, cols = 64, n = 4;
  const QuantizedMatrix m = random_matrix(GgmlType::Q8_0, first + groups * stride, cols, rng);
  const int64_t x_ts = groups * cols + 5, y_ts = groups * rows + 3;
  const auto x = random_floats(size_t(n * x_ts), rng);
  ThreadPool pool(2);
  QuantMatmul mm(pool, experts::best_cpu_isa());
  std::vector<float> y(size_t(n * y_ts), -7.0f);
  mm.grouped(m.view, RowGroups{groups, rows, first, stride}, GroupedIo{x.data(), x_ts, cols, y.data(), y_ts, rows}, n);
  std::vector<float> got;
  std::vector<double> want;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t r = 0; r < rows; ++r) {
        double acc = 0;
        const float* wr = m.dequantized.data() + (first + g * stride + r) * cols;
        for (int64_t c = 0; c < cols; ++c) acc += double(wr[c]) * x[size_t(t * x_ts + g * cols + c)];
        want.push_back(acc);
        got.push_back(y[size_t(t * y_ts + g * rows + r)]);
      }
  EXPECT_LT(rel_l2(got, want), 0.02);
  for (int64_t t = 0; t < n; ++t)  // padding between tokens' outputs untouched
    for (int64_t i = groups * rows; i < y_ts; ++i) EXPECT_EQ(y[size_t(t * y_ts + i)], -7.0f);
  EXPECT_THROW(mm.grouped(m.view, RowGroups{groups, rows, first, 2 * stride}, GroupedIo{x.data(), x_ts, cols, y.data(), y_ts, rows}, n),
               std::exception);
}

// Heads of a K-quant matrix on 16-row boundaries run the repacked tile (avx512); it must give
// what the row kernels on the GGUF bytes give, for every group, token count and thread count.
TEST(QuantMatmul, RepackedTileMatchesTheRowKernelsOnGroupedKQuantRows) {
  std::mt19937 rng(9);
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    const int64_t groups = 3, rows = 32, first = 16, stride = 48, cols = 512;
    const QuantizedMatrix m = random_matrix(type, first + groups * stride, cols, rng);
    for (int64_t n : {1, 7, 19}) {
      const int64_t x_ts = groups * cols, y_ts = groups * rows;
      const auto x = random_floats(size_t(n * x_ts), rng);
      for (int threads : {1, 2}) {
        ThreadPool pool(threads);
        QuantMatmul packed(pool, experts::best_cpu_isa()), rows_only(pool, experts::best_cpu_isa());
        rows_only.set_repack(false);
        std::vector<float> a(size_t(n * y_ts), NAN), b(size_t(n * y_ts), NAN);
        const RowGroups g{groups, rows, first, stride};
        packed.grouped(m.view, g, GroupedIo{x.data(), x_ts, cols, a.data(), y_ts, rows}, n);
        rows_only.grouped(m.view, g, GroupedIo{x.data(), x_ts, cols, b.data(), y_ts, rows}, n);
        std::vector<double> want(b.begin(), b.end());
        EXPECT_LT(rel_l2(a, want), 1e-4) << ggml_type_name(type) << " tokens " << n << " threads " << threads;
      }
    }
  }
}

TEST(ThreadPool, CoversEveryIndexOnceWithAnyGrain) {
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    for (int64_t grain : {1, 3, 100}) {
      std::vector<std::atomic<int>> hits(257);
      pool.parallel_for(257, grain, [&](int64_t b, int64_t e) {
        if (threads > 1) {
          EXPECT_LE(e - b, grain);
        }
        for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
      });
      for (auto& h : hits) EXPECT_EQ(h.load(), 1);
    }
  }
  EXPECT_THROW(ThreadPool(0), std::exception);
}

TEST(RowOps, MatchTheReferenceOps) {
  std::mt19937 rng(9);
  const int64_t n = 203;
  const auto x = random_floats(size_t(n), rng, 3.0f), w = random_floats(size_t(n), rng);
  std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
  rms_norm(x.data(), w.data(), n, 1e-6f, a.data());
  tandem::rms_norm(x.data(), w.data(), n, 1e-6f, b.data());
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(a[size_t(i)], b[size_t(i)], 1e-5f * std::fabs(b[size_t(i)]) + 1e-6f);
  a = x, b = x;
  softmax_inplace(a.data(), n);
  tandem::softmax_inplace(b.data(), n);
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(a[size_t(i)], b[size_t(i)], 1e-6f);
  silu_mul(x.data(), w.data(), n, a.data());
  tandem::silu_mul(x.data(), w.data(), n, b.data());
  for (int64_t i = 0; i < n; ++i) EXPECT_FLOAT_EQ(a[size_t(i)], b[size_t(i)]);
  a = w;
  axpy(n, 0.5f, x.data(), a.data());
  for (int64_t i = 0; i < n; ++i) EXPECT_FLOAT_EQ(a[size_t(i)], w[size_t(i)] + 0.5f * x[size_t(i)]);
  a = w;
  add_inplace(a.data(), x.data(), n);
  for (int64_t i = 0; i < n; ++i) EXPECT_FLOAT_EQ(a[size_t(i)], w[size_t(i)] + x[size_t(i)]);
}

TEST(RopeTable, MatchesRopeApplyWithAndWithoutYarn) {
  for (bool yarn : {false, true}) {
    RopeParams p;
    p.n_dims = 64;
    p.yarn = yarn;
    p.freq_scale = yarn ? 0.25f : 1.0f;
    p.yarn_orig_ctx = 4096;
    const Rope rope(p);
    RopeTable table(p);
    table.compute(1000, 5);
    std::mt19937 rng(1);
    for (int64_t t = 0; t < 5; ++t) {
      auto a = random_floats(64, rng), b = a;
      table.apply(a.data(), t);
      rope.apply(b.data(), 1000 + t);
      for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5f);
    }
  }
}

TEST(MlaAttention, MatchesNaiveCausalAttentionOverTheCache) {
  std::mt19937 rng(11);
  const int64_t nh = 5, lora = 40, rope = 8, width = lora + rope, first_pos = 6, n = 4;
  LatentKvCacheCpu cache(2, lora, rope);
  const auto data = random_floats(size_t((first_pos + n) * width), rng);
  std::copy(data.begin(), data.begin() + first_pos * width, cache.append(1, first_pos));
  std::copy(data.begin() + first_pos * width, data.end(), cache.append(1, n));
  ASSERT_EQ(cache.length(1), first_pos + n);
  ASSERT_EQ(cache.length(0), 0);
  const auto q = random_floats(size_t(n * nh * width), rng, 0.5f);
  const float scale = 0.3f;
  std::vector<double> want;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < nh; ++h) {
      const int64_t ctx = first_pos + t + 1;
      std::vector<double> p(static_cast<size_t>(ctx));
      double mx = -1e300, sum = 0;
      for (int64_t s = 0; s < ctx; ++s) {
        double acc = 0;
        for (int64_t i = 0; i < width; ++i) acc += double(q[size_t((t * nh + h) * width + i)]) * data[size_t(s * width + i)];
        p[size_t(s)] = acc * scale;
        mx = std::max(mx, p[size_t(s)]);
      }
      for (auto& v : p) sum += (v = std::exp(v - mx));
      for (int64_t i = 0; i < lora; ++i) {
        double o = 0;
        for (int64_t s = 0; s < ctx; ++s) o += p[size_t(s)] / sum * data[size_t(s * width + i)];
        want.push_back(o);
      }
    }
  for (auto isa : isas())
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      std::vector<float> out(size_t(n * nh * lora), NAN);
      mla_attention(pool, isa, MlaShape{nh, lora, width, scale}, cache.rows(1), first_pos, n, q.data(), out.data());
      EXPECT_LT(rel_l2(out, want), 1e-5) << threads << " threads, " << experts::cpu_isa_name(isa);
    }
  cache.reset();
  EXPECT_EQ(cache.length(1), 0);
}

}  // namespace
}  // namespace tandem::cpu
