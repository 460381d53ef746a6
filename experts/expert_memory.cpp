#include "experts/expert_memory.h"

#include <cstdio>

#include "experts/kernels/amx_layer.h"
#include "experts/kernels/amx_layout.h"
#include "experts/kernels/repacked.h"
#include "runtime/core/error.h"
#include "runtime/core/knobs.h"

namespace tandem {

// Mirrors MoeEngine::add_layer's choices on one node (moe_engine.cpp); engine_test checks the two
// agree through MoeEngine::host_bytes.
ExpertLayerMemory expert_layer_memory(GgmlType gate, GgmlType up, GgmlType down, int64_t hidden, int64_t ffn,
                                      const ExpertMemoryOptions& o) {
  using experts::CpuIsa;
  if (hidden <= 0 || ffn <= 0) fail("MoE layer: bad shape hidden=", hidden, " ffn=", ffn);
  const CpuIsa isa = o.isa ? *o.isa : experts::selected_cpu_isa();
  const std::string path = knobs::text("TANDEM_PREFILL_PATH").value_or("auto");
  const bool auto_path = path == "auto";
  const bool layout_path = path == "auto" || path == "repacked";
  const int64_t repack_min_tokens = knobs::integer("TANDEM_REPACK_MIN_TOKENS", 1, int64_t(1) << 30, 1);
  const bool repack = o.repack_for_prefill         ? *o.repack_for_prefill
                      : knobs::value("TANDEM_PREFILL_REPACK") ? knobs::flag("TANDEM_PREFILL_REPACK")
                                                              : true;  // the engine's memory rule may say no later
  const bool release = o.release_mapped_sources && auto_path && repack_min_tokens <= 1;
  auto gguf = [](GgmlType t, int64_t rows, int64_t cols) { return int64_t(ggml_row_bytes(t, uint64_t(cols))) * rows; };
  auto tile_layout = [&](GgmlType t) -> const experts::RepackedFormat* {
    return experts::repacked_tile_kernel(t, isa) ? experts::repacked_format(t) : nullptr;
  };

  ExpertLayerMemory m;
  m.gate.mapped = gguf(gate, ffn, hidden);
  m.up.mapped = gguf(up, ffn, hidden);
  m.down.mapped = gguf(down, hidden, ffn);
  m.file_bytes = m.gate.mapped + m.up.mapped + m.down.mapped;
  // AMX tiles (Auto path only) sit beside the GGUF bytes, which decode keeps streaming.
  bool amx_up = false, amx_down = false, down_to_q8 = false;
  if (isa == CpuIsa::Amx && auto_path) {
    if (gate == up && experts::amx_takes(gate))
      if (const auto f = experts::amx_format(gate); f && hidden % f->step_cols == 0) {
        amx_up = true;
        m.gate.owned = m.up.owned = experts::amx_matrix_bytes(*f, ffn, hidden);
      }
    std::optional<experts::AmxFormat> f;
    if (experts::amx_takes(down)) f = experts::amx_format(down);
    if (!f && (down == GgmlType::Q4_0 || down == GgmlType::Q5_0) && knobs::flag("TANDEM_AMX_LEGACY"))
      f = experts::amx_format(GgmlType::Q8_0), down_to_q8 = true;
    if (f && ffn % f->step_cols == 0) {
      amx_down = true;
      m.down.owned = experts::amx_matrix_bytes(*f, hidden, ffn);
    } else {
      down_to_q8 = false;
    }
  }
  // The vpdpbusd layout where AMX does not cover a matrix; it replaces the GGUF bytes when the
  // tile runs at every token count and the mapped pages are dropped.
  const auto* gate_rp = tile_layout(gate);
  const auto* up_rp = tile_layout(up);
  const auto* down_rp = tile_layout(down);
  const bool repacked_up = repack && layout_path && gate_rp && up_rp && !amx_up;
  const bool repacked_down = repack && layout_path && down_rp && !amx_down;
  if (repacked_up) {
    m.gate.owned = gate_rp->bytes(ffn, hidden), m.up.owned = up_rp->bytes(ffn, hidden);
    if (release) m.gate.mapped = m.up.mapped = 0;
  }
  if (repacked_down) {
    m.down.owned = down_rp->bytes(hidden, ffn);
    if (release) m.down.mapped = 0;
  }
  if (m.per_expert() > m.file_bytes) {
    char buf[400];
    const double extra = double(m.per_expert() - m.file_bytes) / double(m.file_bytes) * 100;
    const std::string down_name(ggml_type_name(down));
    if (down_to_q8)
      std::snprintf(buf, sizeof buf,
                    "%s expert downs are also kept as Q8_0 AMX tiles for prefill (+%.0f%% of the experts' bytes "
                    "on the host); TANDEM_AMX_LEGACY=0 avoids it (prefill then runs the %s row kernels)",
                    down_name.c_str(), extra, down_name.c_str());
    else if (amx_up || amx_down)
      std::snprintf(buf, sizeof buf,
                    "experts are also kept in the AMX tile layout beside their GGUF bytes (+%.0f%% on the host); "
                    "TANDEM_CPU_ISA=avx512 avoids it",
                    extra);
    else
      std::snprintf(buf, sizeof buf,
                    "the repacked expert layout takes %.0f%% more than the file's bytes%s; TANDEM_PREFILL_REPACK=0 "
                    "avoids it",
                    extra, release ? "" : " (and the GGUF pages stay mapped)");
    m.note = buf;
  }
  return m;
}

}  // namespace tandem
