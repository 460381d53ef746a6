#include "runtime/gpu/compute_pipeline.h"

#include "runtime/core/error.h"
#include "runtime/gpu/codebooks.h"
#include "runtime/gpu/spirv_registry.h"

namespace tandem::gpu {

std::string PipelineSpec::key() const {
  std::string k = shader + "/" + std::to_string(bindings) + "/" + std::to_string(push_constant_bytes);
  for (uint32_t c : constants) k += "/" + std::to_string(c);
  if (has_codebook_binding()) k += "/codebook:" + std::string(ggml_type_name(codebook));
  return k;
}

bool PipelineSpec::has_codebook_binding() const { return has_codebook(codebook); }

ComputePipeline create_compute_pipeline(VkDevice device, VkPipelineCache cache, const PipelineSpec& spec) {
  const SpirvModule* mod = find_spirv(spec.shader);
  if (!mod) fail("GPU shader ", spec.shader, " is not built into this binary");
  const auto& api = vk();
  ComputePipeline p;
  p.spec = spec;

  std::vector<VkDescriptorSetLayoutBinding> binds(spec.layout_bindings());
  for (uint32_t i = 0; i < spec.layout_bindings(); ++i)
    binds[i] = {i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, nullptr};
  VkDescriptorSetLayoutCreateInfo dsl{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
  dsl.bindingCount = spec.layout_bindings();
  dsl.pBindings = binds.data();
  check_vk(api.vkCreateDescriptorSetLayout(device, &dsl, nullptr, &p.set_layout), "vkCreateDescriptorSetLayout");

  VkPushConstantRange pcr{VK_SHADER_STAGE_COMPUTE_BIT, 0, spec.push_constant_bytes};
  VkPipelineLayoutCreateInfo pl{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
  pl.setLayoutCount = 1;
  pl.pSetLayouts = &p.set_layout;
  pl.pushConstantRangeCount = spec.push_constant_bytes ? 1 : 0;
  pl.pPushConstantRanges = &pcr;
  check_vk(api.vkCreatePipelineLayout(device, &pl, nullptr, &p.layout), "vkCreatePipelineLayout");

  VkShaderModuleCreateInfo smi{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
  smi.codeSize = mod->word_count * 4;
  smi.pCode = mod->words;
  VkShaderModule sm = VK_NULL_HANDLE;
  check_vk(api.vkCreateShaderModule(device, &smi, nullptr, &sm), ("vkCreateShaderModule " + spec.shader).c_str());

  std::vector<VkSpecializationMapEntry> entries(spec.constants.size());
  for (uint32_t i = 0; i < entries.size(); ++i) entries[i] = {i, i * 4, 4};
  VkSpecializationInfo si{uint32_t(entries.size()), entries.data(), spec.constants.size() * 4, spec.constants.data()};

  VkComputePipelineCreateInfo ci{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
  ci.stage = {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO};
  ci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
  ci.stage.module = sm;
  ci.stage.pName = "main";
  ci.stage.pSpecializationInfo = entries.empty() ? nullptr : &si;
  ci.layout = p.layout;
  const VkResult r = api.vkCreateComputePipelines(device, cache, 1, &ci, nullptr, &p.pipeline);
  api.vkDestroyShaderModule(device, sm, nullptr);
  if (r != VK_SUCCESS) {
    destroy_compute_pipeline(device, p);
    fail("GPU pipeline ", spec.key(), ": vkCreateComputePipelines: ", vk_result_name(r));
  }
  return p;
}

void destroy_compute_pipeline(VkDevice device, ComputePipeline& p) {
  if (p.pipeline) vk().vkDestroyPipeline(device, p.pipeline, nullptr);
  if (p.layout) vk().vkDestroyPipelineLayout(device, p.layout, nullptr);
  if (p.set_layout) vk().vkDestroyDescriptorSetLayout(device, p.set_layout, nullptr);
  p = {};
}

}  // namespace tandem::gpu
