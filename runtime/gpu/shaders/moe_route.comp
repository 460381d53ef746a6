#version 450
// Groups one MoE layer's (token, k) pairs by GPU-resident expert, on the GPU, so that a recorded
// sequence serves whatever ids the router wrote. A pair is resident when slot_of[id] >= 0; the
// others (CPU experts, bad ids) are left out. One workgroup; route[] gets (word offsets from
// route0, set by the host):
//   [0 .. n_chunks]           first group of each chunk of slots (then the group count)
//   groups0 + 3g ..           group g: slot, first position, pair count (groups in slot order)
//   pair_at0 + pos            pair index (t * k_used + k) at each position, grouped by slot
//   pos_of0 + pair            the pair's position, or NONE when it is not resident
// Positions within a group follow atomic order; every pair is computed on its own, so results
// do not depend on it.
layout(local_size_x = 256) in;

layout(binding = 0) readonly buffer Ids { int ids[]; };
layout(binding = 1) readonly buffer Slots { int slot_of[]; };
layout(binding = 2) buffer Route { uint route[]; };

layout(push_constant) uniform Push {
  uint n_pairs, n_expert, n_slots, slots_per_chunk, n_chunks;
  uint ids0, slots0, route0, groups0, pair_at0, pos_of0;
} p;

const uint MAX_SLOTS = 512u;
const uint NONE = 0xffffffffu;
shared uint count[MAX_SLOTS];
shared uint fill[MAX_SLOTS];

int resident_slot(uint pair) {
  const int id = ids[p.ids0 + pair];
  if (id < 0 || uint(id) >= p.n_expert) return -1;
  return slot_of[p.slots0 + uint(id)];
}

void main() {
  const uint tid = gl_LocalInvocationID.x;
  for (uint s = tid; s < p.n_slots; s += gl_WorkGroupSize.x) count[s] = 0u;
  barrier();
  for (uint i = tid; i < p.n_pairs; i += gl_WorkGroupSize.x) {
    const int s = resident_slot(i);
    if (s >= 0) atomicAdd(count[uint(s)], 1u);
  }
  barrier();
  if (tid == 0u) {  // a few hundred slots: a serial scan is cheaper than a parallel one's barriers
    uint first = 0u, groups = 0u;
    for (uint s = 0u; s < p.n_slots; ++s) {
      if (s % p.slots_per_chunk == 0u) route[p.route0 + s / p.slots_per_chunk] = groups;
      fill[s] = first;
      if (count[s] > 0u) {
        const uint g = p.route0 + p.groups0 + 3u * groups;
        route[g] = s;
        route[g + 1u] = first;
        route[g + 2u] = count[s];
        ++groups;
        first += count[s];
      }
    }
    route[p.route0 + p.n_chunks] = groups;
  }
  barrier();
  for (uint i = tid; i < p.n_pairs; i += gl_WorkGroupSize.x) {
    const int s = resident_slot(i);
    uint pos = NONE;
    if (s >= 0) {
      pos = atomicAdd(fill[uint(s)], 1u);
      route[p.route0 + p.pair_at0 + pos] = i;
    }
    route[p.route0 + p.pos_of0 + i] = pos;
  }
}
