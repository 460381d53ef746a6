// A 2-D view of weights in a GGUF (a whole tensor, one expert of a 3-D tensor, or one head):
// `rows` rows of `cols` elements of `type`, rows contiguous. Points into the mmapped file.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/quant/ggml_type.h"

namespace tandem {

class GgufFile;
struct GgufTensor;

struct WeightMatrix {
  std::string name;
  GgmlType type = GgmlType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  uint64_t row_bytes = 0;
  const uint8_t* data = nullptr;

  bool empty() const { return data == nullptr; }
  const uint8_t* row(int64_t r) const { return data + uint64_t(r) * row_bytes; }
  // Matrix i of a 3-D tensor viewed as `count` stacked matrices of rows x cols.
  WeightMatrix slice(int64_t i, int64_t count) const;
};

// The tensor `name` checked to be [cols x rows] (ggml order) or, with depth > 0,
// [cols x rows x depth] (then the view has rows*depth rows; slice() picks one).
// Throws Error naming the tensor and the expected and actual shapes.
WeightMatrix weight_matrix(const GgufFile& f, const std::string& name, int64_t cols, int64_t rows,
                           int64_t depth = 0);
// Optional variant: an empty view when the tensor is absent (shape still checked if present).
WeightMatrix optional_weight_matrix(const GgufFile& f, const std::string& name, int64_t cols,
                                    int64_t rows, int64_t depth = 0);
// A 1-D f32 vector (norm weights, biases) of length n.
const float* weight_vector(const GgufFile& f, const std::string& name, int64_t n);
const float* optional_weight_vector(const GgufFile& f, const std::string& name, int64_t n);

}  // namespace tandem
