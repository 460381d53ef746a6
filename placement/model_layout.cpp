#include "placement/model_layout.h"

#include <cstdio>
#include <map>

#include "experts/expert_memory.h"
#include "runtime/core/error.h"
#include "runtime/gguf/gguf_file.h"

namespace tandem::placement {

namespace {

// Routed expert tensors get cpu_bytes: what the expert engine holds for them on this machine
// (its repacked / AMX layouts, and the GGUF bytes it keeps reading), so the host budget is what
// resident memory will be. A layer whose shapes or types the engine rejects keeps the file's
// bytes (loading it names the problem).
void add_expert_layouts(const GgufFile& f, ModelLayout& m) {
  struct Layer {
    const GgufTensor *gate = nullptr, *up = nullptr, *down = nullptr;
    size_t gate_i = 0, up_i = 0, down_i = 0;
  };
  std::map<int64_t, Layer> layers;
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const GgufTensor& t = f.tensors()[i];
    if (t.name.rfind("blk.", 0) != 0 || t.shape.size() != 3) continue;
    const size_t dot = t.name.find('.', 4);
    if (dot == std::string::npos) continue;
    const std::string rest = t.name.substr(dot + 1);
    int64_t layer = 0;
    try {
      layer = std::stoll(t.name.substr(4, dot - 4));
    } catch (const std::exception&) {
      continue;
    }
    Layer& L = layers[layer];
    if (rest == "ffn_gate_exps.weight") L.gate = &t, L.gate_i = i;
    if (rest == "ffn_up_exps.weight") L.up = &t, L.up_i = i;
    if (rest == "ffn_down_exps.weight") L.down = &t, L.down_i = i;
  }
  std::map<std::string, int64_t> extra_by_note;  // bytes over the file, per distinct note
  for (const auto& [layer, L] : layers) {
    if (!L.gate || !L.up || !L.down) continue;
    const int64_t hidden = L.gate->shape[0], ffn = L.gate->shape[1], n_expert = L.gate->shape[2];
    if (n_expert <= 0) continue;
    ExpertLayerMemory mem, gguf;
    try {
      mem = expert_layer_memory(L.gate->type, L.up->type, L.down->type, hidden, ffn);
      ExpertMemoryOptions off;
      off.repack_for_prefill = false;
      gguf = expert_layer_memory(L.gate->type, L.up->type, L.down->type, hidden, ffn, off);
    } catch (const Error&) {
      continue;
    }
    m.tensors[L.gate_i].cpu_bytes = uint64_t(mem.gate.total() * n_expert);
    m.tensors[L.up_i].cpu_bytes = uint64_t(mem.up.total() * n_expert);
    m.tensors[L.down_i].cpu_bytes = uint64_t(mem.down.total() * n_expert);
    m.tensors[L.gate_i].cpu_bytes_gguf = uint64_t(gguf.gate.total() * n_expert);
    m.tensors[L.up_i].cpu_bytes_gguf = uint64_t(gguf.up.total() * n_expert);
    m.tensors[L.down_i].cpu_bytes_gguf = uint64_t(gguf.down.total() * n_expert);
    if (!mem.note.empty()) extra_by_note[mem.note] += (mem.per_expert() - mem.file_bytes) * n_expert;
  }
  for (const auto& [note, extra] : extra_by_note) {
    char gib[32];
    std::snprintf(gib, sizeof gib, "%.2f GiB", double(extra) / double(1ull << 30));
    m.notes.push_back("CPU experts: " + note + " (" + gib + " more than the file, in the host total)");
  }
}

}  // namespace

ModelLayout model_layout_from_gguf(const GgufFile& f) {
  const std::string arch = f.architecture();
  ModelLayout m;
  m.n_layer = int64_t(f.get_uint(arch + ".block_count"));
  m.n_expert = int64_t(f.get_uint_opt(arch + ".expert_count").value_or(0));
  m.kv_lora_rank = int64_t(f.get_uint_opt(arch + ".attention.kv_lora_rank").value_or(0));
  m.qk_rope = int64_t(f.get_uint_opt(arch + ".rope.dimension_count").value_or(0));
  for (const GgufTensor& t : f.tensors()) m.tensors.push_back({t.name, t.nbytes});
  add_expert_layouts(f, m);
  return m;
}

}  // namespace tandem::placement
