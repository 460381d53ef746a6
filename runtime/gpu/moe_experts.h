// Routed experts resident on the GPU (shaders moe_route.comp, moe_experts.comp, moe_combine.comp).
// A layer keeps some of its experts here, each in a slot; a device-side table maps expert ids to
// slots (-1: the expert lives elsewhere, on the CPU). The recorded work reads the ids and weights
// the GPU router wrote, so one recording serves every step:
//
//   out[t] (+)= sum over k with ids[t,k] resident of weights[t,k] * down(silu(gate x[t]) * up x[t])
//
// route groups the resident (token, k) pairs by slot; gate+up+SiLU and down run per group (an
// expert's weights are decoded once for all its tokens: a matvec for decode, a grouped tiled GEMM
// for prompts); combine adds each token's parts in k order into out.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/gpu/command_sequence.h"
#include "runtime/gpu/gpu_weight.h"

namespace tandem::gpu {

struct GpuExpertsShape {
  uint32_t n_expert = 0;  // experts of the layer (<= 512), resident or not
  uint32_t hidden = 0;    // gate/up: ffn rows x hidden columns; down: hidden rows x ffn columns
  uint32_t ffn = 0;
  GgmlType gate_up_type = GgmlType::F32;  // gate and up share one type (matmul_supports)
  GgmlType down_type = GgmlType::F32;
};

// One MoE layer's GPU-resident experts. Slots are stored in chunks that each fit one binding
// (maxStorageBufferRange, or max_binding_bytes when smaller: tests); one dispatch per chunk.
class GpuExpertLayer {
 public:
  // resident: n_expert entries, nonzero = on the GPU (empty: none). Allocates the slots; the
  // weights arrive with upload_expert.
  GpuExpertLayer(GpuDevice& dev, const GpuExpertsShape& shape, const std::vector<uint8_t>& resident,
                 uint64_t max_binding_bytes = 0);
  GpuExpertLayer(const GpuExpertLayer&) = delete;
  GpuExpertLayer& operator=(const GpuExpertLayer&) = delete;
  GpuExpertLayer(GpuExpertLayer&&) = default;

  // Copies a resident expert's matrices (rows in the shape's types, as GGUF stores them) to its slot.
  void upload_expert(uint32_t expert, const void* gate, const void* up, const void* down);

  const GpuExpertsShape& shape() const { return shape_; }
  uint32_t n_slots() const { return n_slots_; }
  int32_t slot_of(uint32_t expert) const { return slot_of_.at(expert); }
  uint32_t slots_per_chunk() const { return slots_per_chunk_; }
  uint32_t n_chunks() const { return uint32_t(chunks_.size()); }
  uint64_t weight_bytes() const;  // device bytes of the expert matrices

  struct Chunk {
    GpuBuffer gate_up, down;  // slots of this chunk, back to back
    uint32_t slot0 = 0, slots = 0;
  };
  const Chunk& chunk(uint32_t c) const { return chunks_.at(c); }
  GpuSpan slot_table() const { return slot_table_.span(); }
  uint64_t gate_up_slot_bytes() const;  // one slot's gate rows then up rows
  uint64_t down_slot_bytes() const;

 private:
  GpuDevice* dev_;
  GpuExpertsShape shape_;
  uint32_t n_slots_ = 0, slots_per_chunk_ = 1;
  std::vector<int32_t> slot_of_;
  std::vector<Chunk> chunks_;
  GpuBuffer slot_table_;
};

// Device memory record_gpu_experts works in; one set serves every layer (their work is ordered on
// the queue). Sizes for up to max_pairs (tokens x k_used) pairs of any layer of these dimensions.
struct GpuExpertScratch {
  GpuSpan route;  // uint32 routing tables
  GpuSpan hidden; // F32 [pairs x ffn]: SiLU(gate) * up
  GpuSpan parts;  // F32 [pairs x hidden]: weighted expert outputs
};
struct GpuExpertScratchBytes {
  uint64_t route = 0, hidden = 0, parts = 0;
};
GpuExpertScratchBytes gpu_expert_scratch_bytes(uint32_t n_expert, uint32_t hidden, uint32_t ffn, uint32_t max_pairs);

struct GpuExpertsLayout {
  bool accumulate = true;      // out += the experts' sum (a residual); false: out = it
  uint32_t out_stride = 0;     // floats between output rows; 0: hidden
  bool allow_subgroup = true;  // subgroup reductions where the device has them (false: tests)
  // Per-group matvecs (moe_experts.comp) or the grouped tiled GEMM (moe_experts_tiled.comp).
  // Auto: tiled when the pairs per expert, on average, fill a good part of its 64-pair tiles.
  enum class Kernel { Auto, Matvec, Tiled };
  Kernel kernel = Kernel::Auto;
};

// What Kernel::Auto picks for n_pairs (tokens x k_used) pairs over n_expert experts.
bool gpu_experts_tiled_auto(uint32_t n_pairs, uint32_t n_expert);

// x: [n_tokens x hidden] F32; ids (int32) and weights (F32): [n_tokens x k_used], device spans
// the router wrote; out: [n_tokens x out_stride] F32. Records nothing when the layer has no
// resident expert. Pairs whose expert is not resident contribute nothing (the CPU computes them).
void record_gpu_experts(CommandSequence& seq, const GpuExpertLayer& layer, const GpuSpan& x, const GpuSpan& ids,
                        const GpuSpan& weights, uint32_t n_tokens, uint32_t k_used, const GpuSpan& out,
                        const GpuExpertScratch& scratch, const GpuExpertsLayout& layout = {});

}  // namespace tandem::gpu
