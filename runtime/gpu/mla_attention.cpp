#include "runtime/gpu/mla_attention.h"

#include <algorithm>

#include "runtime/core/error.h"
#include "runtime/gpu/float_binding.h"
#include "runtime/gpu/matmul.h"

namespace tandem::gpu {

namespace {
constexpr uint32_t kWorkgroup = 64;  // per-head kernel
// Split-context decode: enough workgroups to fill a large GPU, slices of at least 64 keys
// (per-head kernel) or 32 keys (grouped kernel; the kernels repeat these minimums).
constexpr uint32_t kTargetWorkgroups = 2048;
constexpr uint32_t kGroupedTargetWorkgroups = 1024;
constexpr uint32_t kMaxSplits = 64;  // mla_combine.comp's MAX_SPLIT
constexpr uint32_t kMinSliceKeys = 64;
constexpr uint32_t kGroupedMinSliceKeys = 32;
// mla_attention_grouped.comp: rows (query x head) per workgroup, its limits and shared memory.
constexpr uint32_t kGroupRows = 8;
constexpr uint32_t kGroupedMaxRank = 512, kGroupedMaxRow = 576;
constexpr uint32_t kGroupedSharedBytes = 27872;

uint32_t context_splits(uint64_t workgroups, uint32_t target, uint32_t min_slice, uint32_t max_tokens) {
  uint64_t s = (target + workgroups - 1) / workgroups;
  s = std::min<uint64_t>({s, kMaxSplits, (max_tokens + min_slice - 1) / min_slice});
  return uint32_t(std::max<uint64_t>(s, 1));
}
}  // namespace

bool mla_grouped_supported(const GpuDeviceInfo& info, const MlaShape& s) {
  return s.kv_lora_rank % 4 == 0 && s.qk_rope_dim % 4 == 0 && s.kv_lora_rank <= kGroupedMaxRank &&
         s.kv_lora_rank + s.qk_rope_dim <= kGroupedMaxRow && info.max_compute_shared_memory >= kGroupedSharedBytes &&
         info.max_workgroup_invocations >= 256;
}

void record_mla_core(CommandSequence& seq, const MlaShape& s, const GpuSpan& q_lat, const GpuSpan& q_pe,
                     const LatentKvCache& cache, uint32_t layer, const GpuSpan& positions, uint32_t n_tokens,
                     float scale, const GpuSpan& o_lat, const MlaCoreLayout& l, MlaKernel kernel) {
  if (n_tokens == 0) return;
  if (s.kv_lora_rank != cache.kv_lora_rank() || s.qk_rope_dim != cache.rope_dim())
    fail("MLA attention: shape (rank ", s.kv_lora_rank, ", rope ", s.qk_rope_dim, ") does not match the cache (",
         cache.kv_lora_rank(), ", ", cache.rope_dim(), ")");
  if (s.kv_lora_rank > 2 * 8 * kWorkgroup || s.kv_lora_rank + s.qk_rope_dim > 1152)
    fail("MLA attention: kv_lora_rank ", s.kv_lora_rank, " + rope ", s.qk_rope_dim, " exceeds the kernel's limits");
  if (positions.size < uint64_t(n_tokens) * 4) fail("MLA attention: positions span too small");
  auto& dev = seq.device();
  const auto& info = dev.info();
  const auto qlb = bind_words(info, q_lat, "MLA q_lat"), qpb = bind_words(info, q_pe, "MLA q_pe"),
             pb = bind_words(info, positions, "MLA positions"), ob = bind_words(info, o_lat, "MLA o_lat");
  const uint32_t n_rows = n_tokens * s.n_head;
  const bool grouped = kernel == MlaKernel::Auto && mla_grouped_supported(info, s);
  const uint32_t groups = (n_rows + kGroupRows - 1) / kGroupRows;
  const uint32_t splits = grouped ? context_splits(groups, kGroupedTargetWorkgroups, kGroupedMinSliceKeys,
                                                   cache.max_tokens())
                                  : context_splits(n_rows, kTargetWorkgroups, kMinSliceKeys, cache.max_tokens());
  const GpuSpan part = splits > 1 ? seq.scratch(uint64_t(n_rows) * splits * (s.kv_lora_rank + 2) * 4,
                                                "MLA split-context partials")
                                  : ob.binding;
  if (grouped) {
    struct {
      uint32_t L, R, ql0, ql_tok, ql_head, qp0, qp_tok, qp_head, pos0, o0, o_tok, o_head;
      float scale;
      uint32_t n_split, n_head, n_rows;
    } p{s.kv_lora_rank, s.qk_rope_dim, qlb.first, l.q_lat_token_stride, l.q_lat_head_stride, qpb.first,
        l.q_pe_token_stride, l.q_pe_head_stride, pb.first, ob.first, l.out_token_stride, l.out_head_stride, scale,
        splits, s.n_head, n_rows};
    seq.dispatch(dev.pipeline({cache.shader("mla_attention_grouped"), 6, sizeof p, {}}),
                 {qlb.binding, qpb.binding, cache.layer(layer), pb.binding, ob.binding, part}, p, groups, 1, splits,
                 "mla_attention_grouped");
  } else {
    struct {
      uint32_t L, R, ql0, ql_tok, ql_head, qp0, qp_tok, qp_head, row_words, pos0, o0, o_tok, o_head;
      float scale;
      uint32_t n_split, n_head;
    } p{s.kv_lora_rank, s.qk_rope_dim, qlb.first, l.q_lat_token_stride, l.q_lat_head_stride, qpb.first,
        l.q_pe_token_stride, l.q_pe_head_stride, cache.row_halves() / 2, pb.first, ob.first, l.out_token_stride,
        l.out_head_stride, scale, splits, s.n_head};
    seq.dispatch(dev.pipeline({cache.shader("mla_attention"), 6, sizeof p, {kWorkgroup}}),
                 {qlb.binding, qpb.binding, cache.layer(layer), pb.binding, ob.binding, part}, p, s.n_head, n_tokens,
                 splits, "mla_attention");
  }
  if (splits == 1) return;
  struct {
    uint32_t L, n_split, n_head, o0, o_tok, o_head;
  } c{s.kv_lora_rank, splits, s.n_head, ob.first, l.out_token_stride, l.out_head_stride};
  seq.dispatch(dev.pipeline({"mla_combine", 2, sizeof c, {}}), {part, ob.binding}, c, s.n_head, n_tokens,
               (s.kv_lora_rank + 63) / 64, "mla_combine");  // 64 columns per workgroup (mla_combine.comp)
}

uint64_t mla_scratch_floats(const MlaShape& s, uint32_t n_tokens, uint32_t chunk_tokens) {
  return uint64_t(std::min(n_tokens, std::max(chunk_tokens, 1u))) * s.n_head * s.kv_lora_rank;
}

void record_mla_attention(CommandSequence& seq, const MlaShape& s, const MlaWeights& w, const GpuSpan& q,
                          const LatentKvCache& cache, uint32_t layer, const GpuSpan& positions, uint32_t n_tokens,
                          float scale, const GpuSpan& q_lat, const GpuSpan& o_lat, const GpuSpan& out,
                          uint32_t chunk_tokens, MlaKernel kernel) {
  if (n_tokens == 0) return;
  const uint32_t qk = s.qk_nope_dim + s.qk_rope_dim, L = s.kv_lora_rank;
  if (w.k_b.rows != s.n_head * L || w.k_b.cols != s.qk_nope_dim)
    fail("MLA attention: attn_k_b is ", w.k_b.rows, " x ", w.k_b.cols, ", expected ", s.n_head * L, " x ",
         s.qk_nope_dim);
  if (w.v_b.rows != s.n_head * s.v_head_dim || w.v_b.cols != L)
    fail("MLA attention: attn_v_b is ", w.v_b.rows, " x ", w.v_b.cols, ", expected ", s.n_head * s.v_head_dim,
         " x ", L);
  const uint64_t q_tok = uint64_t(s.n_head) * qk * 4, o_tok = uint64_t(s.n_head) * s.v_head_dim * 4;
  if (q.size < n_tokens * q_tok) fail("MLA attention: q span too small");
  if (out.size < n_tokens * o_tok) fail("MLA attention: output span too small");
  if (positions.size < uint64_t(n_tokens) * 4) fail("MLA attention: positions span too small");
  const uint64_t scratch = mla_scratch_floats(s, n_tokens, chunk_tokens) * 4;
  if (q_lat.size < scratch || o_lat.size < scratch)
    fail("MLA attention: scratch spans need ", scratch, " bytes each");
  const uint32_t chunk = std::max(chunk_tokens, 1u);

  for (uint32_t t0 = 0; t0 < n_tokens; t0 += chunk) {
    const uint32_t n = std::min(chunk, n_tokens - t0);
    const GpuSpan qc = q.sub(t0 * q_tok, n * q_tok);
    const GpuSpan pc = positions.sub(uint64_t(t0) * 4, uint64_t(n) * 4);
    const GpuSpan oc = out.sub(t0 * o_tok, n * o_tok);

    MatMulLayout kb;  // q_lat[t][h] = k_b[h] q_nope[t][h]
    kb.x_col_stride = s.n_head * qk;
    kb.x_group_rows = L;
    kb.x_group_stride = qk;
    kb.y_col_stride = s.n_head * L;
    record_matmul(seq, w.k_b, qc, q_lat, n, kb);

    const MlaCoreLayout core{s.n_head * L, L, s.n_head * qk, qk, s.n_head * L, L};
    record_mla_core(seq, s, q_lat, qc.sub(uint64_t(s.qk_nope_dim) * 4, qc.size - uint64_t(s.qk_nope_dim) * 4), cache,
                    layer, pc, n, scale, o_lat, core, kernel);

    MatMulLayout vb;  // out[t][h] = v_b[h] o_lat[t][h]
    vb.x_col_stride = s.n_head * L;
    vb.x_group_rows = s.v_head_dim;
    vb.x_group_stride = L;
    vb.y_col_stride = s.n_head * s.v_head_dim;
    record_matmul(seq, w.v_b, o_lat, oc, n, vb);
  }
}

}  // namespace tandem::gpu
