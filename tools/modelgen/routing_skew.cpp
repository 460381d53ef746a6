#include "tools/modelgen/routing_skew.h"

#include <algorithm>
#include <charconv>
#include <numeric>
#include <random>
#include <vector>

namespace tandem::modelgen {

namespace {

// q^3 with q = 1 - rank / (n - 1): 1 for the layer's hottest expert, 0 for the coldest.
double hotness(const Deepseek2Options& o, int64_t layer, int64_t expert) {
  std::vector<int64_t> order(size_t(o.n_experts));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(o.seed * 0x9e3779b97f4a7c15ull + uint64_t(layer) * 0x632be59bd9b4e019ull + 0x5157);
  std::shuffle(order.begin(), order.end(), rng);
  const auto rank = std::find(order.begin(), order.end(), expert) - order.begin();
  const double q = 1.0 - double(rank) / double(o.n_experts - 1);
  return q * q * q;
}

bool skewed(const Deepseek2Options& o, int64_t expert) {
  return o.route_skew > 0 && o.n_experts >= 2 && expert >= 0 && expert < o.n_experts;
}

int64_t layer_of(const std::string& name, const std::string& tail) {
  if (name.rfind("blk.", 0) != 0 || name.size() <= tail.size() + 4 ||
      name.compare(name.size() - tail.size(), tail.size(), tail) != 0)
    return -1;
  int64_t layer = -1;
  const char* b = name.data() + 4;
  const char* e = name.data() + name.size() - tail.size();
  auto [p, ec] = std::from_chars(b, e, layer);
  return ec == std::errc() && p == e ? layer : -1;
}

}  // namespace

float router_row_scale(const Deepseek2Options& o, int64_t layer, int64_t expert) {
  // Sigmoid gating saturates on wide rows (a hot expert would be 0 half the time): bias only there.
  return skewed(o, expert) && o.gating != 2 ? float(1.0 + o.route_skew * hotness(o, layer, expert)) : 1.0f;
}

float routing_bias_offset(const Deepseek2Options& o, int64_t layer, int64_t expert) {
  return skewed(o, expert) && o.gating == 2 ? float(0.05 * o.route_skew * hotness(o, layer, expert)) : 0.0f;
}

int64_t routing_bias_tensor_layer(const std::string& name) { return layer_of(name, ".exp_probs_b.bias"); }

int64_t router_tensor_layer(const std::string& name) { return layer_of(name, ".ffn_gate_inp.weight"); }

}  // namespace tandem::modelgen
