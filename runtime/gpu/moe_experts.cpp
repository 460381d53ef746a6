#include "runtime/gpu/moe_experts.h"

#include <algorithm>
#include <string>

#include "runtime/core/error.h"
#include "runtime/gpu/float_binding.h"
#include "runtime/gpu/matmul.h"

namespace tandem::gpu {

namespace {

constexpr uint32_t kMaxExperts = 512;  // moe_route.comp's shared tables
constexpr uint32_t kWorkgroup = 64;
constexpr uint32_t kCombineWorkgroup = 64;
constexpr uint32_t kMaxGroupsX = 65535;
constexpr uint64_t kPadding = 16;  // shaders read whole words past a row's last byte

struct RoutePush {
  uint32_t n_pairs, n_expert, n_slots, slots_per_chunk, n_chunks, ids0, slots0, route0, groups0, pair_at0, pos_of0;
};
struct ExpertsPush {
  uint32_t K, rows, row_bytes, slot_bytes, w_byte0, chunk, slot0, k_used, x0, x_stride, route0, groups0, pair_at0, y0,
      rw0, rows_per_wg;
};
struct CombinePush {
  uint32_t hidden, k_used, pos_of0, part0, y0, y_stride, accumulate;
};

// Word offsets of the route tables (moe_route.comp) for a layer and a pair count.
struct RouteLayout {
  uint32_t groups0, pair_at0, pos_of0, words;
};
RouteLayout route_layout(uint32_t n_chunks, uint32_t n_slots, uint32_t n_pairs) {
  RouteLayout r;
  r.groups0 = n_chunks + 1;
  r.pair_at0 = r.groups0 + 3 * n_slots;
  r.pos_of0 = r.pair_at0 + n_pairs;
  r.words = r.pos_of0 + n_pairs;
  return r;
}

// Pairs an expert's decoded weights serve per pass: as many as a group can have, up to 16.
uint32_t pairs_per_pass(uint32_t n_tokens) {
  for (uint32_t c : {1u, 2u, 4u, 8u})
    if (n_tokens <= c) return c;
  return 16;
}

// Tiles of moe_experts_tiled.comp: 64 rows x 64 pairs, 256 threads of 4 x 4, k steps of 32.
constexpr uint32_t kTileRows = 64, kTilePairs = 64, kTileK = 32, kTileThreads = 256;
// Auto takes the tiled GEMM from 16 pairs per expert on average (a quarter of a tile): below,
// the matvec kernel's passes of up to 16 pairs decode the weights about as often. Not measured on
// a GPU yet; 16 is where both decode each weight once per group (pairs_per_pass).
constexpr uint32_t kTiledMinPairsPerExpert = 16;
// Its shared memory: gate and up weight tiles and the pair tile, each k x (64 + 1) floats, and
// the tile's input offsets.
constexpr uint32_t kTiledSharedBytes = 3 * kTileK * (kTileRows + 1) * 4 + kTilePairs * 4;
// Column tiles per group in the grid; a group with more pairs loops over them.
constexpr uint32_t kMaxPairTiles = 64;

void need(const GpuSpan& s, uint64_t bytes, const char* what) {
  if (s.size < bytes) fail("GPU experts: ", what, " span of ", s.size, " bytes, need ", bytes);
}

}  // namespace

bool gpu_experts_tiled_auto(uint32_t n_pairs, uint32_t n_expert) {
  return n_expert > 0 && n_pairs >= kTiledMinPairsPerExpert * n_expert;
}

GpuExpertLayer::GpuExpertLayer(GpuDevice& dev, const GpuExpertsShape& shape, const std::vector<uint8_t>& resident,
                               uint64_t max_binding_bytes)
    : dev_(&dev), shape_(shape) {
  if (shape.n_expert == 0 || shape.n_expert > kMaxExperts)
    fail("GPU experts: ", shape.n_expert, " experts per layer (1..", kMaxExperts, " supported)");
  if (shape.hidden == 0 || shape.ffn == 0) fail("GPU experts: empty expert shape");
  if (!resident.empty() && resident.size() != shape.n_expert)
    fail("GPU experts: residency mask of ", resident.size(), " entries for ", shape.n_expert, " experts");
  for (GgmlType t : {shape.gate_up_type, shape.down_type})
    if (!matmul_supports(t)) fail("GPU experts: weight type ", ggml_type_name(t), " has no GPU kernel");
  const uint32_t gu_block = uint32_t(ggml_type_info(shape.gate_up_type).block_size);
  const uint32_t d_block = uint32_t(ggml_type_info(shape.down_type).block_size);
  if (shape.hidden % gu_block || shape.ffn % d_block)
    fail("GPU experts: rows of ", shape.hidden, " / ", shape.ffn, " are not whole ", ggml_type_name(shape.gate_up_type),
         " / ", ggml_type_name(shape.down_type), " blocks");
  slot_of_.assign(shape.n_expert, -1);
  for (uint32_t e = 0; e < shape.n_expert; ++e)
    if (!resident.empty() && resident[e]) slot_of_[e] = int32_t(n_slots_++);
  if (n_slots_ == 0) return;

  const auto& info = dev.info();
  uint64_t limit = std::min<uint64_t>(info.max_storage_buffer_range, 0xffffffffull);
  if (max_binding_bytes) limit = std::min(limit, max_binding_bytes);
  const uint64_t widest = std::max(gate_up_slot_bytes(), down_slot_bytes());
  if (widest + kPadding > limit)
    fail("GPU experts: one expert's matrix of ", widest, " bytes does not fit one GPU binding of ", limit);
  slots_per_chunk_ = uint32_t(std::min<uint64_t>(n_slots_, (limit - kPadding) / widest));
  for (uint32_t s0 = 0; s0 < n_slots_; s0 += slots_per_chunk_) {
    Chunk c;
    c.slot0 = s0;
    c.slots = std::min(slots_per_chunk_, n_slots_ - s0);
    c.gate_up = dev.allocate(c.slots * gate_up_slot_bytes() + kPadding, "GPU routed experts gate+up");
    c.down = dev.allocate(c.slots * down_slot_bytes() + kPadding, "GPU routed experts down");
    chunks_.push_back(std::move(c));
  }
  slot_table_ = dev.allocate(uint64_t(shape.n_expert) * 4, "GPU expert slot table");
  dev.upload(slot_table_.span(), slot_of_.data(), uint64_t(shape.n_expert) * 4);
}

uint64_t GpuExpertLayer::gate_up_slot_bytes() const {
  return 2 * uint64_t(shape_.ffn) * ggml_row_bytes(shape_.gate_up_type, shape_.hidden);
}
uint64_t GpuExpertLayer::down_slot_bytes() const {
  return uint64_t(shape_.hidden) * ggml_row_bytes(shape_.down_type, shape_.ffn);
}
uint64_t GpuExpertLayer::weight_bytes() const {
  return uint64_t(n_slots_) * (gate_up_slot_bytes() + down_slot_bytes());
}

void GpuExpertLayer::upload_expert(uint32_t expert, const void* gate, const void* up, const void* down) {
  if (expert >= shape_.n_expert || slot_of_[expert] < 0)
    fail("GPU experts: expert ", expert, " has no GPU slot");
  const uint32_t slot = uint32_t(slot_of_[expert]);
  const Chunk& c = chunks_[slot / slots_per_chunk_];
  const uint64_t local = slot - c.slot0, half = gate_up_slot_bytes() / 2;
  dev_->upload(c.gate_up.sub(local * gate_up_slot_bytes(), half), gate, half);
  dev_->upload(c.gate_up.sub(local * gate_up_slot_bytes() + half, half), up, half);
  dev_->upload(c.down.sub(local * down_slot_bytes(), down_slot_bytes()), down, down_slot_bytes());
}

GpuExpertScratchBytes gpu_expert_scratch_bytes(uint32_t n_expert, uint32_t hidden, uint32_t ffn, uint32_t max_pairs) {
  GpuExpertScratchBytes b;
  const uint64_t pairs = std::max<uint32_t>(max_pairs, 1);
  b.route = uint64_t(route_layout(n_expert, n_expert, uint32_t(pairs)).words) * 4;  // at most a chunk per expert
  b.hidden = pairs * ffn * 4;
  b.parts = pairs * hidden * 4;
  return b;
}

namespace {

// gate+up+SiLU then down, per group as matvecs over up to 16 pairs a pass (moe_experts.comp).
void record_matvec_products(CommandSequence& seq, const GpuExpertLayer& layer, const FloatBinding& xb,
                            const FloatBinding& rb, const FloatBinding& hb, const FloatBinding& pb,
                            const FloatBinding& wb, const RouteLayout& rl, uint32_t n_tokens, uint32_t k_used,
                            const GpuExpertsLayout& layout) {
  auto& dev = seq.device();
  const auto& info = dev.info();
  const GpuExpertsShape& sh = layer.shape();
  const uint32_t n_pairs = n_tokens * k_used;
  const bool subgroup = layout.allow_subgroup && info.subgroup_in_compute && info.subgroup_arithmetic && info.subgroup_size >= 4 &&
                        info.subgroup_size <= kWorkgroup;
  const uint32_t rows_per_wg = subgroup ? std::max<uint32_t>(1, kWorkgroup / info.subgroup_size) : 1;
  const std::vector<uint32_t> constants = {kWorkgroup, pairs_per_pass(n_tokens)};
  const std::string variant = subgroup ? "_subgroup" : "";
  const auto& gate_up = dev.pipeline({std::string("moe_gate_up_") + gpu_weight_type_suffix(sh.gate_up_type) + variant,
                                      4, sizeof(ExpertsPush), constants, sh.gate_up_type});
  const auto& down = dev.pipeline(
      {std::string("moe_down_") + gpu_weight_type_suffix(sh.down_type) + variant, 5, sizeof(ExpertsPush), constants, sh.down_type});
  auto grid_x = [&](uint32_t rows) {
    const uint32_t groups = (rows + rows_per_wg - 1) / rows_per_wg;
    if (groups > kMaxGroupsX) fail("GPU experts: ", rows, " rows per expert matrix are too many");
    return groups;
  };
  for (uint32_t c = 0; c < layer.n_chunks(); ++c) {
    const auto& ch = layer.chunk(c);
    const uint32_t max_groups = std::min(ch.slots, n_pairs);  // an active slot has a pair
    const ExpertsPush p{sh.hidden, sh.ffn, uint32_t(ggml_row_bytes(sh.gate_up_type, sh.hidden)),
                        uint32_t(layer.gate_up_slot_bytes()), 0, c, ch.slot0, k_used, xb.first, sh.hidden, rb.first,
                        rl.groups0, rl.pair_at0, hb.first, 0, rows_per_wg};
    seq.dispatch(gate_up, {ch.gate_up.span(), xb.binding, rb.binding, hb.binding}, p, grid_x(sh.ffn), max_groups, 1,
                 "moe_gate_up");
  }
  for (uint32_t c = 0; c < layer.n_chunks(); ++c) {
    const auto& ch = layer.chunk(c);
    const uint32_t max_groups = std::min(ch.slots, n_pairs);
    const ExpertsPush p{sh.ffn, sh.hidden, uint32_t(ggml_row_bytes(sh.down_type, sh.ffn)),
                        uint32_t(layer.down_slot_bytes()), 0, c, ch.slot0, k_used, hb.first, sh.ffn, rb.first,
                        rl.groups0, rl.pair_at0, pb.first, wb.first, rows_per_wg};
    seq.dispatch(down, {ch.down.span(), hb.binding, rb.binding, pb.binding, wb.binding}, p, grid_x(sh.hidden),
                 max_groups, 1, "moe_down");
  }
}

// The same products as a grouped tiled GEMM (moe_experts_tiled.comp): grid x row tiles, y the
// chunk's groups, z column tiles of pairs (a group has at most n_tokens pairs when the router
// picks distinct experts; the kernel loops over more).
void record_tiled_products(CommandSequence& seq, const GpuExpertLayer& layer, const FloatBinding& xb,
                           const FloatBinding& rb, const FloatBinding& hb, const FloatBinding& pb,
                           const FloatBinding& wb, const RouteLayout& rl, uint32_t n_tokens, uint32_t k_used) {
  auto& dev = seq.device();
  const GpuExpertsShape& sh = layer.shape();
  const uint32_t n_pairs = n_tokens * k_used;
  const std::vector<uint32_t> constants = {kTileRows, kTilePairs, kTileK, 4, 4, kTileThreads};
  const auto& gate_up = dev.pipeline({std::string("moe_gate_up_tiled_") + gpu_weight_type_suffix(sh.gate_up_type), 4,
                                      sizeof(ExpertsPush), constants, sh.gate_up_type});
  const auto& down = dev.pipeline({std::string("moe_down_tiled_") + gpu_weight_type_suffix(sh.down_type), 5,
                                   sizeof(ExpertsPush), constants, sh.down_type});
  const uint32_t pair_tiles = std::min((n_tokens + kTilePairs - 1) / kTilePairs, kMaxPairTiles);
  auto grid_x = [](uint32_t rows) {
    const uint32_t groups = (rows + kTileRows - 1) / kTileRows;
    if (groups > kMaxGroupsX) fail("GPU experts: ", rows, " rows per expert matrix are too many");
    return groups;
  };
  for (uint32_t c = 0; c < layer.n_chunks(); ++c) {
    const auto& ch = layer.chunk(c);
    const uint32_t max_groups = std::min(ch.slots, n_pairs);
    const ExpertsPush p{sh.hidden, sh.ffn, uint32_t(ggml_row_bytes(sh.gate_up_type, sh.hidden)),
                        uint32_t(layer.gate_up_slot_bytes()), 0, c, ch.slot0, k_used, xb.first, sh.hidden, rb.first,
                        rl.groups0, rl.pair_at0, hb.first, 0, 0};
    seq.dispatch(gate_up, {ch.gate_up.span(), xb.binding, rb.binding, hb.binding}, p, grid_x(sh.ffn), max_groups,
                 pair_tiles, "moe_gate_up_tiled");
  }
  for (uint32_t c = 0; c < layer.n_chunks(); ++c) {
    const auto& ch = layer.chunk(c);
    const uint32_t max_groups = std::min(ch.slots, n_pairs);
    const ExpertsPush p{sh.ffn, sh.hidden, uint32_t(ggml_row_bytes(sh.down_type, sh.ffn)),
                        uint32_t(layer.down_slot_bytes()), 0, c, ch.slot0, k_used, hb.first, sh.ffn, rb.first,
                        rl.groups0, rl.pair_at0, pb.first, wb.first, 0};
    seq.dispatch(down, {ch.down.span(), hb.binding, rb.binding, pb.binding, wb.binding}, p, grid_x(sh.hidden),
                 max_groups, pair_tiles, "moe_down_tiled");
  }
}

}  // namespace

void record_gpu_experts(CommandSequence& seq, const GpuExpertLayer& layer, const GpuSpan& x, const GpuSpan& ids,
                        const GpuSpan& weights, uint32_t n_tokens, uint32_t k_used, const GpuSpan& out,
                        const GpuExpertScratch& scratch, const GpuExpertsLayout& layout) {
  if (n_tokens == 0 || k_used == 0 || layer.n_slots() == 0) return;
  const GpuExpertsShape& sh = layer.shape();
  const uint32_t n_pairs = n_tokens * k_used;
  const uint32_t y_stride = layout.out_stride ? layout.out_stride : sh.hidden;
  need(x, uint64_t(n_tokens) * sh.hidden * 4, "input");
  need(ids, uint64_t(n_pairs) * 4, "expert ids");
  need(weights, uint64_t(n_pairs) * 4, "expert weights");
  need(out, (uint64_t(n_tokens - 1) * y_stride + sh.hidden) * 4, "output");
  const RouteLayout rl = route_layout(layer.n_chunks(), layer.n_slots(), n_pairs);
  need(scratch.route, uint64_t(rl.words) * 4, "route scratch");
  need(scratch.hidden, uint64_t(n_pairs) * sh.ffn * 4, "hidden scratch");
  need(scratch.parts, uint64_t(n_pairs) * sh.hidden * 4, "parts scratch");

  auto& dev = seq.device();
  const auto& info = dev.info();
  const FloatBinding xb = bind_words(info, x, "expert input"), ib = bind_words(info, ids, "expert ids");
  const FloatBinding wb = bind_words(info, weights, "expert weights"), ob = bind_words(info, out, "expert output");
  const FloatBinding rb = bind_words(info, scratch.route, "expert route");
  const FloatBinding hb = bind_words(info, scratch.hidden, "expert hidden");
  const FloatBinding pb = bind_words(info, scratch.parts, "expert parts");
  const FloatBinding sb = bind_words(info, layer.slot_table(), "expert slot table");

  const RoutePush rp{n_pairs,  sh.n_expert, layer.n_slots(), layer.slots_per_chunk(), layer.n_chunks(), ib.first,
                     sb.first, rb.first,    rl.groups0,      rl.pair_at0,           rl.pos_of0};
  seq.dispatch(dev.pipeline({"moe_route", 3, sizeof(RoutePush), {}}), {ib.binding, sb.binding, rb.binding}, rp, 1, 1,
               1, "moe_route");

  const bool fits = info.max_compute_shared_memory >= kTiledSharedBytes;
  if (layout.kernel == GpuExpertsLayout::Kernel::Tiled && !fits)
    fail("GPU experts: the tiled kernel needs ", kTiledSharedBytes, " bytes of shared memory, the device has ",
         info.max_compute_shared_memory);
  const bool tiled = layout.kernel == GpuExpertsLayout::Kernel::Tiled ||
                     (layout.kernel == GpuExpertsLayout::Kernel::Auto && fits &&
                      gpu_experts_tiled_auto(n_pairs, sh.n_expert));
  if (tiled)
    record_tiled_products(seq, layer, xb, rb, hb, pb, wb, rl, n_tokens, k_used);
  else
    record_matvec_products(seq, layer, xb, rb, hb, pb, wb, rl, n_tokens, k_used, layout);
  const CombinePush cp{sh.hidden, k_used, rb.first + rl.pos_of0, pb.first, ob.first, y_stride, layout.accumulate ? 1u : 0u};
  seq.dispatch(dev.pipeline({"moe_combine", 3, sizeof(CombinePush), {}}), {rb.binding, pb.binding, ob.binding}, cp,
               (sh.hidden + kCombineWorkgroup - 1) / kCombineWorkgroup, n_tokens, 1, "moe_combine");
}

}  // namespace tandem::gpu
