// Element type of the GPU's latent KV cache. Kept apart from latent_kv_cache.h (no Vulkan types) so
// option structs and command-line parsing can name it.
#pragma once

#include <string_view>

#include "runtime/core/error.h"

namespace tandem::gpu {

// F16: 10-bit mantissa, range +-65504. BF16: 8-bit mantissa (bit 7 implicit), F32's range.
enum class KvCacheType { F16, BF16 };

inline const char* kv_cache_type_name(KvCacheType t) { return t == KvCacheType::BF16 ? "bf16" : "f16"; }

inline KvCacheType parse_kv_cache_type(std::string_view name) {
  if (name == "f16") return KvCacheType::F16;
  if (name == "bf16") return KvCacheType::BF16;
  fail("KV cache type '", name, "': expected f16 or bf16");
}

}  // namespace tandem::gpu
