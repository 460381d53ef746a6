// libFuzzer entry for the GGUF reader: any byte string must either parse into views that lie
// inside the input, or raise tandem::Error. Anything else (crash, sanitizer report, another
// exception type) is a bug.
#include <cstddef>
#include <cstdint>

#include "runtime/core/error.h"
#include "runtime/gguf/gguf_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto f = tandem::GgufFile::parse(data, size, "fuzz");
    size_t sink = 0;
    for (const auto& [key, value] : f->metadata()) sink += tandem::gguf_value_summary(value).size();
    for (const auto& t : f->tensors()) {
      // Touch the first and last byte: ASan reports a view that escapes the input.
      if (t.nbytes > 0) sink += size_t(t.data[0]) + size_t(t.data[t.nbytes - 1]);
      sink += size_t(t.elements() + t.rows()) + size_t(t.row_bytes());
    }
    if (auto arch = f->get_string_opt("general.architecture")) sink += arch->size();
    if (f->has("tokenizer.ggml.tokens")) sink += f->get_string_array("tokenizer.ggml.tokens").size();
    volatile size_t keep = sink;
    (void)keep;
  } catch (const tandem::Error&) {
  }
  return 0;
}
