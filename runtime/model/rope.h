// Rotary position embedding on interleaved pairs (x[2i], x[2i+1]), as deepseek2 uses it, with
// optional YaRN frequency interpolation. The YaRN magnitude correction is not applied here:
// deepseek2 folds it into the attention scale instead (Deepseek2Hparams::attention_scale).
#pragma once

#include <cstdint>
#include <vector>

namespace tandem {

struct RopeParams {
  int64_t n_dims = 0;
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;  // 1 / context scaling factor
  bool yarn = false;
  int64_t yarn_orig_ctx = 4096;
  float yarn_beta_fast = 32.0f;
  float yarn_beta_slow = 1.0f;
};

class Rope {
 public:
  explicit Rope(const RopeParams& p);
  // Rotates n_dims values of x in place for position pos.
  void apply(float* x, int64_t pos) const;
  // Angle of pair i at position pos (exposed for the GPU kernel's tests).
  float angle(int64_t pair, int64_t pos) const;

 private:
  RopeParams p_;
  std::vector<float> inv_freq_;   // base^(-2i/n_dims)
  std::vector<float> extrap_mix_; // YaRN: 1 keeps the original frequency, 0 interpolates
};

}  // namespace tandem
