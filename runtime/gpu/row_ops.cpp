#include "runtime/gpu/row_ops.h"

#include <string>

#include "runtime/core/error.h"
#include "runtime/gpu/float_binding.h"

namespace tandem::gpu {

namespace {
constexpr uint32_t kWorkgroup = 128;  // softmax

// rms_norm / add_rms_norm: 512 threads (a power of two within the device's limit), so a decode
// row of 2048-7168 floats is 4-14 loads per thread, all in flight at once.
struct NormKernel {
  std::string shader;
  uint32_t workgroup;
};
NormKernel norm_kernel(const GpuDeviceInfo& info, const char* base, bool allow_subgroup) {
  uint32_t wg = 512;
  while (wg > 64 && wg > info.max_workgroup_invocations) wg /= 2;
  const bool subgroup = allow_subgroup && info.subgroup_in_compute && info.subgroup_arithmetic &&
                        info.subgroup_size >= 1 && info.subgroup_size <= wg;
  return {std::string(base) + (subgroup ? "_subgroup" : ""), wg};
}

void check_rows(const GpuSpan& s, uint32_t rows, uint32_t stride, uint32_t n, const char* what) {
  const uint64_t need = (uint64_t(rows - 1) * stride + n) * 4;
  if (s.size < need) fail("GPU ", what, ": span of ", s.size, " bytes, need ", need);
}
}  // namespace

void record_rms_norm(CommandSequence& seq, const GpuSpan& x, const GpuSpan& weight, const GpuSpan& y,
                     const RowShape& shape, float eps) {
  if (shape.n == 0 || shape.rows == 0) return;
  const uint32_t xs = shape.in_stride ? shape.in_stride : shape.n;
  const uint32_t ys = shape.out_stride ? shape.out_stride : shape.n;
  check_rows(x, shape.rows, xs, shape.n, "rms_norm input");
  check_rows(y, shape.rows, ys, shape.n, "rms_norm output");
  check_rows(weight, 1, 0, shape.n, "rms_norm weight");
  auto& dev = seq.device();
  const auto& info = dev.info();
  const auto xb = bind_words(info, x, "rms_norm x"), wb = bind_words(info, weight, "rms_norm weight"),
             yb = bind_words(info, y, "rms_norm y");
  struct { uint32_t n, x0, w0, y0, xs, ys; float eps; } p{shape.n, xb.first, wb.first, yb.first, xs, ys, eps};
  const auto k = norm_kernel(info, "rms_norm", shape.allow_subgroup);
  seq.dispatch(dev.pipeline({k.shader, 3, sizeof p, {k.workgroup}}), {xb.binding, wb.binding, yb.binding}, p,
               shape.rows, 1, 1, "rms_norm");
}

void record_add_rms_norm(CommandSequence& seq, const GpuSpan& x, const GpuSpan& a, const GpuSpan& weight,
                         const GpuSpan& y, const RowShape& shape, float eps) {
  if (shape.n == 0 || shape.rows == 0) return;
  const uint32_t xs = shape.in_stride ? shape.in_stride : shape.n;
  const uint32_t ys = shape.out_stride ? shape.out_stride : shape.n;
  check_rows(x, shape.rows, xs, shape.n, "add_rms_norm residual");
  check_rows(a, shape.rows, xs, shape.n, "add_rms_norm addend");
  check_rows(y, shape.rows, ys, shape.n, "add_rms_norm output");
  check_rows(weight, 1, 0, shape.n, "add_rms_norm weight");
  if (y.buffer == x.buffer || y.buffer == a.buffer) {
    const auto overlaps = [](const GpuSpan& u, const GpuSpan& v) {
      return u.buffer == v.buffer && u.offset < v.offset + v.size && v.offset < u.offset + u.size;
    };
    if (overlaps(y, x) || overlaps(y, a)) fail("GPU add_rms_norm: the output overlaps an input");
  }
  auto& dev = seq.device();
  const auto& info = dev.info();
  const auto xb = bind_words(info, x, "add_rms_norm x"), ab = bind_words(info, a, "add_rms_norm a"),
             wb = bind_words(info, weight, "add_rms_norm weight"), yb = bind_words(info, y, "add_rms_norm y");
  struct { uint32_t n, x0, a0, w0, y0, xs, as, ys; float eps; } p{shape.n, xb.first, ab.first, wb.first, yb.first,
                                                                   xs, xs, ys, eps};
  const auto k = norm_kernel(info, "add_rms_norm", shape.allow_subgroup);
  seq.dispatch(dev.pipeline({k.shader, 4, sizeof p, {k.workgroup}}),
               {xb.binding, ab.binding, wb.binding, yb.binding}, p, shape.rows, 1, 1, "add_rms_norm");
}

void record_softmax(CommandSequence& seq, const GpuSpan& x, const GpuSpan& y, const RowShape& shape, float scale) {
  if (shape.n == 0 || shape.rows == 0) return;
  const uint32_t xs = shape.in_stride ? shape.in_stride : shape.n;
  const uint32_t ys = shape.out_stride ? shape.out_stride : shape.n;
  check_rows(x, shape.rows, xs, shape.n, "softmax input");
  check_rows(y, shape.rows, ys, shape.n, "softmax output");
  auto& dev = seq.device();
  const auto xb = bind_words(dev.info(), x, "softmax x"), yb = bind_words(dev.info(), y, "softmax y");
  struct { uint32_t n, x0, y0, xs, ys; float scale; } p{shape.n, xb.first, yb.first, xs, ys, scale};
  seq.dispatch(dev.pipeline({"softmax", 2, sizeof p, {kWorkgroup}}), {xb.binding, yb.binding}, p, shape.rows, 1, 1,
               "softmax");
}

}  // namespace tandem::gpu
