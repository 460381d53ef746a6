#version 450
// MoE routing for one token per workgroup: gate scores (softmax or sigmoid of the router logits),
// selection scores (+ per-expert bias when present), group-limited choice (keep the top_groups
// groups by their best or best-two selection score), top-k, then weights from the unbiased scores,
// optionally normalised to sum 1, times routed_scale. Ties go to the lower expert id.
layout(local_size_x = 64) in;
layout(binding = 0) readonly buffer Logits { float logits[]; };
layout(binding = 1) readonly buffer Bias { float bias[]; };
layout(binding = 2) buffer Ids { int ids[]; };
layout(binding = 3) buffer Weights { float weights[]; };
layout(push_constant) uniform Push {
  uint n_expert, k, n_groups, top_groups, sigmoid_gate, has_bias, normalize, group_top2;
  uint x0, bias0, ids0, w0;
  float routed_scale;
} p;
const uint MAX_EXPERTS = 512u;
const float NEG = -3.402823e38;
shared float score[MAX_EXPERTS];
shared float choice[MAX_EXPERTS];
shared float gmax[64];
void main() {
  const uint t = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
  const uint xb = p.x0 + t * p.n_expert;
  const uint E = p.n_expert;
  if (p.sigmoid_gate != 0u) {
    for (uint e = tid; e < E; e += 64u) score[e] = 1.0 / (1.0 + exp(-logits[xb + e]));
  } else {
    float m = NEG;
    for (uint e = tid; e < E; e += 64u) m = max(m, logits[xb + e]);
    gmax[tid] = m;
    barrier();
    for (uint s = 32u; s > 0u; s >>= 1) {
      if (tid < s) gmax[tid] = max(gmax[tid], gmax[tid + s]);
      barrier();
    }
    m = gmax[0];
    barrier();
    float sum = 0.0;
    for (uint e = tid; e < E; e += 64u) {
      score[e] = exp(logits[xb + e] - m);
      sum += score[e];
    }
    gmax[tid] = sum;
    barrier();
    for (uint s = 32u; s > 0u; s >>= 1) {
      if (tid < s) gmax[tid] += gmax[tid + s];
      barrier();
    }
    const float inv = 1.0 / gmax[0];
    barrier();
    for (uint e = tid; e < E; e += 64u) score[e] *= inv;
  }
  barrier();
  for (uint e = tid; e < E; e += 64u) choice[e] = score[e] + (p.has_bias != 0u ? bias[p.bias0 + e] : 0.0);
  barrier();
  if (tid != 0u) return;  // selection is tiny (k <= 16 of <= 512): one thread keeps it exact

  if (p.n_groups > 1u && p.top_groups < p.n_groups) {
    const uint per = E / p.n_groups;
    float gscore[64];
    for (uint g = 0u; g < p.n_groups; ++g) {
      float b1 = NEG, b2 = NEG;
      for (uint e = g * per; e < (g + 1u) * per; ++e) {
        const float c = choice[e];
        if (c > b1) { b2 = b1; b1 = c; } else if (c > b2) { b2 = c; }
      }
      gscore[g] = p.group_top2 != 0u ? b1 + b2 : b1;
    }
    bool keep[64];
    for (uint g = 0u; g < p.n_groups; ++g) keep[g] = false;
    for (uint n = 0u; n < p.top_groups; ++n) {
      uint best = 0u;
      float bv = NEG;
      bool found = false;
      for (uint g = 0u; g < p.n_groups; ++g)
        if (!keep[g] && (!found || gscore[g] > bv)) { best = g; bv = gscore[g]; found = true; }
      keep[best] = true;
    }
    for (uint g = 0u; g < p.n_groups; ++g)
      if (!keep[g])
        for (uint e = g * per; e < (g + 1u) * per; ++e) choice[e] = NEG;
  }
  float total = 0.0;
  for (uint n = 0u; n < p.k; ++n) {
    uint best = 0u;
    float bv = NEG;
    bool found = false;
    for (uint e = 0u; e < E; ++e)
      if (choice[e] > NEG && (!found || choice[e] > bv)) { best = e; bv = choice[e]; found = true; }
    choice[best] = NEG;
    ids[p.ids0 + t * p.k + n] = int(best);
    weights[p.w0 + t * p.k + n] = score[best];
    total += score[best];
  }
  const float f = (p.normalize != 0u ? 1.0 / max(total, 1e-20) : 1.0) * p.routed_scale;
  for (uint n = 0u; n < p.k; ++n) weights[p.w0 + t * p.k + n] *= f;
}
