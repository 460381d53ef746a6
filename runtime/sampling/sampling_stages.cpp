#include "runtime/sampling/sampling_stages.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "runtime/core/error.h"

namespace tandem {
namespace {

bool before(const TokenCandidate& a, const TokenCandidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

}  // namespace

std::vector<TokenCandidate> make_candidates(std::span<const float> logits) {
  std::vector<TokenCandidate> c(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) c[i] = {int32_t(i), logits[i], 0.0f};
  return c;
}

void apply_penalties(std::vector<TokenCandidate>& c, std::span<const int32_t> recent, const PenaltyConfig& p) {
  if (recent.empty() || (p.repeat == 1.0f && p.presence == 0.0f && p.frequency == 0.0f)) return;
  std::unordered_map<int32_t, int> counts;
  for (int32_t id : recent) ++counts[id];
  // Candidates may already be filtered or reordered: find them by id.
  std::unordered_map<int32_t, size_t> where;
  where.reserve(c.size());
  const bool in_id_order = [&] {
    for (size_t i = 0; i < c.size(); ++i)
      if (c[i].id != int32_t(i)) return false;
    return true;
  }();
  if (!in_id_order)
    for (size_t i = 0; i < c.size(); ++i) where[c[i].id] = i;
  for (const auto& [id, n] : counts) {
    size_t i;
    if (in_id_order) {
      if (id < 0 || size_t(id) >= c.size()) continue;
      i = size_t(id);
    } else {
      auto it = where.find(id);
      if (it == where.end()) continue;
      i = it->second;
    }
    float& l = c[i].logit;
    l = l > 0.0f ? l / p.repeat : l * p.repeat;
    l -= p.presence + p.frequency * float(n);
  }
}

int32_t argmax(const std::vector<TokenCandidate>& c) {
  if (c.empty()) fail("argmax: no candidates");
  const TokenCandidate* best = &c[0];
  for (const auto& t : c)
    if (before(t, *best)) best = &t;
  return best->id;
}

void apply_temperature(std::vector<TokenCandidate>& c, float temperature) {
  if (!(temperature > 0.0f)) fail("temperature ", temperature, ": must be > 0 here (0 selects greedy)");
  for (auto& t : c) t.logit /= temperature;
}

void top_k(std::vector<TokenCandidate>& c, int k) {
  if (k > 0 && size_t(k) < c.size()) {
    std::partial_sort(c.begin(), c.begin() + k, c.end(), before);
    c.resize(size_t(k));
  } else {
    std::sort(c.begin(), c.end(), before);
  }
}

void softmax(std::vector<TokenCandidate>& c) {
  if (c.empty()) return;
  float max_logit = c[0].logit;
  for (const auto& t : c) max_logit = std::max(max_logit, t.logit);
  double sum = 0.0;
  for (auto& t : c) {
    t.p = std::exp(t.logit - max_logit);
    sum += t.p;
  }
  for (auto& t : c) t.p = float(t.p / sum);
}

void top_p(std::vector<TokenCandidate>& c, float p) {
  if (p >= 1.0f) return;
  double mass = 0.0;
  size_t keep = c.size();
  for (size_t i = 0; i < c.size(); ++i) {
    mass += c[i].p;
    if (mass >= double(p)) {
      keep = i + 1;
      break;
    }
  }
  c.resize(std::max<size_t>(keep, 1));
}

void min_p(std::vector<TokenCandidate>& c, float m) {
  if (m <= 0.0f || c.empty()) return;
  float best = 0.0f;
  for (const auto& t : c) best = std::max(best, t.p);
  const float cut = m * best;
  std::erase_if(c, [cut](const TokenCandidate& t) { return t.p < cut; });
}

double uniform01(std::mt19937_64& rng) { return double(rng() >> 11) * 0x1.0p-53; }

int32_t draw(const std::vector<TokenCandidate>& c, std::mt19937_64& rng) {
  if (c.empty()) fail("draw: no candidates");
  double total = 0.0;
  for (const auto& t : c) total += t.p;
  const double r = uniform01(rng) * total;
  double acc = 0.0;
  for (const auto& t : c) {
    acc += t.p;
    if (r < acc) return t.id;
  }
  // r landed on the rounding slack at the end: the last candidate that can be drawn.
  for (auto it = c.rbegin(); it != c.rend(); ++it)
    if (it->p > 0.0f) return it->id;
  return c.front().id;
}

}  // namespace tandem
