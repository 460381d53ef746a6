#include "runtime/model/routed_experts.h"

#include <algorithm>

#include "runtime/core/error.h"
#include "runtime/model/reference_ops.h"

namespace tandem {

void ReferenceRoutedExperts::forward(int64_t layer, const float* x, int64_t n_tokens, const int32_t* ids,
                                     const float* weights, int64_t k_used, float* y) {
  const ExpertLayerWeights& L = layers_.at(size_t(layer));
  const int64_t hidden = L.gate.cols;
  const int64_t ffn = L.gate.rows / L.n_expert;
  std::fill(y, y + n_tokens * hidden, 0.0f);
  for (int64_t i = 0; i < n_tokens * k_used; ++i)
    if (ids[i] < 0 || ids[i] >= L.n_expert) fail("layer ", layer, ": expert id ", ids[i], " out of range");
  // Group the tokens of each expert so its weights are dequantized once per batch.
  for (int64_t e = 0; e < L.n_expert; ++e) {
    std::vector<int64_t> tokens;
    std::vector<float> token_weight;
    for (int64_t t = 0; t < n_tokens; ++t)
      for (int64_t k = 0; k < k_used; ++k)
        if (ids[t * k_used + k] == e) {
          tokens.push_back(t);
          token_weight.push_back(weights[t * k_used + k]);
        }
    if (tokens.empty()) continue;
    const int64_t n = int64_t(tokens.size());
    std::vector<float> xs(size_t(n * hidden)), g(size_t(n * ffn)), u(size_t(n * ffn)), h(size_t(n * ffn)),
        out(size_t(n * hidden));
    for (int64_t i = 0; i < n; ++i) std::copy_n(x + tokens[size_t(i)] * hidden, hidden, xs.data() + i * hidden);
    reference_matmul(L.gate.slice(e, L.n_expert), xs.data(), n, g.data());
    reference_matmul(L.up.slice(e, L.n_expert), xs.data(), n, u.data());
    silu_mul(g.data(), u.data(), n * ffn, h.data());
    reference_matmul(L.down.slice(e, L.n_expert), h.data(), n, out.data());
    for (int64_t i = 0; i < n; ++i) {
      float* dst = y + tokens[size_t(i)] * hidden;
      for (int64_t c = 0; c < hidden; ++c) dst[c] += token_weight[size_t(i)] * out[size_t(i * hidden + c)];
    }
  }
}

}  // namespace tandem
