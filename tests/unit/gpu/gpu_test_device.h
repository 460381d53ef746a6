// The GPU shared by the tests of one executable, or a skip when this machine has no Vulkan device.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/core/half.h"
#include "runtime/gpu/gpu_device.h"
#include "runtime/quant/dequantize.h"
#include "runtime/quant/quantize.h"

namespace tandem::gpu::testing {

struct TestDevice {
  std::unique_ptr<GpuDevice> device;
  std::string why;
};

inline TestDevice& test_device_slot() {
  static TestDevice slot = [] {
    TestDevice t;
    setenv("XDG_RUNTIME_DIR", "/tmp", 0);  // the loader warns without it
    try {
      const char* idx = std::getenv("TANDEM_TEST_GPU");
      t.device = GpuDevice::open(idx ? uint32_t(std::atoi(idx)) : 0);
    } catch (const Error& e) {
      t.why = e.what();
    }
    return t;
  }();
  return slot;
}

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

inline bool is_lattice_iquant(GgmlType t) {
  switch (t) {
    case GgmlType::IQ1_S: case GgmlType::IQ1_M: case GgmlType::IQ2_XXS: case GgmlType::IQ2_XS: case GgmlType::IQ2_S:
    case GgmlType::IQ3_XXS: case GgmlType::IQ3_S:
      return true;
    default: return false;
  }
}

// Raw random blocks of a lattice i-quant (every grid index, sign, scale and delta bit) with a
// small finite super-block scale: the f16 at bytes 0-1, or for IQ1_M spread over the top
// nibbles of its four scale words (bytes 48-55). Their reference quantizers are too slow to
// make test matrices, and random blocks reach codes a quantizer rarely emits.
inline void randomize_lattice_blocks(GgmlType type, uint8_t* bytes, size_t n_bytes, std::mt19937& rng) {
  const size_t bs = ggml_type_info(type).type_size;
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> d(-0.05f, 0.05f);
  for (size_t i = 0; i < n_bytes; ++i) bytes[i] = uint8_t(byte(rng));
  for (size_t at = 0; at + bs <= n_bytes; at += bs) {
    const uint16_t h = f32_to_f16(d(rng));
    if (type == GgmlType::IQ1_M) {
      for (int k = 0; k < 4; ++k) bytes[at + 49 + 2 * k] = uint8_t((bytes[at + 49 + 2 * k] & 0x0F) | (((h >> (4 * k)) & 0xF) << 4));
    } else {
      bytes[at] = uint8_t(h & 0xFF);
      bytes[at + 1] = uint8_t(h >> 8);
    }
  }
}

// Quantizes random weights (lattice i-quants: random blocks), returns the bytes and the
// dequantized floats a kernel must match.
inline std::vector<uint8_t> make_weights(GgmlType type, uint32_t rows, uint32_t cols, std::vector<float>& dequant,
                                         uint32_t seed) {
  const auto src = random_floats(size_t(rows) * cols, seed);
  const uint64_t rb = ggml_row_bytes(type, cols);
  std::vector<uint8_t> bytes(rb * rows);
  dequant.resize(size_t(rows) * cols);
  std::mt19937 rng(seed);
  if (is_lattice_iquant(type)) randomize_lattice_blocks(type, bytes.data(), bytes.size(), rng);
  for (uint32_t r = 0; r < rows; ++r) {
    if (!is_lattice_iquant(type)) quantize_row(type, src.data() + size_t(r) * cols, bytes.data() + r * rb, cols);
    dequantize_row(type, bytes.data() + r * rb, dequant.data() + size_t(r) * cols, cols);
  }
  return bytes;
}

inline GpuBuffer upload_floats(GpuDevice& dev, const std::vector<float>& v, const char* what) {
  GpuBuffer b = dev.allocate(v.size() * 4, what);
  dev.upload(b.span(), v.data(), v.size() * 4);
  return b;
}

inline std::vector<float> download_floats(GpuDevice& dev, const GpuBuffer& b, size_t n) {
  std::vector<float> v(n);
  dev.download(b.span(), v.data(), n * 4);
  return v;
}

// max |a-b| / max(|b|_inf, floor): a relative error against the reference's scale.
inline double relative_error(const std::vector<float>& got, const std::vector<float>& want, double floor = 1e-6) {
  double err = 0, scale = floor;
  for (size_t i = 0; i < want.size(); ++i) {
    err = std::max(err, double(std::abs(got[i] - want[i])));
    scale = std::max(scale, double(std::abs(want[i])));
  }
  return err / scale;
}

}  // namespace tandem::gpu::testing

#define TANDEM_GPU_OR_SKIP(dev)                                                               \
  auto& dev##_slot = ::tandem::gpu::testing::test_device_slot();                              \
  if (!dev##_slot.device) GTEST_SKIP() << "no Vulkan device: " << dev##_slot.why;              \
  [[maybe_unused]] ::tandem::gpu::GpuDevice& dev = *dev##_slot.device
