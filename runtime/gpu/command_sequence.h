// A command buffer recorded once and replayed many times (a decode step is recorded once; the
// host rewrites small host-visible inputs such as token ids and positions between replays).
// Every dispatch is followed by a compute barrier, so kernels run in recording order; the barrier
// also orders a sequence after everything submitted before it on the device's one queue, so
// sequences submitted back to back run one after the other without a host wait in between.
// With profiling on, each dispatch is bracketed by timestamps (see timings()).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "runtime/gpu/gpu_device.h"

namespace tandem::gpu {

struct KernelTiming {
  std::string label;
  double milliseconds = 0;
};

class CommandSequence {
 public:
  explicit CommandSequence(GpuDevice& device, bool profile = false);
  ~CommandSequence();
  CommandSequence(const CommandSequence&) = delete;
  CommandSequence& operator=(const CommandSequence&) = delete;

  GpuDevice& device() const { return device_; }

  // Binds `bindings` to bindings 0..n-1 (each at most maxStorageBufferRange bytes) and dispatches.
  void dispatch(const ComputePipeline& pipeline, std::initializer_list<GpuSpan> bindings, const void* push,
                uint32_t push_bytes, uint32_t groups_x, uint32_t groups_y = 1, uint32_t groups_z = 1,
                const std::string& label = "");
  template <typename Push>
  void dispatch(const ComputePipeline& pipeline, std::initializer_list<GpuSpan> bindings, const Push& push,
                uint32_t groups_x, uint32_t groups_y = 1, uint32_t groups_z = 1, const std::string& label = "") {
    dispatch(pipeline, bindings, &push, sizeof(Push), groups_x, groups_y, groups_z, label);
  }
  void copy(const GpuSpan& src, const GpuSpan& dst);
  void fill_zero(const GpuSpan& dst);
  // Device memory owned by this sequence (kernel scratch such as split-attention partials).
  GpuSpan scratch(uint64_t bytes, const char* what);

  // Ends recording (run() does it on first use). Nothing can be recorded afterwards.
  void finish();
  // Submits the recorded commands and waits for them (submit() then wait()).
  void run();
  // Submits without waiting: the host may work (CPU experts) while the GPU runs. One submission
  // in flight per sequence; wait() blocks on the sequence's fence (no polling) until it is done.
  void submit();
  void wait();
  bool in_flight() const { return in_flight_; }

  size_t dispatch_count() const { return dispatches_; }
  // Per-dispatch GPU time of the last run(); empty unless profiling and the queue has timestamps.
  std::vector<KernelTiming> timings() const;

 private:
  void barrier();
  void check_recording(const char* what) const;
  VkDescriptorSet allocate_set(VkDescriptorSetLayout layout);

  GpuDevice& device_;
  VkCommandBuffer cb_ = VK_NULL_HANDLE;
  std::vector<VkDescriptorPool> pools_;
  VkFence fence_ = VK_NULL_HANDLE;
  VkQueryPool queries_ = VK_NULL_HANDLE;
  uint32_t query_capacity_ = 0;
  std::vector<std::string> labels_;
  std::vector<GpuBuffer> scratch_;
  size_t dispatches_ = 0;
  bool recording_ = true;
  bool ran_ = false;
  bool in_flight_ = false;
};

}  // namespace tandem::gpu
