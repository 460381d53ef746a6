#include "runtime/model/weight_matrix.h"

#include <sstream>

#include "runtime/core/error.h"
#include "runtime/gguf/gguf_file.h"

namespace tandem {
namespace {

std::string shape_text(const std::vector<int64_t>& s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? " x " : "") << s[i];
  o << "]";
  return o.str();
}

}  // namespace

WeightMatrix WeightMatrix::slice(int64_t i, int64_t count) const {
  WeightMatrix m = *this;
  m.rows = rows / count;
  m.data = data + uint64_t(i) * uint64_t(m.rows) * row_bytes;
  return m;
}

WeightMatrix optional_weight_matrix(const GgufFile& f, const std::string& name, int64_t cols,
                                    int64_t rows, int64_t depth) {
  const GgufTensor* t = f.find_tensor(name);
  if (!t) return {};
  std::vector<int64_t> want = {cols, rows};
  if (depth > 0) want.push_back(depth);
  if (t->shape != want)
    fail(f.path(), ": tensor '", name, "' has shape ", shape_text(t->shape), ", expected ", shape_text(want));
  const auto& info = ggml_type_info(t->type);
  if (!info.can_compute)
    fail(f.path(), ": tensor '", name, "' uses type ", info.name, ", which tandem cannot compute yet");
  WeightMatrix m;
  m.name = name;
  m.type = t->type;
  m.cols = cols;
  m.rows = rows * (depth > 0 ? depth : 1);
  m.row_bytes = ggml_row_bytes(t->type, uint64_t(cols));
  m.data = t->data;
  return m;
}

WeightMatrix weight_matrix(const GgufFile& f, const std::string& name, int64_t cols, int64_t rows,
                           int64_t depth) {
  if (!f.find_tensor(name)) fail(f.path(), ": tensor '", name, "' is missing");
  return optional_weight_matrix(f, name, cols, rows, depth);
}

const float* optional_weight_vector(const GgufFile& f, const std::string& name, int64_t n) {
  const GgufTensor* t = f.find_tensor(name);
  if (!t) return nullptr;
  if (t->type != GgmlType::F32 || t->shape.size() != 1 || t->shape[0] != n)
    fail(f.path(), ": tensor '", name, "' must be f32 [", n, "], found ",
         ggml_type_name(t->type), " ", shape_text(t->shape));
  if (reinterpret_cast<uintptr_t>(t->data) % alignof(float) != 0)
    fail(f.path(), ": tensor '", name, "' data is misaligned");
  return reinterpret_cast<const float*>(t->data);
}

const float* weight_vector(const GgufFile& f, const std::string& name, int64_t n) {
  if (!f.find_tensor(name)) fail(f.path(), ": tensor '", name, "' is missing");
  return optional_weight_vector(f, name, n);
}

}  // namespace tandem
