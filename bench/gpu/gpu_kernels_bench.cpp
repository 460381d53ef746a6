// Times the GPU kernels at DeepSeek-V3 sizes with Vulkan timestamps and prints effective
// bandwidth. Usage: bench_gpu_kernels [gpu-index] [--quick] [--prefill] [--mla] [--decode] (--decode:
// only the streaming ceiling and decode-shaped products through each kernel path; --prefill: only the
// prefill GEMMs: column loop vs tiled kernels, the switch-over column count and tile shapes;
// --mla: only the streaming ceiling and the MLA attention core).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/gpu/elementwise.h"
#include "runtime/gpu/matmul.h"
#include "runtime/gpu/matmul_tiled.h"
#include "runtime/gpu/mla_attention.h"

using namespace tandem;
using namespace tandem::gpu;

namespace {

std::vector<uint8_t> random_bytes(uint64_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  std::mt19937 rng(seed);
  for (auto& b : v) b = uint8_t(rng() & 0x3b);  // keeps f16 scales finite and small
  return v;
}

// Median GPU time of `reps` replays of one recorded sequence, in milliseconds.
double median_ms(CommandSequence& seq, int reps) {
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    seq.run();
    double total = 0;
    for (const auto& k : seq.timings()) total += k.milliseconds;
    t.push_back(total);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

void bench_matmul(GpuDevice& dev, GgmlType type, uint32_t rows, uint32_t cols, uint32_t n_cols, int reps) {
  const uint64_t bytes = ggml_row_bytes(type, cols) * rows;
  const auto data = random_bytes(bytes, rows ^ cols);
  GpuBuffer storage;
  const GpuWeight w = upload_weight(dev, storage, type, rows, cols, data.data(), "bench weight");
  auto x = dev.allocate(uint64_t(cols) * n_cols * 4, "x");
  auto y = dev.allocate(uint64_t(rows) * n_cols * 4, "y");
  dev.fill_zero(x.span());
  CommandSequence seq(dev, true);
  record_matmul(seq, w, x.span(), y.span(), n_cols);
  const double ms = median_ms(seq, reps);
  std::printf("matmul %-5s %6u x %-6u n=%-3u %9.3f ms  %7.1f GB/s  %8.1f GFLOP/s\n",
              std::string(ggml_type_name(type)).c_str(), rows, cols, n_cols, ms, double(bytes) / ms * 1e-6,
              2.0 * rows * cols * n_cols / ms * 1e-6);
}

// One matmul of random weights, to time it through several paths.
struct PrefillCase {
  GpuBuffer storage, x, y;
  GpuWeight w;
  PrefillCase(GpuDevice& dev, GgmlType type, uint32_t rows, uint32_t cols, uint32_t n) {
    const auto data = random_bytes(ggml_row_bytes(type, cols) * rows, rows ^ cols);
    w = upload_weight(dev, storage, type, rows, cols, data.data(), "bench weight");
    x = dev.allocate(uint64_t(cols) * n * 4, "x");
    y = dev.allocate(uint64_t(rows) * n * 4, "y");
    dev.fill_zero(x.span());
  }
};

enum class Path { ColumnLoop, Tiled, TiledCooperative };

double time_path(GpuDevice& dev, PrefillCase& c, uint32_t n, Path path, int reps, const TiledMatMulOptions* o = nullptr) {
  CommandSequence seq(dev, true);
  if (path == Path::ColumnLoop) {
    MatMulLayout l;
    l.allow_tiled = false;
    record_matmul(seq, c.w, c.x.span(), c.y.span(), n, l);
  } else {
    TiledMatMulOptions opt = o ? *o : TiledMatMulOptions{};
    if (path == Path::TiledCooperative) opt.kernel = TiledKernel::Cooperative;
    if (path == Path::Tiled && !o) opt.kernel = TiledKernel::Plain;  // Auto may pick the cooperative one
    record_matmul_tiled(seq, c.w, c.x.span(), c.y.span(), n, {}, opt);
  }
  return median_ms(seq, reps);
}

double tflops(uint32_t rows, uint32_t cols, uint32_t n, double ms) { return 2.0 * rows * cols * n / ms * 1e-9; }

// Prefill products: the column loop (record_matmul below the switch) against the tiled kernels.
void bench_prefill(GpuDevice& dev, GgmlType type, uint32_t rows, uint32_t cols, uint32_t n, int reps) {
  PrefillCase c(dev, type, rows, cols, n);
  const bool coop = tiled_matmul_cooperative_available(dev.info());
  const double old_ms = time_path(dev, c, n, Path::ColumnLoop, std::max(2, reps / 4));
  const double tiled_ms = time_path(dev, c, n, Path::Tiled, reps);
  std::printf("prefill %-5s %6u x %-6u n=%-4u column-loop %8.3f ms %6.2f TFLOP/s | tiled %7.3f ms %6.2f TFLOP/s (%5.1fx)",
              std::string(ggml_type_name(type)).c_str(), rows, cols, n, old_ms, tflops(rows, cols, n, old_ms), tiled_ms,
              tflops(rows, cols, n, tiled_ms), old_ms / tiled_ms);
  if (coop) {
    const double coop_ms = time_path(dev, c, n, Path::TiledCooperative, reps);
    std::printf(" | tiled-coopmat %7.3f ms %6.2f TFLOP/s", coop_ms, tflops(rows, cols, n, coop_ms));
  }
  std::printf("\n");
}

// Where the tiled kernels overtake the column loop (record_matmul's switch, tiled_matmul_min_cols).
void bench_switch(GpuDevice& dev, GgmlType type, uint32_t rows, uint32_t cols, int reps) {
  const bool coop = tiled_matmul_cooperative_available(dev.info());
  for (uint32_t n : {8u, 12u, 16u, 17u, 20u, 24u, 32u, 64u}) {
    PrefillCase c(dev, type, rows, cols, n);
    std::printf("switch  %-5s %6u x %-6u n=%-3u column-loop %7.3f ms | tiled %7.3f ms", std::string(ggml_type_name(type)).c_str(),
                rows, cols, n, time_path(dev, c, n, Path::ColumnLoop, reps), time_path(dev, c, n, Path::Tiled, reps));
    if (coop) std::printf(" | tiled-coopmat %7.3f ms", time_path(dev, c, n, Path::TiledCooperative, reps));
    std::printf("  (switch at %u)\n", tiled_matmul_min_cols(dev.info()));
  }
}

// Tile shapes of the tiled kernels on one product.
void bench_tiles(GpuDevice& dev, GgmlType type, uint32_t rows, uint32_t cols, uint32_t n, int reps) {
  PrefillCase c(dev, type, rows, cols, n);
  std::vector<TiledMatMulOptions> configs = {
      {TiledKernel::Plain, 64, 64, 32, 4, 4, 0, 0},  {TiledKernel::Plain, 128, 64, 32, 8, 4, 0, 0},
      {TiledKernel::Plain, 128, 128, 32, 8, 8, 0, 0}, {TiledKernel::Plain, 64, 64, 64, 4, 4, 0, 0}};
  if (tiled_matmul_cooperative_available(dev.info()))
    configs.insert(configs.end(), {{TiledKernel::Cooperative, 64, 64, 32, 0, 0, 2, 2},
                                   {TiledKernel::Cooperative, 64, 64, 64, 0, 0, 2, 2},
                                   {TiledKernel::Cooperative, 128, 64, 32, 0, 0, 4, 2},
                                   {TiledKernel::Cooperative, 64, 128, 32, 0, 0, 2, 4},
                                   {TiledKernel::Cooperative, 128, 128, 32, 0, 0, 4, 4},
                                   {TiledKernel::Cooperative, 128, 128, 32, 0, 0, 2, 2},
                                   {TiledKernel::Cooperative, 64, 64, 32, 0, 0, 1, 1},
                                   {TiledKernel::Cooperative, 128, 64, 32, 0, 0, 2, 2},
                                   {TiledKernel::Cooperative, 64, 128, 32, 0, 0, 2, 2},
                                   {TiledKernel::Cooperative, 64, 128, 32, 0, 0, 1, 4},
                                   {TiledKernel::Cooperative, 128, 64, 32, 0, 0, 4, 1}});
  for (const auto& o : configs) {
    try {
      const double ms = time_path(dev, c, n, Path::Tiled, reps, &o);
      std::printf("tiles   %-5s %6u x %-6u n=%-4u %-7s bm %3u bn %3u bk %2u tm/sg_r %u tn/sg_c %u %8.3f ms %6.2f TFLOP/s\n",
                  std::string(ggml_type_name(type)).c_str(), rows, cols, n,
                  o.kernel == TiledKernel::Plain ? "plain" : "coopmat", o.bm, o.bn, o.bk,
                  o.kernel == TiledKernel::Plain ? o.tm : o.sg_r, o.kernel == TiledKernel::Plain ? o.tn : o.sg_c, ms,
                  tflops(rows, cols, n, ms));
    } catch (const Error& e) {
      std::printf("tiles   bm %u bn %u bk %u: %s\n", o.bm, o.bn, o.bk, e.what());
    }
  }
}

// The memory bandwidth a plain streaming kernel reaches (out = 1 * in over 2 x 512 MiB): the
// ceiling the matmul and attention numbers are compared against.
void bench_stream(GpuDevice& dev, uint64_t bytes, int reps) {
  const uint64_t max_range = dev.info().max_storage_buffer_range & ~uint64_t(255);
  bytes = std::min(bytes, max_range);
  auto a = dev.allocate(bytes, "stream in"), b = dev.allocate(bytes, "stream out");
  dev.fill_zero(a.span());
  CommandSequence seq(dev, true);
  record_scale(seq, a.span(), 1.0f, b.span(), uint32_t(bytes / 4));
  const double ms = median_ms(seq, reps);
  std::printf("stream copy %7.1f MiB  %9.3f ms  %7.1f GB/s (read + write)\n", double(bytes) / (1 << 20), ms,
              2.0 * double(bytes) / ms * 1e-6);
}

// MLA core at DeepSeek-V3 shapes (128 heads, rank 512, rope 64): the per-head kernel (before)
// against the grouped kernel (after), with the cache bytes one read of the layer moves per
// second of the grouped kernel (all heads and queries share that one read).
void bench_mla(GpuDevice& dev, uint32_t n_ctx, uint32_t n_query, int reps, KvCacheType type = KvCacheType::F16) {
  const MlaShape s{128, 512, 128, 64, 128};
  LatentKvCache cache(dev, 1, n_ctx, s.kv_lora_rank, s.qk_rope_dim, type);
  dev.fill_zero(cache.layer(0));
  const uint64_t qlat_floats = uint64_t(n_query) * s.n_head * s.kv_lora_rank;
  auto q_lat = dev.allocate(qlat_floats * 4, "q_lat"), o_lat = dev.allocate(qlat_floats * 4, "o_lat");
  auto q_pe = dev.allocate(uint64_t(n_query) * s.n_head * s.qk_rope_dim * 4, "q_pe");
  dev.fill_zero(q_lat.span());
  dev.fill_zero(q_pe.span());
  std::vector<int32_t> pos(n_query);
  for (uint32_t i = 0; i < n_query; ++i) pos[i] = int32_t(n_ctx - n_query + i);
  auto pb = dev.allocate(n_query * 4, "positions");
  dev.upload(pb.span(), pos.data(), n_query * 4);
  const MlaCoreLayout l{s.n_head * 512, 512, s.n_head * 64, 64, s.n_head * 512, 512};
  double ms[2];
  for (int k = 0; k < 2; ++k) {
    CommandSequence seq(dev, true);
    record_mla_core(seq, s, q_lat.span(), q_pe.span(), cache, 0, pb.span(), n_query, 0.1f, o_lat.span(), l,
                    k == 0 ? MlaKernel::PerHead : MlaKernel::Auto);
    ms[k] = median_ms(seq, n_query > 1 ? std::max(2, reps / 4) : reps);
  }
  const double cache_bytes = double(n_ctx) * 576 * 2;
  const double flop = 2.0 * s.n_head * (576 + 512) * (double(n_ctx) * n_query - 0.5 * n_query * (n_query - 1));
  std::printf("mla core  128 heads %-4s ctx=%-6u queries=%-4u per-head %9.3f ms | grouped %8.3f ms (%5.1fx)  "
              "cache %.1f MiB: %7.1f GB/s, %5.2f TFLOP/s\n",
              std::string(kv_cache_type_name(type)).c_str(), n_ctx, n_query, ms[0], ms[1], ms[0] / ms[1],
              cache_bytes / (1 << 20), cache_bytes / ms[1] * 1e-6, flop / ms[1] * 1e-9);
}

}  // namespace

// Decode-shaped products through each kernel that may serve them: the generic column kernel,
// and for K-quants the chunked kernel with F32 x and with int8 x (its quantize dispatch counted).
void bench_decode(GpuDevice& dev, GgmlType type, uint32_t rows, uint32_t cols, uint32_t n_cols, int reps) {
  const uint64_t bytes = ggml_row_bytes(type, cols) * rows;
  const auto data = random_bytes(bytes, rows ^ cols);
  GpuBuffer storage;
  const GpuWeight w = upload_weight(dev, storage, type, rows, cols, data.data(), "bench weight");
  auto x = dev.allocate(uint64_t(cols) * n_cols * 4, "x");
  auto y = dev.allocate(uint64_t(rows) * n_cols * 4, "y");
  dev.fill_zero(x.span());
  std::printf("decode %-5s %6u x %-6u n=%u", std::string(ggml_type_name(type)).c_str(), rows, cols, n_cols);
  for (int path = 0; path < 3; ++path) {
    MatMulLayout l;
    l.allow_kquant_matvec = path > 0;
    l.allow_int_dot = path > 1;
    const std::string kernel = kquant_matvec_kernel(dev, w, x.span(), n_cols, l);
    if (path > 0 && (kernel.empty() || (path == 2) != (kernel.find("_int8") != std::string::npos))) continue;
    CommandSequence seq(dev, true);
    record_matmul(seq, w, x.span(), y.span(), n_cols, l);
    const double ms = median_ms(seq, reps);
    std::printf(" | %s %.4f ms %6.0f GB/s", path == 0 ? "generic" : path == 1 ? "chunked-f32" : "chunked-int8", ms,
                double(bytes) / ms * 1e-6);
  }
  std::printf("\n");
}

int main(int argc, char** argv) {
  uint32_t index = 0;
  bool quick = false, prefill_only = false, mla_only = false, decode_only = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--prefill")) prefill_only = true;
    else if (!std::strcmp(argv[i], "--mla")) mla_only = true;
    else if (!std::strcmp(argv[i], "--decode")) decode_only = true;
    else index = uint32_t(std::atoi(argv[i]));
  }
  try {
    auto dev = GpuDevice::open(index);
    std::printf("%s", describe(dev->info()).c_str());
    if (!dev->info().timestamps) {
      std::printf("no timestamp support on this queue: nothing to time\n");
      return 0;
    }
    const int reps = quick ? 3 : 20;
    const uint32_t scale = quick ? 8 : 1;  // lavapipe: shrink the matrices
    if (prefill_only) {
      // Prefill GEMMs at V3 sizes (7168 model width, 2048 q/ffn-ish widths), n tokens per product.
      const uint32_t big = quick ? 1024 : 7168, mid = quick ? 256 : 2048;
      for (GgmlType t : {GgmlType::F16, GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0})
        for (auto [rows, cols] : {std::pair{big, mid}, std::pair{mid, big}, std::pair{big, big}})
          for (uint32_t n : {64u, 256u, 512u}) bench_prefill(*dev, t, rows, cols, n / scale, reps);
      bench_switch(*dev, GgmlType::Q4_K, big, big, reps);
      bench_switch(*dev, GgmlType::F16, big, big, reps);
      for (uint32_t n : {64u, 512u}) bench_tiles(*dev, GgmlType::Q4_K, big, big, n / scale, reps);
      bench_tiles(*dev, GgmlType::F16, big, big, 512 / scale, reps);
      return 0;
    }
    bench_stream(*dev, quick ? (64u << 20) : (512u << 20), reps);
    if (decode_only) {
      for (GgmlType t : {GgmlType::F16, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K,
                         GgmlType::Q6_K})
        bench_decode(*dev, t, 7168 / scale, 7168, 1, reps);
      bench_decode(*dev, GgmlType::Q4_K, 24576 / scale, 1536, 1, reps);
      bench_decode(*dev, GgmlType::Q4_K, 2048 / scale, 7168, 1, reps);
      bench_decode(*dev, GgmlType::Q6_K, 129280 / scale, 7168, 1, reps);
      for (uint32_t n : {2u, 4u, 8u}) bench_decode(*dev, GgmlType::Q4_K, 7168 / scale, 7168, n, reps);
      bench_decode(*dev, GgmlType::Q6_K, 7168 / scale, 7168, 4, reps);
      return 0;
    }
    for (GgmlType t : {GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q2_K, GgmlType::Q3_K,
                       GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K})
      if (!mla_only) bench_matmul(*dev, t, 7168 / scale, 7168, 1, reps);
    if (!mla_only) bench_matmul(*dev, GgmlType::Q4_K, 24576 / scale, 1536, 1, reps);
    if (!mla_only) bench_matmul(*dev, GgmlType::Q6_K, 129280 / scale, 7168, 1, reps);
    if (!mla_only) bench_matmul(*dev, GgmlType::Q4_K, 7168 / scale, 7168, 8, reps);
    if (!mla_only) bench_matmul(*dev, GgmlType::Q4_K, 7168 / scale, 7168, 64, reps);
    for (uint32_t ctx : {512u, 4096u, 16384u}) bench_mla(*dev, ctx / scale, 1, reps);
    bench_mla(*dev, 16384 / scale, 1, reps, KvCacheType::BF16);
    bench_mla(*dev, 4096 / scale, 64 / scale, reps);   // prefill chunks
    bench_mla(*dev, 4096 / scale, 256 / scale, reps);
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_gpu_kernels: %s\n", e.what());
    return 1;
  }
  return 0;
}
