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
const uint WG = 256u;
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
const uint SPT = MAX_SLOTS / WG;  // slots per thread in the scan
shared uint scan_pairs[WG];
shared uint scan_groups[WG];

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
  // Exclusive prefix sums over slots of the pair counts (first position) and of the non-empty
  // slots (group number): each thread sums its SPT consecutive slots, a Hillis-Steele scan over
  // the threads' totals in shared memory, then each thread walks its slots again. (A serial scan
  // on one thread took ~10 us per layer on an H200.)
  const uint s0 = tid * SPT;
  uint my_pairs = 0u, my_groups = 0u;
  for (uint j = 0u; j < SPT; ++j) {
    const uint s = s0 + j;
    if (s < p.n_slots) {
      my_pairs += count[s];
      my_groups += count[s] > 0u ? 1u : 0u;
    }
  }
  scan_pairs[tid] = my_pairs;
  scan_groups[tid] = my_groups;
  barrier();
  for (uint d = 1u; d < WG; d <<= 1) {
    const uint a = tid >= d ? scan_pairs[tid - d] : 0u, b = tid >= d ? scan_groups[tid - d] : 0u;
    barrier();
    scan_pairs[tid] += a;
    scan_groups[tid] += b;
    barrier();
  }
  uint first = scan_pairs[tid] - my_pairs, groups = scan_groups[tid] - my_groups;
  for (uint j = 0u; j < SPT; ++j) {
    const uint s = s0 + j;
    if (s >= p.n_slots) break;
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
  if (tid == WG - 1u) route[p.route0 + p.n_chunks] = scan_groups[WG - 1u];
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
