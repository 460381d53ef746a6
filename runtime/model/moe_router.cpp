#include "runtime/model/moe_router.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>
#include <vector>

#include "runtime/model/deepseek2/deepseek2_hparams.h"
#include "runtime/model/reference_ops.h"

namespace tandem {

namespace {
RoutingObserver& routing_observer() {
  static RoutingObserver observer;
  return observer;
}
}  // namespace

void set_routing_observer(RoutingObserver observer) { routing_observer() = std::move(observer); }

void notify_routing(int64_t layer, const int32_t* ids, int64_t n_tokens, int64_t n_used) {
  if (const RoutingObserver& o = routing_observer()) o(layer, ids, n_tokens, n_used);
}

void route_token(const MoeRouterConfig& cfg, const float* logits, const float* bias, int32_t* ids,
                 float* weights) {
  const int64_t n = cfg.n_expert;
  std::vector<float> probs(logits, logits + n);
  if (cfg.gating == ExpertGating::Softmax) {
    softmax_inplace(probs.data(), n);
  } else {
    for (auto& p : probs) p = 1.0f / (1.0f + std::exp(-p));
  }
  std::vector<float> select(probs);
  if (bias)
    for (int64_t e = 0; e < n; ++e) select[size_t(e)] += bias[e];

  if (cfg.n_groups > 1 && cfg.n_groups_used < cfg.n_groups) {
    // A group's score is the sum of its two best selection scores; drop all but the best groups.
    const int64_t per = n / cfg.n_groups;
    std::vector<std::pair<float, int64_t>> group_score;
    for (int64_t g = 0; g < cfg.n_groups; ++g) {
      std::vector<float> s(select.begin() + g * per, select.begin() + (g + 1) * per);
      std::partial_sort(s.begin(), s.begin() + 2, s.end(), std::greater<>());
      group_score.push_back({s[0] + s[1], g});
    }
    std::stable_sort(group_score.begin(), group_score.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    for (int64_t k = cfg.n_groups_used; k < cfg.n_groups; ++k) {
      const int64_t g = group_score[size_t(k)].second;
      for (int64_t e = g * per; e < (g + 1) * per; ++e) select[size_t(e)] = -INFINITY;
    }
  }

  std::vector<int32_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return select[size_t(a)] > select[size_t(b)]; });
  double sum = 0.0;
  for (int64_t k = 0; k < cfg.n_used; ++k) {
    ids[k] = order[size_t(k)];
    weights[k] = probs[size_t(ids[k])];
    sum += weights[k];
  }
  for (int64_t k = 0; k < cfg.n_used; ++k) {
    if (cfg.normalize) weights[k] = float(weights[k] / sum);
    weights[k] *= cfg.scale;
  }
}

}  // namespace tandem
