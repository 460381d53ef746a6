// Host memory of one MoE layer's routed experts as the engine will hold them: the layouts it
// builds at add_layer (repacked K-quants, AMX tiles, Q5_0 downs converted to Q8_0) and the GGUF
// bytes it keeps reading from the mapping. The plan's host bytes and its memory check use this,
// so what `tandem plan` and the load line say is what resident memory will be.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "experts/cpu_isa.h"
#include "runtime/quant/ggml_type.h"

namespace tandem {

// Bytes of one expert's matrix on the host: `mapped` GGUF bytes still read in place (resident
// once touched; 0 where a layout replaced them and their pages were dropped), `owned` engine
// memory (layouts, copies).
struct ExpertMatrixMemory {
  int64_t mapped = 0, owned = 0;
  int64_t total() const { return mapped + owned; }
};

struct ExpertLayerMemory {
  ExpertMatrixMemory gate, up, down;  // per expert
  int64_t file_bytes = 0;             // per expert, as stored
  // Where the layouts take more than the file: what costs it and the knob that avoids it.
  std::string note;
  int64_t per_expert() const { return gate.total() + up.total() + down.total(); }
};

struct ExpertMemoryOptions {
  std::optional<experts::CpuIsa> isa;       // default: experts::selected_cpu_isa()
  std::optional<bool> repack_for_prefill;   // as MoeEngineOptions (unset: knob, else assumed on)
  bool release_mapped_sources = true;       // as the model loader sets it
};

// Throws Error for shapes or types the engine rejects (as add_layer would).
ExpertLayerMemory expert_layer_memory(GgmlType gate, GgmlType up, GgmlType down, int64_t hidden, int64_t ffn,
                                      const ExpertMemoryOptions& options = {});

}  // namespace tandem
