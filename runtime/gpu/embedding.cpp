#include "runtime/gpu/embedding.h"

#include <string>

#include "runtime/core/error.h"
#include "runtime/gpu/float_binding.h"
#include "runtime/gpu/matmul.h"

namespace tandem::gpu {

void record_embedding(CommandSequence& seq, const GpuWeight& table, const GpuSpan& ids, const GpuSpan& out,
                      uint32_t n_tokens, uint32_t out_stride) {
  if (n_tokens == 0) return;
  if (table.cols % ggml_type_info(table.type).block_size)
    fail("GPU embedding: row of ", table.cols, " elements is not a multiple of the ", ggml_type_name(table.type),
         " block size");
  const uint32_t os = out_stride ? out_stride : table.cols;
  if (ids.size < uint64_t(n_tokens) * 4) fail("GPU embedding: ", n_tokens, " tokens but only ", ids.size / 4, " ids");
  if (out.size < (uint64_t(n_tokens - 1) * os + table.cols) * 4) fail("GPU embedding: output span too small");
  auto& dev = seq.device();
  const auto& info = dev.info();
  const auto ib = bind_words(info, ids, "embedding ids"), ob = bind_words(info, out, "embedding output");
  const std::string shader = std::string("embedding_") + gpu_weight_type_suffix(table.type);
  struct { uint32_t cols, row_bytes, w_byte0, row0, rows, ids0, o0, o_stride; } p{};
  const auto& pipe = dev.pipeline({shader, 3, sizeof p, {}, table.type});
  for (const auto& r : split_rows(table, info.max_storage_buffer_range, info.min_storage_buffer_offset_alignment)) {
    p = {table.cols, uint32_t(table.row_bytes()), r.byte0, r.row0, r.rows, ib.first, ob.first, os};
    seq.dispatch(pipe, {r.binding, ib.binding, ob.binding}, p, n_tokens, 1, 1, shader);
  }
}

}  // namespace tandem::gpu
