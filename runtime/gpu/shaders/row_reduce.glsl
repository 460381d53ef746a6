// Workgroup-wide sum for the one-workgroup-per-row kernels (WG threads, a spec constant). With
// USE_SUBGROUP: a subgroup add, one shared slot per subgroup, every thread sums the slots (two
// barriers whatever the subgroup size); without: a shared-memory tree. Every thread must call it.
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
shared float row_partial[WG];

float row_sum(float v) {
#ifdef USE_SUBGROUP
  v = subgroupAdd(v);
  if (subgroupElect()) row_partial[gl_SubgroupID] = v;
  barrier();
  float s = 0.0;
  for (uint i = 0u; i < gl_NumSubgroups; ++i) s += row_partial[i];
  barrier();  // the slots may be reused by the next call
  return s;
#else
  const uint tid = gl_LocalInvocationID.x;
  row_partial[tid] = v;
  barrier();
  for (uint k = WG / 2u; k > 0u; k >>= 1) {
    if (tid < k) row_partial[tid] += row_partial[tid + k];
    barrier();
  }
  const float s = row_partial[0];
  barrier();
  return s;
#endif
}
