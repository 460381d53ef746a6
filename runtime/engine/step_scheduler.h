// The one scheduler every architecture's forward pass runs on. A model supplies its layer
// program once, as an ordered list of steps over named activations:
//   - Gpu: work on GPU `device`, recorded into a command sequence;
//   - Cpu: host work (a layer's attention, FFN or head on the CPU kernels, embeddings);
//   - RoutedExperts: the CPU expert engine for layer L (RoutedExperts::forward), with optional
//     `overlap` GPU work that runs while the CPU computes (the shared experts, the layer's
//     GPU-resident routed experts).
// Each step says which activations it reads and writes. The scheduler owns the rest, once:
// consecutive GPU steps on one device become one command sequence (a segment), recorded once per
// batch size (and batch layout: the sequences a multi-sequence pass's rows belong to) and replayed; activations move between devices and the host where a step needs
// them (copies recorded at a segment's start or end, host-visible mirrors, a host copy between
// two GPUs); the CPU's expert work overlaps the GPU's overlap work; step timing is kept.
// Submission order for a RoutedExperts step: the segment before it, then its overlap sequence,
// then a wait on the segment only, then the CPU work, then the next segment (queued behind the
// overlap on the same queue, no host wait for it).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "runtime/gpu/command_sequence.h"
#include "runtime/gpu/gpu_device.h"
#include "runtime/model/routed_experts.h"

namespace tandem::sched {

constexpr int kCpu = -1;  // a step's device: kCpu or a GPU index (one of the scheduler's devices)

using ActivationId = uint32_t;

struct ActivationSpec {
  std::string name;
  uint64_t bytes = 0;            // buffer size (for the largest batch)
  uint64_t bytes_per_token = 0;  // what a transfer of n tokens moves: n * bytes_per_token
  // The GPU buffer is host-visible memory: GPU kernels write it and the CPU reads it in place
  // (router outputs the CPU experts read), no copy either way.
  bool host_visible = false;
  // Host mirror capacity in tokens when smaller than the largest batch (logits: only short
  // batches come back through a mirror; longer results are downloaded). 0: the whole buffer.
  uint32_t mirror_tokens = 0;
};

// Where the host's time of the last run went (steady_clock).
struct StepTimes {
  double wall_ms = 0;
  double gpu_wait_ms = 0;   // blocked on GPU fences (GPU work not hidden behind the CPU's)
  double experts_ms = 0;    // routed experts on the CPU
  double cpu_ms = 0;        // other CPU steps (layer parts placed on the CPU)
  double host_ms = 0;       // everything else: embeddings, recording, submits, copies, results
  uint32_t submits = 0;     // command sequences submitted
  uint32_t dispatches = 0;  // compute dispatches in them
};

class HostBuffers {
 public:
  void* at(ActivationId a) const;
  float* f32(ActivationId a) const { return static_cast<float*>(at(a)); }
  int32_t* i32(ActivationId a) const { return static_cast<int32_t*>(at(a)); }

 private:
  friend class StepScheduler;
  std::vector<std::pair<ActivationId, void*>> ptrs_;
};

using RecordFn = std::function<void(gpu::CommandSequence& seq, uint32_t n_tokens)>;
using CpuFn = std::function<void(const HostBuffers& host, uint32_t n_tokens)>;

struct Step {
  enum class Kind { Gpu, Cpu, RoutedExperts };
  Kind kind = Kind::Gpu;
  std::string label;
  int device = kCpu;  // Gpu: its GPU; RoutedExperts: the GPU that runs `overlap`
  std::vector<ActivationId> reads, writes;
  RecordFn record;  // Gpu
  CpuFn run;        // Cpu
  bool host_time = false;  // Cpu: counted as host time (embeddings), not cpu_ms
  // RoutedExperts: out = experts(layer, x, ids, weights) for k_used experts per token.
  int64_t layer = 0, k_used = 0;
  ActivationId x = 0, ids = 0, weights = 0, out = 0;
  RecordFn overlap;  // may be empty
  std::vector<ActivationId> overlap_reads, overlap_writes;
};

struct Program {
  std::vector<Step> steps;
  ActivationId result = 0;  // copied to the caller's buffer after the last step
};

struct SchedulerOptions {
  uint32_t max_tokens = 256;  // the largest batch a run takes
  bool profile = false;       // per-dispatch timestamps
  uint32_t recorded_sizes = 4;  // batch sizes (and layouts) kept recorded, least recently used dropped
};

class StepScheduler {
 public:
  // gpus: the Vulkan device indices the program's GPU steps use (opened here, each its own
  // VkDevice); experts: what RoutedExperts steps call (may be null when there are none).
  StepScheduler(const std::vector<uint32_t>& gpus, std::shared_ptr<RoutedExperts> experts, SchedulerOptions options);
  ~StepScheduler();

  gpu::GpuDevice& device(int gpu) const;
  std::vector<int> gpus() const;
  ActivationId declare(ActivationSpec spec);
  // The activation's buffer on a GPU (allocated there on first use).
  gpu::GpuSpan span(int gpu, ActivationId a);
  uint64_t bytes_per_token(ActivationId a) const { return specs_.at(a).bytes_per_token; }

  // The program to run (recordings of an earlier one are dropped).
  void set_program(Program program);
  // Runs the program for n tokens (recording it for n first when not yet recorded) and copies n
  // tokens of the result activation to result_out. result_tokens (0: n_tokens): how many tokens
  // of the result are copied (a pass that keeps only some rows' logits). layout: what else the
  // program's steps bake into a recording besides n (a multi-sequence pass's chunk lengths and
  // slots); runs of one n and one layout replay the same recording.
  void run(uint32_t n_tokens, void* result_out, uint32_t result_tokens = 0, const std::string& layout = {});

  void set_profile(bool on);
  const StepTimes& last_times() const { return times_; }
  const std::vector<gpu::KernelTiming>& last_timings() const { return timings_; }
  uint64_t device_bytes() const;

 private:
  struct Compiled;
  Compiled compile(uint32_t n, uint32_t result_tokens);
  gpu::GpuBuffer& mirror(int gpu, ActivationId a);  // host-visible mirror on that GPU
  void* plain(ActivationId a);            // plain host memory

  SchedulerOptions opt_;
  std::shared_ptr<RoutedExperts> experts_;
  std::map<int, std::unique_ptr<gpu::GpuDevice>> devices_;
  std::vector<ActivationSpec> specs_;
  std::map<std::pair<int, ActivationId>, gpu::GpuBuffer> buffers_, mirrors_;
  std::map<ActivationId, std::vector<uint8_t>> plain_;
  Program program_;
  struct Recorded {
    std::unique_ptr<Compiled> compiled;
    uint64_t last_use = 0;
  };
  std::map<std::tuple<uint32_t, uint32_t, std::string>, Recorded> recorded_;  // (n, result tokens, layout)
  uint64_t runs_ = 0;
  StepTimes times_;
  std::vector<gpu::KernelTiming> timings_;
};

}  // namespace tandem::sched
