// A compute pipeline built from embedded SPIR-V: its descriptor set layout (N storage buffers at
// bindings 0..N-1), push-constant range, and specialization constants (constant_id 0..K-1).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/quant/ggml_type.h"

#include "runtime/gpu/vulkan_api.h"

namespace tandem::gpu {

struct PipelineSpec {
  std::string shader;              // name in the SPIR-V registry
  uint32_t bindings = 0;           // storage buffers, bindings 0..bindings-1 of set 0
  uint32_t push_constant_bytes = 0;
  std::vector<uint32_t> constants;  // specialization constants by constant_id
  // A lattice i-quant (codebooks.h): its codebook is bound as one more binding, number
  // `bindings`, by CommandSequence::dispatch. F32: none.
  GgmlType codebook = GgmlType::F32;

  bool has_codebook_binding() const;
  uint32_t layout_bindings() const { return bindings + (has_codebook_binding() ? 1u : 0u); }

  std::string key() const;
};

struct ComputePipeline {
  PipelineSpec spec;
  VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
  VkPipelineLayout layout = VK_NULL_HANDLE;
  VkPipeline pipeline = VK_NULL_HANDLE;
};

// Throws Error naming the shader when it is unknown or the driver rejects it.
ComputePipeline create_compute_pipeline(VkDevice device, VkPipelineCache cache, const PipelineSpec& spec);
void destroy_compute_pipeline(VkDevice device, ComputePipeline& p);

}  // namespace tandem::gpu
