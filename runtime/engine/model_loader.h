// Opens a GGUF and builds what runs it: weights, tokenizer and a CausalLm on the chosen path.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/core/load_progress.h"
#include "runtime/gguf/gguf_file.h"
#include "runtime/gpu/kv_cache_type.h"
#include "runtime/model/batched_lm.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/deepseek2/deepseek2_weights.h"
#include "runtime/tokenizer/tokenizer.h"

namespace tandem {

enum class ComputePath {
  Reference,  // plain fp32 reference pass, reference experts: the oracle
  Cpu,        // everything on the CPU, routed experts on the CPU expert engine
  Gpu,        // routed experts on the CPU expert engine, everything else on a Vulkan GPU
};

struct ModelLoadOptions {
  ComputePath path = ComputePath::Cpu;
  int threads = 0;  // 0: all cores
  // Cores kept free of expert threads (for the GPU feeder, the driver, other work). Device run,
  // V2-Lite hybrid decode on 16 cores: 0/1/2 reserved gave 50.0/49.0/48.4 tokens/s, so none.
  int reserved_cores = 0;
  uint32_t gpu_index = 0;
  // GPU path, per layer (missing: gpu_index): the device of its attention and of its FFN part
  // (dense FFN, or router + shared experts): a Vulkan index or -1 for the CPU kernels; the
  // output head's likewise (-2: gpu_index).
  std::vector<int> attention_device, ffn_device;
  int output_device = -2;
  uint32_t max_context = 4096;  // KV cache size of the GPU path (rows per sequence slot)
  // Sequence slots (BatchedLm: continuous batching), each with its own KV cache of max_context
  // rows; the CausalLm side is slot 0.
  int sequences = 1;
  gpu::KvCacheType kv_type = gpu::KvCacheType::F16;  // KV cache element type of the GPU path
  bool profile = false;         // GPU per-kernel timestamps
  // GPU path: routed experts that live and run on the GPU, per layer (missing or empty: none),
  // n_expert entries each, nonzero = GPU; the CPU engine gets the complement.
  std::vector<std::vector<uint8_t>> gpu_experts;
  bool replicate_experts = false;         // a copy of the CPU experts on every NUMA node
  // Per layer (missing or empty: all sharded), per routed expert: the NUMA node whose pool runs
  // it, or -1 to shard it across the pools.
  std::vector<std::vector<int>> expert_nodes;
  std::optional<bool> repack_for_prefill;  // the CPU experts' layout (unset: the engine decides)
  // Called while the model loads (from the loading threads, one call at a time): bytes of the
  // model's tensors processed so far, the total, the phase; the last call has done == total.
  LoadProgressFn progress;
};

struct LoadedModel {
  std::unique_ptr<GgufFile> file;
  std::unique_ptr<Deepseek2Weights> weights;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<CausalLm> lm;
  BatchedLm* batched = nullptr;  // the same pass as lm with options.sequences slots (owned by lm)
  std::string description;  // one line: architecture, shape, path
};

LoadedModel load_model(const std::string& path, const ModelLoadOptions& options);

}  // namespace tandem
