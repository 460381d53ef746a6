#include "runtime/gpu/topk_router.h"

#include "runtime/core/error.h"
#include "runtime/gpu/float_binding.h"

namespace tandem::gpu {

void record_topk_router(CommandSequence& seq, const GpuSpan& logits, const GpuSpan& bias, const GpuSpan& ids,
                        const GpuSpan& weights, uint32_t n_tokens, const RouterParams& rp) {
  if (n_tokens == 0) return;
  if (rp.n_expert == 0 || rp.n_expert > 512) fail("GPU router: ", rp.n_expert, " experts (1..512 supported)");
  if (rp.n_groups == 0 || rp.n_groups > 64 || rp.n_expert % rp.n_groups)
    fail("GPU router: ", rp.n_groups, " groups do not divide ", rp.n_expert, " experts (at most 64 groups)");
  if (rp.top_groups == 0 || rp.top_groups > rp.n_groups)
    fail("GPU router: keeps ", rp.top_groups, " of ", rp.n_groups, " groups");
  const uint32_t eligible = rp.n_groups > 1 ? rp.n_expert / rp.n_groups * rp.top_groups : rp.n_expert;
  if (rp.k == 0 || rp.k > eligible || rp.k > 64)
    fail("GPU router: top-", rp.k, " of ", eligible, " eligible experts");
  if (logits.size < uint64_t(n_tokens) * rp.n_expert * 4) fail("GPU router: logits span too small");
  if (ids.size < uint64_t(n_tokens) * rp.k * 4 || weights.size < uint64_t(n_tokens) * rp.k * 4)
    fail("GPU router: output spans too small for ", n_tokens, " x ", rp.k);
  const bool has_bias = bias.buffer != VK_NULL_HANDLE && bias.size > 0;
  if (has_bias && bias.size < uint64_t(rp.n_expert) * 4) fail("GPU router: bias span too small");
  auto& dev = seq.device();
  const auto& info = dev.info();
  const auto lb = bind_words(info, logits, "router logits");
  const auto bb = has_bias ? bind_words(info, bias, "router bias") : lb;  // unused binding when no bias
  const auto ib = bind_words(info, ids, "router ids"), wb = bind_words(info, weights, "router weights");
  struct {
    uint32_t n_expert, k, n_groups, top_groups, sigmoid_gate, has_bias, normalize, group_top2, x0, bias0, ids0, w0;
    float routed_scale;
  } p{rp.n_expert, rp.k, rp.n_groups, rp.top_groups, rp.sigmoid_gate, has_bias, rp.normalize, rp.group_top2,
      lb.first, bb.first, ib.first, wb.first, rp.routed_scale};
  seq.dispatch(dev.pipeline({"topk_router", 4, sizeof p, {}}), {lb.binding, bb.binding, ib.binding, wb.binding}, p,
               n_tokens, 1, 1, "topk_router");
}

}  // namespace tandem::gpu
