#include "placement/model_layout.h"

#include "runtime/gguf/gguf_file.h"

namespace tandem::placement {

ModelLayout model_layout_from_gguf(const GgufFile& f) {
  const std::string arch = f.architecture();
  ModelLayout m;
  m.n_layer = int64_t(f.get_uint(arch + ".block_count"));
  m.n_expert = int64_t(f.get_uint_opt(arch + ".expert_count").value_or(0));
  m.kv_lora_rank = int64_t(f.get_uint_opt(arch + ".attention.kv_lora_rank").value_or(0));
  m.qk_rope = int64_t(f.get_uint_opt(arch + ".rope.dimension_count").value_or(0));
  for (const GgufTensor& t : f.tensors()) m.tensors.push_back({t.name, t.nbytes});
  return m;
}

}  // namespace tandem::placement
