// libFuzzer entry for the imatrix reader (tools/modelgen/importance_matrix.h): any byte string
// either yields per-column importance that is finite and >= 0 for every entry, or raises
// tandem::Error.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "runtime/core/error.h"
#include "runtime/gguf/gguf_file.h"
#include "tools/modelgen/importance_matrix.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto f = tandem::GgufFile::parse(data, size, "fuzz");
    const auto im = tandem::modelgen::ImportanceMatrix::from_gguf(*f, "fuzz");
    for (const auto& name : im.names()) {
      const tandem::GgufTensor& t = f->tensor(name + ".in_sum2");
      const int64_t matrices = t.shape.size() == 2 ? t.shape[1] : 1;
      int64_t columns = 0;  // the harness's own arithmetic stays defined on hostile shapes
      if (t.shape.empty() || t.shape[0] <= 0 || matrices <= 0 ||
          __builtin_mul_overflow(t.shape[0], matrices, &columns))
        continue;
      for (const int64_t m : {matrices, int64_t(1), int64_t(3)}) {
        try {
          for (const float v : im.for_tensor(name, columns / m, m))
            if (!std::isfinite(v) || v < 0.0f) std::abort();
        } catch (const tandem::Error&) {
        }
      }
    }
  } catch (const tandem::Error&) {
  }
  return 0;
}
