#include "placement/plan.h"

#include <set>

namespace tandem::placement {

std::string Device::str() const {
  if (is_gpu()) return "gpu:" + std::to_string(index);
  if (replicate) return "cpu:replicate";
  if (index == kAllNodes) return "cpu";
  return "cpu:numa" + std::to_string(index);
}

std::vector<int> PlacementPlan::gpus() const {
  std::set<int> found;
  auto add = [&](const Device& d) {
    if (d.is_gpu()) found.insert(d.index);
  };
  add(token_embd);
  add(output);
  for (const LayerPlacement& l : layers) {
    add(l.attention);
    add(l.dense_ffn);
    add(l.router);
    add(l.shared_experts);
    for (const Device& e : l.experts) add(e);
  }
  for (const auto& [name, t] : tensors) add(t.device);
  return {found.begin(), found.end()};
}

}  // namespace tandem::placement
