#include "runtime/quant/row_geometry.h"

#include "runtime/core/error.h"

namespace tandem {

int64_t checked_block_count(std::string_view what, GgmlType type, int64_t n) {
  const auto& info = ggml_type_info(type);
  if (n < 0) fail(what, ": negative element count ", n, " for type ", info.name);
  if (n % info.block_size != 0)
    fail(what, ": ", n, " elements of type ", info.name, " is not a multiple of its block size ",
         info.block_size);
  return n / info.block_size;
}

void fail_unsupported(std::string_view what, GgmlType type) {
  const auto info = ggml_type_info(uint32_t(type));
  if (!info) fail(what, ": unknown ggml type id ", uint32_t(type));
  fail(what, ": type ", info->name, " (id ", uint32_t(type), ") is not supported");
}

}  // namespace tandem
