// Rotary position embedding with YaRN context extension (shaders/rope.comp), in place.
// deepseek2 rotates consecutive pairs (2i, 2i+1) ("normal" mode); NeoX mode pairs (i, i+dim/2).
#pragma once

#include <cstdint>

#include "runtime/gpu/command_sequence.h"

namespace tandem::gpu {

struct RopeParams {
  uint32_t dim = 0;            // rotated elements per head (even)
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;     // 1 / YaRN factor
  float ext_factor = 0.0f;     // YaRN extrapolation mix; 0 disables the ramp
  float attn_factor = 1.0f;    // multiplies cos and sin
  float beta_fast = 32.0f;
  float beta_slow = 1.0f;
  uint32_t n_ctx_orig = 0;     // training context of the unscaled model
  bool neox = false;
};

// The YaRN ramp bounds in pair-index units: [floor(d(beta_fast)), ceil(d(beta_slow))] clamped to
// [0, dim-1], with d(b) = dim * ln(n_ctx_orig / (2 pi b)) / (2 ln base).
void yarn_corr_dims(const RopeParams& p, float& lo, float& hi);

struct RopeLayout {
  uint32_t n_tokens = 1;
  uint32_t n_heads = 1;
  uint32_t token_stride = 0;  // floats between tokens
  uint32_t head_stride = 0;   // floats between heads
};

// x: the first rotated element of token 0, head 0 (any float offset); positions: int32 per token.
void record_rope(CommandSequence& seq, const GpuSpan& x, const GpuSpan& positions, const RopeLayout& layout,
                 const RopeParams& params);

}  // namespace tandem::gpu
