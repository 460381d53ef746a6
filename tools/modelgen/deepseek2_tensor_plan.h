// Which tensors a deepseek2 GGUF holds, named and shaped exactly as llama.cpp writes them, with
// how each is to be initialised.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/gguf/gguf_encoding.h"
#include "tools/modelgen/deepseek2_options.h"

namespace tandem::modelgen {

enum class WeightInit {
  Normal,  // zero-mean, standard deviation `scale`
  NearOne, // 1 + scale * normal: RMS-norm weights
};

struct PlannedTensor {
  GgufTensorInfo info;
  WeightInit init = WeightInit::Normal;
  float scale = 1.0f;
};

// The type a tensor with rows of row_length elements is stored in when `wanted` is asked for.
GgmlType storage_type(GgmlType wanted, int64_t row_length);

// Global tensors first (output, output_norm, token_embd, in name order), then each block's
// tensors in name order: the order of llama.cpp's files.
std::vector<PlannedTensor> deepseek2_tensor_plan(const Deepseek2Options& o, int64_t vocab);

}  // namespace tandem::modelgen
