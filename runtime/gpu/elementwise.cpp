#include "runtime/gpu/elementwise.h"

#include <algorithm>

#include "runtime/core/error.h"
#include "runtime/gpu/float_binding.h"

namespace tandem::gpu {

namespace {
constexpr uint32_t kLocal = 256;

void need(const GpuSpan& s, uint64_t floats, const char* what) {
  if (s.size < floats * 4) fail("GPU ", what, ": span of ", s.size, " bytes, need ", floats * 4);
}

// Flat 1-D grids beyond 65535 workgroups spill into y.
void grid(uint32_t n, uint32_t& gx, uint32_t& gy) {
  const uint32_t groups = (n + kLocal - 1) / kLocal;
  gx = std::min<uint32_t>(std::max<uint32_t>(groups, 1), 65535);
  gy = (groups + gx - 1) / gx;
}
}  // namespace

void record_add(CommandSequence& seq, const GpuSpan& a, const GpuSpan& b, const GpuSpan& out, uint32_t n) {
  if (n == 0) return;
  need(a, n, "add input a");
  need(b, n, "add input b");
  need(out, n, "add output");
  auto& dev = seq.device();
  const auto& info = dev.info();
  const auto ab = bind_words(info, a, "add a"), bb = bind_words(info, b, "add b"), ob = bind_words(info, out, "add out");
  struct { uint32_t n, a0, b0, o0; } p{n, ab.first, bb.first, ob.first};
  uint32_t gx, gy;
  grid(n, gx, gy);
  seq.dispatch(dev.pipeline({"add", 3, sizeof p, {}}), {ab.binding, bb.binding, ob.binding}, p, gx, gy, 1, "add");
}

void record_scale(CommandSequence& seq, const GpuSpan& a, float s, const GpuSpan& out, uint32_t n) {
  if (n == 0) return;
  need(a, n, "scale input");
  need(out, n, "scale output");
  auto& dev = seq.device();
  const auto ab = bind_words(dev.info(), a, "scale a"), ob = bind_words(dev.info(), out, "scale out");
  struct { uint32_t n, a0, o0; float s; } p{n, ab.first, ob.first, s};
  uint32_t gx, gy;
  grid(n, gx, gy);
  seq.dispatch(dev.pipeline({"scale", 2, sizeof p, {}}), {ab.binding, ob.binding}, p, gx, gy, 1, "scale");
}

void record_silu_mul(CommandSequence& seq, const GpuSpan& gate, const GpuSpan& up, const GpuSpan& out,
                     const SiluMulShape& shape) {
  if (shape.n == 0 || shape.rows == 0) return;
  const uint32_t gs = shape.gate_stride ? shape.gate_stride : shape.n;
  const uint32_t us = shape.up_stride ? shape.up_stride : shape.n;
  const uint32_t os = shape.out_stride ? shape.out_stride : shape.n;
  need(gate, uint64_t(shape.rows - 1) * gs + shape.n, "silu_mul gate");
  need(up, uint64_t(shape.rows - 1) * us + shape.n, "silu_mul up");
  need(out, uint64_t(shape.rows - 1) * os + shape.n, "silu_mul output");
  auto& dev = seq.device();
  const auto& info = dev.info();
  const auto gb = bind_words(info, gate, "silu_mul gate"), ub = bind_words(info, up, "silu_mul up"),
             ob = bind_words(info, out, "silu_mul out");
  struct { uint32_t n, rows, g0, u0, o0, gs, us, os; } p{shape.n, shape.rows, gb.first, ub.first, ob.first, gs, us, os};
  seq.dispatch(dev.pipeline({"silu_mul", 3, sizeof p, {}}), {gb.binding, ub.binding, ob.binding}, p,
               (shape.n + kLocal - 1) / kLocal, shape.rows, 1, "silu_mul");
}

}  // namespace tandem::gpu
