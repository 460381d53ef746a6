#include "runtime/gpu/command_sequence.h"

#include "runtime/core/error.h"

namespace tandem::gpu {

namespace {
constexpr uint32_t kSetsPerPool = 256;
constexpr uint32_t kMaxTimedDispatches = 2048;
}  // namespace

CommandSequence::CommandSequence(GpuDevice& device, bool profile) : device_(device) {
  const auto& api = vk();
  VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  ai.commandPool = device.command_pool();
  ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  ai.commandBufferCount = 1;
  check_vk(api.vkAllocateCommandBuffers(device.handle(), &ai, &cb_), "vkAllocateCommandBuffers");
  VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  check_vk(api.vkBeginCommandBuffer(cb_, &bi), "vkBeginCommandBuffer");
  VkFenceCreateInfo fi{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  check_vk(api.vkCreateFence(device.handle(), &fi, nullptr, &fence_), "vkCreateFence");
  if (profile && device.info().timestamps) {
    query_capacity_ = 2 * kMaxTimedDispatches;
    VkQueryPoolCreateInfo qi{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
    qi.queryType = VK_QUERY_TYPE_TIMESTAMP;
    qi.queryCount = query_capacity_;
    check_vk(api.vkCreateQueryPool(device.handle(), &qi, nullptr, &queries_), "vkCreateQueryPool");
    api.vkCmdResetQueryPool(cb_, queries_, 0, query_capacity_);
  }
}

CommandSequence::~CommandSequence() {
  const auto& api = vk();
  // The command buffer may not be freed while the GPU still runs it.
  if (in_flight_) api.vkWaitForFences(device_.handle(), 1, &fence_, VK_TRUE, 600ull * 1000 * 1000 * 1000);
  if (fence_) api.vkDestroyFence(device_.handle(), fence_, nullptr);
  if (cb_) api.vkFreeCommandBuffers(device_.handle(), device_.command_pool(), 1, &cb_);
  for (auto p : pools_) api.vkDestroyDescriptorPool(device_.handle(), p, nullptr);
  if (queries_) api.vkDestroyQueryPool(device_.handle(), queries_, nullptr);
}

void CommandSequence::check_recording(const char* what) const {
  if (!recording_) fail("GPU command sequence: ", what, " after finish(): record a new sequence instead");
}

VkDescriptorSet CommandSequence::allocate_set(VkDescriptorSetLayout layout) {
  const auto& api = vk();
  VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
  ai.descriptorSetCount = 1;
  ai.pSetLayouts = &layout;
  VkDescriptorSet set = VK_NULL_HANDLE;
  if (!pools_.empty()) {
    ai.descriptorPool = pools_.back();
    const VkResult r = api.vkAllocateDescriptorSets(device_.handle(), &ai, &set);
    if (r == VK_SUCCESS) return set;
    if (r != VK_ERROR_OUT_OF_POOL_MEMORY && r != VK_ERROR_FRAGMENTED_POOL) check_vk(r, "vkAllocateDescriptorSets");
  }
  VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, kSetsPerPool * 8};
  VkDescriptorPoolCreateInfo pi{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
  pi.maxSets = kSetsPerPool;
  pi.poolSizeCount = 1;
  pi.pPoolSizes = &size;
  VkDescriptorPool pool = VK_NULL_HANDLE;
  check_vk(api.vkCreateDescriptorPool(device_.handle(), &pi, nullptr, &pool), "vkCreateDescriptorPool");
  pools_.push_back(pool);
  ai.descriptorPool = pool;
  check_vk(api.vkAllocateDescriptorSets(device_.handle(), &ai, &set), "vkAllocateDescriptorSets");
  return set;
}

void CommandSequence::barrier() {
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                     VK_ACCESS_TRANSFER_WRITE_BIT;
  const VkPipelineStageFlags stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
  vk().vkCmdPipelineBarrier(cb_, stages, stages, 0, 1, &mb, 0, nullptr, 0, nullptr);
}

void CommandSequence::dispatch(const ComputePipeline& p, std::initializer_list<GpuSpan> bindings, const void* push,
                               uint32_t push_bytes, uint32_t gx, uint32_t gy, uint32_t gz, const std::string& label) {
  check_recording("dispatch");
  const auto& api = vk();
  const auto& spec = p.spec;
  if (bindings.size() != spec.bindings)
    fail("GPU kernel ", spec.shader, ": ", bindings.size(), " buffers given, ", spec.bindings, " expected");
  if (push_bytes != spec.push_constant_bytes)
    fail("GPU kernel ", spec.shader, ": ", push_bytes, " push-constant bytes given, ", spec.push_constant_bytes,
         " expected");
  if (gx == 0 || gy == 0 || gz == 0) return;  // nothing to do
  const auto& info = device_.info();
  std::vector<VkDescriptorBufferInfo> infos;
  infos.reserve(bindings.size());
  for (const auto& b : bindings) {
    if (!b.buffer) fail("GPU kernel ", spec.shader, ": binding ", infos.size(), " has no buffer");
    if (b.size > info.max_storage_buffer_range)
      fail("GPU kernel ", spec.shader, ": binding ", infos.size(), " spans ", b.size,
           " bytes, over the device's maxStorageBufferRange ", info.max_storage_buffer_range);
    if (b.offset % std::max<uint64_t>(1, info.min_storage_buffer_offset_alignment))
      fail("GPU kernel ", spec.shader, ": binding ", infos.size(), " offset ", b.offset, " is not aligned to ",
           info.min_storage_buffer_offset_alignment);
    infos.push_back({b.buffer, b.offset, std::max<uint64_t>(b.size, 4)});
  }
  if (spec.has_codebook_binding()) {  // the lattice i-quant's grid, after the kernel's own bindings
    const GpuSpan cb = device_.codebook(spec.codebook);
    infos.push_back({cb.buffer, cb.offset, cb.size});
  }
  VkDescriptorSet set = allocate_set(p.set_layout);
  std::vector<VkWriteDescriptorSet> writes(infos.size());
  for (uint32_t i = 0; i < infos.size(); ++i) {
    writes[i] = {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
    writes[i].dstSet = set;
    writes[i].dstBinding = i;
    writes[i].descriptorCount = 1;
    writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    writes[i].pBufferInfo = &infos[i];
  }
  api.vkUpdateDescriptorSets(device_.handle(), uint32_t(writes.size()), writes.data(), 0, nullptr);

  const bool timed = queries_ && labels_.size() < kMaxTimedDispatches;
  if (timed) api.vkCmdWriteTimestamp(cb_, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, queries_, uint32_t(2 * labels_.size()));
  api.vkCmdBindPipeline(cb_, VK_PIPELINE_BIND_POINT_COMPUTE, p.pipeline);
  api.vkCmdBindDescriptorSets(cb_, VK_PIPELINE_BIND_POINT_COMPUTE, p.layout, 0, 1, &set, 0, nullptr);
  if (push_bytes) api.vkCmdPushConstants(cb_, p.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes, push);
  api.vkCmdDispatch(cb_, gx, gy, gz);
  if (timed) {
    api.vkCmdWriteTimestamp(cb_, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, queries_, uint32_t(2 * labels_.size() + 1));
    labels_.push_back(label.empty() ? spec.shader : label);
  }
  barrier();
  ++dispatches_;
}

void CommandSequence::copy(const GpuSpan& src, const GpuSpan& dst) {
  check_recording("copy");
  if (src.size != dst.size) fail("GPU copy: source has ", src.size, " bytes, destination ", dst.size);
  VkBufferCopy c{src.offset, dst.offset, src.size};
  vk().vkCmdCopyBuffer(cb_, src.buffer, dst.buffer, 1, &c);
  barrier();
}

void CommandSequence::fill_zero(const GpuSpan& dst) {
  check_recording("fill_zero");
  if (dst.size % 4) fail("GPU fill_zero of ", dst.size, " bytes: size must be a multiple of 4");
  vk().vkCmdFillBuffer(cb_, dst.buffer, dst.offset, dst.size, 0);
  barrier();
}

void CommandSequence::finish() {
  if (!recording_) return;
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
  vk().vkCmdPipelineBarrier(cb_, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                            VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, nullptr, 0, nullptr);
  check_vk(vk().vkEndCommandBuffer(cb_), "vkEndCommandBuffer");
  recording_ = false;
}

void CommandSequence::run() {
  submit();
  wait();
}

void CommandSequence::submit() {
  finish();
  if (in_flight_) fail("GPU command sequence: submitted again before wait() (one submission at a time)");
  device_.submit(cb_, fence_);
  in_flight_ = true;
}

void CommandSequence::wait() {
  if (!in_flight_) return;
  const auto& api = vk();
  // Ten minutes: a CPU implementation (lavapipe) is slow, but a hang must end in an error.
  const VkResult r = api.vkWaitForFences(device_.handle(), 1, &fence_, VK_TRUE, 600ull * 1000 * 1000 * 1000);
  if (r == VK_TIMEOUT)
    fail("GPU ", device_.info().index, " (", device_.info().name, "): command sequence did not finish in 10 minutes");
  check_vk(r, "waiting for the GPU");
  check_vk(api.vkResetFences(device_.handle(), 1, &fence_), "vkResetFences");
  in_flight_ = false;
  ran_ = true;
}

std::vector<KernelTiming> CommandSequence::timings() const {
  std::vector<KernelTiming> out;
  if (!queries_ || !ran_ || in_flight_ || labels_.empty()) return out;
  std::vector<uint64_t> ticks(2 * labels_.size());
  check_vk(vk().vkGetQueryPoolResults(device_.handle(), queries_, 0, uint32_t(ticks.size()),
                                      ticks.size() * sizeof(uint64_t), ticks.data(), sizeof(uint64_t),
                                      VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT),
           "vkGetQueryPoolResults");
  const double ns = device_.info().timestamp_period_ns;
  for (size_t i = 0; i < labels_.size(); ++i)
    out.push_back({labels_[i], double(ticks[2 * i + 1] - ticks[2 * i]) * ns * 1e-6});
  return out;
}

GpuSpan CommandSequence::scratch(uint64_t bytes, const char* what) {
  scratch_.push_back(device_.allocate(bytes, what));
  return scratch_.back().span();
}

}  // namespace tandem::gpu
