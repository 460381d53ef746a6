#include "experts/moe_engine.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>

#include <cblas.h>
#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include "experts/activation_blocks.h"
#include "experts/aligned_buffer.h"
#include "experts/kernels/amx_layer.h"
#include "experts/kernels/repacked.h"
#include "experts/kernels/row_dot.h"
#include "experts/node_memory.h"
#include "experts/worker_pool.h"
#include "runtime/core/error.h"
#include "runtime/core/knobs.h"
#include "runtime/quant/dequantize.h"

namespace tandem {

using namespace experts;

namespace {

// Rows of one work item: small enough that decode (a handful of experts) still gives every
// thread several items, large enough that a tile of weight rows is reused across a token block.
constexpr int64_t kMaxRowTile = 32;
constexpr int64_t kMinRowTile = 4;
constexpr int64_t kItemsPerThread = 4;
// Tokens per block in the prefill loops: their quantized activations (a few KB each) stay in L2
// while a tile of weight rows is swept over them.
constexpr int64_t kTokenBlock = 32;
// Experts with at least this many tokens in a forward use the repacked layout when the layer has
// it: below, the row kernels (which stream the GGUF bytes, decoded per block for up to 16 tokens)
// win. The knob TANDEM_REPACK_MIN_TOKENS overrides (to measure the tile at decode sizes).
// Measured on the device (bench/README.md, "prefill paths", Q4_K 7168x2048 x8, 16 threads): the
// repacked tile beats the row kernels at every token count, 1 included (2.18 vs 2.78 ms at 1
// token, 2.63 vs 5.16 at 4, 5.4 vs 16.9 at 16), so where a layout exists it runs everything.
constexpr int64_t kRepackMinTokens = 1;
// Experts with at least this many tokens and no repacked layout use dequantize + sgemm (Auto).
// Measured there: sgemm lost to the avx512 row kernels at every count (1660 vs 506 ms at 512
// tokens, 243 vs 66 at 64; its cost per token is higher too), so Auto never picks it unless
// blas_min_tokens / TANDEM_BLAS_MIN_TOKENS says so.
constexpr int64_t kBlasMinTokens = INT64_MAX;
// The memory rule of the default prefill layout (engine-owned anonymous memory, which unlike the
// GGUF page cache cannot be dropped and re-read): repack a layer only while its bytes fit in this
// share of MemAvailable and all layouts so far fit in this share of MemTotal.
constexpr double kRepackAvailableShare = 0.5;
constexpr double kRepackTotalShare = 0.85;

MoeEngineOptions::PrefillPath prefill_path(MoeEngineOptions::PrefillPath option) {
  using P = MoeEngineOptions::PrefillPath;
  if (option != P::Auto) return option;
  const std::string v = knobs::text("TANDEM_PREFILL_PATH").value_or("auto");
  if (v == "rows") return P::RowKernels;
  if (v == "repacked") return P::Repacked;
  if (v == "blas") return P::Blas;
  return P::Auto;
}

// MemTotal and MemAvailable from /proc/meminfo, bytes; 0 when unreadable.
struct MemInfo {
  int64_t total = 0, available = 0;
};
MemInfo read_meminfo() {
  MemInfo m;
  std::ifstream f("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  std::string unit;
  while (f >> key >> kb) {
    std::getline(f, unit);
    if (key == "MemTotal:") m.total = kb * 1024;
    if (key == "MemAvailable:") m.available = kb * 1024;
  }
  return m;
}

// OpenBLAS runs each sgemm on the calling worker: the engine's pools are the parallelism.
void blas_single_threaded() {
  static std::once_flag once;
  std::call_once(once, [] {
    using SetThreads = void (*)(int);
    if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(1);
  });
}

int64_t row_tile(int64_t rows_per_unit, int64_t units, int threads, int64_t min_tile = kMinRowTile) {
  int64_t tile = kMaxRowTile;
  while (tile > min_tile && units * ((rows_per_unit + tile - 1) / tile) < kItemsPerThread * threads) tile /= 2;
  return tile;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// TANDEM_MOE_PHASES=1: where a forward's time goes, measured on pool 0 and printed on stderr when
// the engine is destroyed: routing on the caller, until the last worker has woken up, quantize x,
// gate+up, quantize h, down until the caller's wait returns.
struct PhaseTimer {
  static constexpr int kPhases = 6;
  static constexpr const char* kNames[kPhases] = {"route", "wake", "quantize_x", "gate_up", "quantize_h", "down"};
  bool on = false;
  int64_t forwards = 0;
  int64_t total_ns[kPhases] = {};
  int64_t t_start = 0, t_launch = 0, t_b1 = 0, t_b2 = 0, t_b3 = 0;
  std::atomic<int64_t> last_wake{0};

  void add(int64_t t_end) {
    const int64_t wake = last_wake.load(std::memory_order_relaxed);
    const int64_t marks[kPhases + 1] = {t_start, t_launch, wake, t_b1, t_b2, t_b3, t_end};
    for (int i = 0; i < kPhases; ++i) total_ns[i] += marks[i + 1] - marks[i];
    ++forwards;
  }
  void woke(int64_t t) {
    int64_t seen = last_wake.load(std::memory_order_relaxed);
    while (t > seen && !last_wake.compare_exchange_weak(seen, t, std::memory_order_relaxed)) {}
  }
  void print() const {
    if (!on || forwards == 0) return;
    std::fprintf(stderr, "tandem: experts: phases over %lld forwards, us each:", (long long)forwards);
    int64_t sum = 0;
    for (int i = 0; i < kPhases; ++i) {
      std::fprintf(stderr, " %s %.1f", kNames[i], double(total_ns[i]) / 1e3 / double(forwards));
      sum += total_ns[i];
    }
    std::fprintf(stderr, " (total %.1f)\n", double(sum) / 1e3 / double(forwards));
  }
};

inline float silu(float v) { return v / (1.0f + std::exp(-v)); }

struct Matrix {  // one weight tensor's kernel and geometry
  GgmlType type;
  ActFormat act;
  RowDotManyFn dot;  // one weight row against several activation rows
  int64_t row_bytes;     // bytes of one row
  int64_t expert_bytes;  // bytes of one expert's matrix
  // Prefill layout of the type and its tile kernel for the ISA (nullptr: none).
  const RepackedFormat* repacked = nullptr;
  RepackedTileFn tile = nullptr;
};

// Which kernels run one matrix of one expert in a forward.
enum class Kernel { Rows, Repacked, Blas, Amx };

Matrix make_matrix(const char* what, GgmlType type, int64_t rows, int64_t cols, CpuIsa isa) {
  const auto& info = ggml_type_info(type);
  if (!info.can_compute) fail("expert ", what, " weights: type ", info.name, " is not supported");
  Matrix m{type, activation_format(type), row_dot_many_kernel(type, isa), 0, 0};
  m.repacked = repacked_format(type);
  m.tile = repacked_tile_kernel(type, isa);
  if (!m.tile) m.repacked = nullptr;
  const int64_t block = std::max<int64_t>(info.block_size, activation_block_elems(m.act));
  if (cols % block != 0)
    fail("expert ", what, " weights: row length ", cols, " is not a multiple of ", block, " (type ", info.name, ")");
  m.row_bytes = int64_t(ggml_row_bytes(type, uint64_t(cols)));
  m.expert_bytes = m.row_bytes * rows;
  return m;
}

void check_weights(const MoeLayerWeights& w) {
  if (!w.gate || !w.up || !w.down) fail("MoE layer: missing gate, up or down expert tensor");
  if (w.n_experts <= 0 || w.hidden <= 0 || w.ffn <= 0)
    fail("MoE layer: bad shape n_experts=", w.n_experts, " hidden=", w.hidden, " ffn=", w.ffn);
  if (w.n_experts > INT32_MAX) fail("MoE layer: ", w.n_experts, " experts is more than expert ids can name");
}

}  // namespace

struct MoeEngine::Impl {
  struct Layer {
    MoeLayerWeights w;
    Matrix gate, up, down;
    std::vector<int> owner;  // pool of each expert; -1: every pool has it
    // Per pool, per expert: where that pool reads the expert's matrices.
    std::vector<std::vector<const uint8_t*>> gate_at, up_at, down_at;
    std::vector<std::unique_ptr<NodeMemory>> copies;
    // Prefill layout (repacked.h), per pool and expert; empty when the layer has none.
    bool repacked_up = false, repacked_down = false;
    std::vector<std::vector<const uint8_t*>> gate_rp, up_rp, down_rp;
    int64_t repacked_bytes = 0;  // engine-owned bytes of the layout, all pools
    // Which matrices' GGUF bytes are still read from the mapping (resident once touched).
    bool mapped_gate_up = true, mapped_down = true;
    std::unique_ptr<AmxLayer> amx;  // isa Amx: AMX layout for experts with many tokens
  };

  // Scratch of one forward, per pool where threads write it.
  struct PoolScratch {
    AlignedBuffer x_gate, x_up, y, x_sums;
  };

  MoeEngineOptions options;
  CpuIsa isa;
  MoeEngineOptions::PrefillPath path;
  int64_t repack_min_tokens, blas_min_tokens;
  std::vector<NumaNodeCpus> plan;
  bool place_on_nodes = false;
  std::vector<std::unique_ptr<WorkerPool>> pools;
  std::vector<PoolScratch> scratch;
  std::vector<Layer> layers;
  AlignedBuffer h, hq;  // per routed (expert, token) pair: ffn floats, then quantized
  AlignedBuffer hq_sums;  // per pair: q8k_sub_block_sums of hq (repacked down only)
  AlignedBuffer xs;       // per pair: x of its token in fp32 (sgemm gate/up only)
  // Memory rule of the default prefill layout: layout bytes so far, and the last decision logged.
  int64_t repacked_total = 0;
  int last_repack_logged = -1;
  PhaseTimer phases;

  // Routing of the current forward, grouped by expert.
  std::vector<int32_t> pair_token;
  std::vector<float> pair_weight;
  std::vector<int64_t> expert_first_pair;  // per expert, pairs [first[e], first[e+1])
  std::vector<std::vector<int32_t>> pool_experts;  // active experts each pool computes

  explicit Impl(MoeEngineOptions opts) : options(std::move(opts)) {
    isa = options.isa ? *options.isa : selected_cpu_isa();
    if (!cpu_supports(isa)) fail("CPU ISA ", cpu_isa_name(isa), ": not supported by this CPU");
    path = prefill_path(options.prefill_path);
    repack_min_tokens = knobs::integer("TANDEM_REPACK_MIN_TOKENS", 1, int64_t(1) << 30, kRepackMinTokens);
    blas_min_tokens = knobs::integer("TANDEM_BLAS_MIN_TOKENS", 1, int64_t(1) << 30,
                                     options.blas_min_tokens > 0 ? options.blas_min_tokens : kBlasMinTokens);
    const bool synthetic = !options.synthetic_topology.empty();
    plan = plan_node_pools(read_cpu_topology(options.use_smt, options.synthetic_topology), options.threads_per_node,
                           options.reserved_cores);
    if (options.max_nodes > 0 && size_t(options.max_nodes) < plan.size()) plan.resize(size_t(options.max_nodes));
    place_on_nodes = !synthetic && ((plan.size() > 1 && numa_placement_available()) || options.copy_weights);
    for (const auto& node : plan) {
      std::vector<int> cpus = (options.pin_threads && !synthetic) ? node.pus : std::vector<int>{};
      pools.push_back(std::make_unique<WorkerPool>(std::move(cpus), int(node.pus.size())));
    }
    scratch = std::vector<PoolScratch>(pools.size());
    phases.on = knobs::flag("TANDEM_MOE_PHASES");
  }
  ~Impl() { phases.print(); }

  int add_layer(const MoeLayerWeights& w, const std::vector<uint8_t>& owned, const std::vector<int>& nodes) {
    check_weights(w);
    if (!owned.empty() && int64_t(owned.size()) != w.n_experts)
      fail("MoE layer: expert mask of ", owned.size(), " entries for ", w.n_experts, " experts");
    if (!nodes.empty() && int64_t(nodes.size()) != w.n_experts)
      fail("MoE layer: expert nodes of ", nodes.size(), " entries for ", w.n_experts, " experts");
    Layer L;
    L.w = w;
    L.gate = make_matrix("gate", w.gate_type, w.ffn, w.hidden, isa);
    L.up = make_matrix("up", w.up_type, w.ffn, w.hidden, isa);
    L.down = make_matrix("down", w.down_type, w.hidden, w.ffn, isa);
    const int n_pools = int(pools.size());
    // Owned experts are sharded in their order, so an all-true mask gives the unmasked plan.
    // Experts pinned to a node go to its pool; the others are sharded.
    std::vector<int64_t> mine;
    L.owner.assign(size_t(w.n_experts), kNotOwned);
    for (int64_t e = 0; e < w.n_experts; ++e) {
      if (!owned.empty() && !owned[size_t(e)]) continue;
      const int node = nodes.empty() ? -1 : nodes[size_t(e)];
      if (node < 0) {
        mine.push_back(e);
        continue;
      }
      if (options.replicate_experts) fail("MoE layer: expert ", e, " is pinned to node ", node, ", but experts are replicated");
      int pool = -1;
      for (size_t p = 0; p < plan.size(); ++p)
        if (plan[p].node == node) pool = int(p);
      if (pool < 0) fail("MoE layer: expert ", e, " is pinned to NUMA node ", node, ", which has no worker pool");
      L.owner[size_t(e)] = pool;
    }
    const std::vector<int> shard =
        options.replicate_experts || n_pools == 1 ? std::vector<int>() : shard_experts(int64_t(mine.size()), n_pools);
    for (size_t i = 0; i < mine.size(); ++i)
      L.owner[size_t(mine[i])] = shard.empty() ? (n_pools == 1 ? 0 : -1) : shard[i];
    L.gate_at.assign(size_t(n_pools), std::vector<const uint8_t*>(size_t(w.n_experts), nullptr));
    L.up_at = L.down_at = L.gate_at;
    // Where a layout covers gate, up and down, every token count runs on it (repacked tile from
    // repack_min_tokens = 1), so the as-stored bytes are only read once to repack: no
    // engine-owned copy of them, and the page cache may drop the mmapped pages.
    using P = MoeEngineOptions::PrefillPath;
    L.repacked_up = L.gate.repacked && L.up.repacked;
    L.repacked_down = L.down.repacked != nullptr;
    const bool layout_allowed = (L.repacked_up || L.repacked_down) && path != P::RowKernels && path != P::Blas;
    std::optional<bool> repack_decided;
    // AMX tiles serve Auto only: a forced path is what its name says on every ISA (Blas is fp32
    // end to end, RowKernels and Repacked the integer kernels).
    const bool amx_layer = isa == CpuIsa::Amx && path == P::Auto;
    if (layout_allowed && !amx_layer) repack_decided = repack_wanted(L);
    const bool skip_copy = repack_decided.value_or(false) && L.repacked_up && L.repacked_down &&
                           repack_min_tokens <= 1 && path == P::Auto;
    const size_t copy_bytes = size_t(L.gate.expert_bytes + L.up.expert_bytes + L.down.expert_bytes + 63) / 64 * 64;
    for (int p = 0; p < n_pools; ++p) {
      const auto mine_here = [&](int64_t e) {
        return L.owner[size_t(e)] != kNotOwned && (L.owner[size_t(e)] == -1 || L.owner[size_t(e)] == p);
      };
      uint8_t* next = nullptr;  // node-local copies: one block per pool and layer (huge pages)
      if (place_on_nodes && !skip_copy) {
        int64_t n = 0;
        for (int64_t e = 0; e < w.n_experts; ++e) n += mine_here(e);
        if (n > 0) {
          auto mem = std::make_unique<NodeMemory>(copy_bytes * size_t(n), plan.size() > 1 ? plan[size_t(p)].node : -1);
          next = mem->data();
          L.copies.push_back(std::move(mem));
        }
      }
      for (int64_t e = 0; e < w.n_experts; ++e) {
        if (!mine_here(e)) continue;
        const uint8_t* g = w.gate + e * L.gate.expert_bytes;
        const uint8_t* u = w.up + e * L.up.expert_bytes;
        const uint8_t* d = w.down + e * L.down.expert_bytes;
        if (next) {  // node-local copy; the mmapped file is only read
          uint8_t* dst = next;
          next += copy_bytes;
          std::memcpy(dst, g, size_t(L.gate.expert_bytes));
          std::memcpy(dst + L.gate.expert_bytes, u, size_t(L.up.expert_bytes));
          std::memcpy(dst + L.gate.expert_bytes + L.up.expert_bytes, d, size_t(L.down.expert_bytes));
          g = dst, u = dst + L.gate.expert_bytes, d = dst + L.gate.expert_bytes + L.up.expert_bytes;
        }
        L.gate_at[size_t(p)][size_t(e)] = g;
        L.up_at[size_t(p)][size_t(e)] = u;
        L.down_at[size_t(p)][size_t(e)] = d;
      }
    }
    if (place_on_nodes && !skip_copy) {
      // Every owned expert now reads its copy: the mapping is not read again by the engine.
      L.mapped_gate_up = L.mapped_down = false;
      if (options.release_mapped_sources) {
        release_mapped_pages(w.gate, L.gate.expert_bytes * w.n_experts);
        release_mapped_pages(w.up, L.up.expert_bytes * w.n_experts);
        release_mapped_pages(w.down, L.down.expert_bytes * w.n_experts);
      }
    }
    if (amx_layer) {
      std::vector<int> nodes;
      for (const auto& node : plan) nodes.push_back(place_on_nodes && plan.size() > 1 ? node.node : -1);
      L.amx = std::make_unique<AmxLayer>(w, L.gate_at, L.up_at, L.down_at, nodes);
    }
    // The vpdpbusd layout for what the AMX layout (if any) does not cover: never two copies.
    L.repacked_up = L.repacked_up && !(L.amx && L.amx->has_up());
    L.repacked_down = L.repacked_down && !(L.amx && L.amx->has_down());
    if (!repack_decided && layout_allowed && (L.repacked_up || L.repacked_down)) repack_decided = repack_wanted(L);
    const uint64_t owned_bytes =
        uint64_t(mine.size()) * uint64_t(L.gate.expert_bytes + L.up.expert_bytes + L.down.expert_bytes);
    if (repack_decided.value_or(false) && (L.repacked_up || L.repacked_down)) {
      // Where the tile runs at every token count, the matrices it covers are never read as
      // stored again: each expert's mapped pages go as soon as it is repacked, so at most one
      // expert per thread has its source and its copy resident at once (the load's peak).
      const bool release = options.release_mapped_sources && repack_min_tokens <= 1 && path == P::Auto;
      repack(L, owned_bytes, release);
      if (release) {  // the pages experts shared at their borders
        L.mapped_gate_up = L.mapped_gate_up && !L.repacked_up;
        L.mapped_down = L.mapped_down && !L.repacked_down;
        if (L.repacked_up) {
          release_mapped_pages(w.gate, L.gate.expert_bytes * w.n_experts);
          release_mapped_pages(w.up, L.up.expert_bytes * w.n_experts);
        }
        if (L.repacked_down) release_mapped_pages(w.down, L.down.expert_bytes * w.n_experts);
      }
    } else {
      L.repacked_up = L.repacked_down = false;
      if (options.on_load_bytes)
        options.on_load_bytes(L.amx                        ? "repacking experts (AMX)"
                              : place_on_nodes && !skip_copy ? "copying experts to NUMA nodes"
                                                             : "mapping experts",
                              owned_bytes);
    }
    repacked_total += L.repacked_bytes;
    layers.push_back(std::move(L));
    return int(layers.size() - 1);
  }

  // Bytes the prefill layout of a layer takes, over every pool that holds an expert.
  int64_t repack_extra_bytes(const Layer& L) const {
    int64_t copies = 0;
    for (int64_t e = 0; e < L.w.n_experts; ++e)
      copies += L.owner[size_t(e)] == -1 ? int64_t(pools.size()) : L.owner[size_t(e)] == kNotOwned ? 0 : 1;
    const int64_t gu = L.repacked_up ? 2 * L.gate.repacked->bytes(L.w.ffn, L.w.hidden) : 0;
    const int64_t d = L.repacked_down ? L.down.repacked->bytes(L.w.hidden, L.w.ffn) : 0;
    return copies * (gu + d);
  }

  // The option or TANDEM_PREFILL_REPACK when set; otherwise the memory rule (kRepack*Share).
  bool repack_wanted(const Layer& L) {
    if (options.repack_for_prefill) return *options.repack_for_prefill;
    if (knobs::value("TANDEM_PREFILL_REPACK")) return knobs::flag("TANDEM_PREFILL_REPACK");
    const int64_t extra = repack_extra_bytes(L);
    const MemInfo m = read_meminfo();
    const bool fits = m.total > 0 && double(extra) <= kRepackAvailableShare * double(m.available) &&
                      double(repacked_total + extra) <= kRepackTotalShare * double(m.total);
    if (int(fits) != last_repack_logged) {  // the first layer, and each change of decision
      std::fprintf(stderr,
                   "tandem: experts: prefill layout %s from layer %zu (+%.1f MB for this layer; %.1f GB available, "
                   "%.1f of %.1f GB total in layouts so far; TANDEM_PREFILL_REPACK=0/1 forces)\n",
                   fits ? "on" : "off", layers.size(), double(extra) / 1e6, double(m.available) / 1e9,
                   double(repacked_total + extra) / 1e9, double(m.total) / 1e9);
      last_repack_logged = int(fits);
    }
    return fits;
  }

  // Engine-owned copies of the K-quant matrices in the prefill layout, next to the as-stored
  // bytes the row kernels keep reading for small token counts.
  // Repacks each pool's experts on that pool's own (pinned) threads, the pools side by side:
  // the work is spread over every core, and the pages are first touched on their node.
  // report_bytes: the as-stored bytes reported to on_load_bytes over the repack, in pieces.
  // release: drop each expert's mapped source pages of the repacked matrices once repacked.
  void repack(Layer& L, uint64_t report_bytes, bool release) {
    const MoeLayerWeights& w = L.w;
    const int n_pools = int(pools.size());
    L.gate_rp.assign(size_t(n_pools), std::vector<const uint8_t*>(size_t(w.n_experts), nullptr));
    L.up_rp = L.down_rp = L.gate_rp;
    const int64_t g_bytes = L.repacked_up ? L.gate.repacked->bytes(w.ffn, w.hidden) : 0;
    const int64_t u_bytes = L.repacked_up ? L.up.repacked->bytes(w.ffn, w.hidden) : 0;
    const int64_t d_bytes = L.repacked_down ? L.down.repacked->bytes(w.hidden, w.ffn) : 0;
    const size_t bytes = size_t(g_bytes + u_bytes + d_bytes);
    const bool on_node = place_on_nodes && plan.size() > 1;
    std::vector<std::vector<int64_t>> todo(static_cast<size_t>(n_pools));  // experts each pool repacks
    for (int p = 0; p < n_pools; ++p) {
      // One block per pool and layer: per-expert blocks would each round up to a 2 MB huge page
      // (a 3.4 MB layout took 4 MB: +18 % resident on V2-Lite's shapes).
      int64_t n = 0;
      for (int64_t e = 0; e < w.n_experts; ++e) n += L.gate_at[size_t(p)][size_t(e)] != nullptr;
      if (n == 0) continue;
      auto mem = std::make_unique<NodeMemory>(bytes * size_t(n), on_node ? plan[size_t(p)].node : -1);
      uint8_t* next = mem->data();  // layouts are multiples of 64 bytes: each stays aligned
      L.copies.push_back(std::move(mem));
      for (int64_t e = 0; e < w.n_experts; ++e) {
        if (!L.gate_at[size_t(p)][size_t(e)]) continue;
        uint8_t* dst = next;
        next += bytes;
        if (L.repacked_up) {
          L.gate_rp[size_t(p)][size_t(e)] = dst;
          L.up_rp[size_t(p)][size_t(e)] = dst + g_bytes;
        }
        if (L.repacked_down) L.down_rp[size_t(p)][size_t(e)] = dst + g_bytes + u_bytes;
        L.repacked_bytes += int64_t(bytes);
        todo[size_t(p)].push_back(e);
      }
    }
    size_t items = 0;
    for (const auto& t : todo) items += t.size();
    const uint64_t per_item = items ? report_bytes / items : 0;
    const LoadBytesFn& report = options.on_load_bytes;
    for (int p = 0; p < n_pools; ++p) {
      WorkerPool& pool = *pools[size_t(p)];
      pool.start([&, p](int t) {
        const size_t pp = size_t(p);
        for (size_t i = size_t(t); i < todo[pp].size(); i += size_t(pool.size())) {
          const size_t e = size_t(todo[pp][i]);
          if (L.repacked_up) {
            L.gate.repacked->repack(L.gate_at[pp][e], L.gate.row_bytes, w.ffn, w.hidden,
                                    const_cast<uint8_t*>(L.gate_rp[pp][e]));
            L.up.repacked->repack(L.up_at[pp][e], L.up.row_bytes, w.ffn, w.hidden, const_cast<uint8_t*>(L.up_rp[pp][e]));
          }
          if (L.repacked_down)
            L.down.repacked->repack(L.down_at[pp][e], L.down.row_bytes, w.hidden, w.ffn,
                                    const_cast<uint8_t*>(L.down_rp[pp][e]));
          if (release) {  // the mapped source (gate_at may be a node copy: never madvise that)
            const int64_t i = int64_t(e);
            if (L.repacked_up) {
              release_mapped_pages(w.gate + i * L.gate.expert_bytes, L.gate.expert_bytes);
              release_mapped_pages(w.up + i * L.up.expert_bytes, L.up.expert_bytes);
            }
            if (L.repacked_down) release_mapped_pages(w.down + i * L.down.expert_bytes, L.down.expert_bytes);
          }
          if (report) report("repacking experts", per_item);
        }
      });
    }
    for (auto& pool : pools) pool->wait();
    if (report) report("repacking experts", report_bytes - per_item * items);
  }

  // A matrix that runs from its repacked copy at every token count: the process need not keep
  // the mapped GGUF pages it read to repack (they stay in the page cache, reclaimable, and fault
  // back in if read again), so resident memory holds these bytes once. Only whole pages inside
  // [p, p + n): a page shared with a neighbour still to be repacked stays.
  static void release_mapped_pages(const uint8_t* p, int64_t n) {
    static const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
    const uintptr_t first = (uintptr_t(p) + page - 1) & ~(page - 1);
    const uintptr_t last = (uintptr_t(p) + uintptr_t(n)) & ~(page - 1);
    if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
  }

  // The kernels of gate+up (repacked: both have the layout) or down for an expert with n tokens.
  Kernel kernel_for(bool repacked, int64_t n) const {
    using P = MoeEngineOptions::PrefillPath;
    switch (path) {
      case P::RowKernels: return Kernel::Rows;
      case P::Repacked: return repacked ? Kernel::Repacked : Kernel::Rows;
      case P::Blas: return Kernel::Blas;
      case P::Auto: break;
    }
    if (repacked && n >= repack_min_tokens) return Kernel::Repacked;
    if (n >= blas_min_tokens) return Kernel::Blas;
    return Kernel::Rows;
  }
  Kernel up_kernel(const Layer& L, int64_t n) const {
    if (L.amx && L.amx->has_up() && n >= L.amx->min_tokens()) return Kernel::Amx;
    return kernel_for(L.repacked_up, n);
  }
  Kernel down_kernel(const Layer& L, int64_t n) const {
    if (L.amx && L.amx->has_down() && n >= L.amx->min_tokens()) return Kernel::Amx;
    return kernel_for(L.repacked_down, n);
  }

  // Groups the (token, slot) pairs of owned experts by expert; returns how many there are.
  int64_t route(const Layer& L, int64_t n_tokens, const int32_t* ids, const float* weights, int k_used) {
    const int64_t n_experts = L.w.n_experts;
    expert_first_pair.assign(size_t(n_experts + 1), 0);
    for (int64_t i = 0; i < n_tokens * k_used; ++i) {
      const int32_t e = ids[i];
      if (e < 0 || e >= n_experts)
        fail("MoE forward: expert id ", e, " (token ", i / k_used, ", slot ", i % k_used, ") is out of range 0..",
             n_experts - 1);
      if (L.owner[size_t(e)] != kNotOwned) ++expert_first_pair[size_t(e) + 1];
    }
    for (int64_t e = 0; e < n_experts; ++e) expert_first_pair[size_t(e + 1)] += expert_first_pair[size_t(e)];
    const int64_t n_pairs = expert_first_pair.back();
    std::vector<int64_t> fill(expert_first_pair.begin(), expert_first_pair.end() - 1);
    pair_token.resize(size_t(n_pairs));
    pair_weight.resize(size_t(n_pairs));
    for (int64_t i = 0; i < n_tokens * k_used; ++i) {  // tokens stay in order within an expert
      if (L.owner[size_t(ids[i])] == kNotOwned) continue;
      const int64_t p = fill[size_t(ids[i])]++;
      pair_token[size_t(p)] = int32_t(i / k_used);
      pair_weight[size_t(p)] = weights[i];
    }
    pool_experts.assign(pools.size(), {});
    int next_pool = 0;  // replicated experts go round-robin, the busiest first
    std::vector<int32_t> active;
    for (int64_t e = 0; e < n_experts; ++e)
      if (expert_first_pair[size_t(e + 1)] > expert_first_pair[size_t(e)]) active.push_back(int32_t(e));
    std::stable_sort(active.begin(), active.end(), [&](int32_t a, int32_t b) { return pairs_of(a) > pairs_of(b); });
    for (int32_t e : active) {
      const int owner = L.owner[size_t(e)];
      if (owner >= 0) pool_experts[size_t(owner)].push_back(e);
      else pool_experts[size_t(next_pool++ % int(pools.size()))].push_back(e);
    }
    return n_pairs;
  }

  int64_t pairs_of(int32_t e) const { return expert_first_pair[size_t(e) + 1] - expert_first_pair[size_t(e)]; }

  void forward(int layer, const float* x, int64_t n_tokens, const int32_t* ids, const float* weights, int k_used,
               float* y) {
    if (phases.on) phases.t_start = now_ns();
    if (layer < 0 || size_t(layer) >= layers.size()) fail("MoE forward: no layer ", layer);
    if (n_tokens < 0 || k_used < 0) fail("MoE forward: bad n_tokens=", n_tokens, " k_used=", k_used);
    const Layer& L = layers[size_t(layer)];
    const int64_t hidden = L.w.hidden, ffn = L.w.ffn;
    const int64_t n_pairs = route(L, n_tokens, ids, weights, k_used);
    const int64_t hq_row = activation_row_bytes(L.down.act, ffn);
    h.reserve(size_t(std::max<int64_t>(n_pairs, 1) * ffn) * sizeof(float));
    hq.reserve(size_t(std::max<int64_t>(n_pairs, 1) * hq_row));
    if (L.repacked_down) hq_sums.reserve(size_t(std::max<int64_t>(n_pairs, 1) * (ffn / 32)) * sizeof(float));
    bool blas_up = false, blas = false;
    for (int64_t e = 0; e < L.w.n_experts; ++e) {
      if (pairs_of(int32_t(e)) == 0) continue;
      blas_up |= up_kernel(L, pairs_of(int32_t(e))) == Kernel::Blas;
      blas |= blas_up || down_kernel(L, pairs_of(int32_t(e))) == Kernel::Blas;
    }
    if (blas_up) xs.reserve(size_t(n_pairs * hidden) * sizeof(float));
    if (blas) blas_single_threaded();

    std::vector<int> running;
    for (size_t p = 0; p < pools.size(); ++p)
      if (!pool_experts[p].empty()) running.push_back(int(p));
    if (running.empty()) {
      std::memset(y, 0, size_t(n_tokens * hidden) * sizeof(float));
      return;
    }
    struct Counters {
      std::atomic<int64_t> up{0}, down{0};
    };
    std::vector<Counters> counters(pools.size());
    if (phases.on) phases.t_launch = now_ns(), phases.last_wake.store(0, std::memory_order_relaxed);
    for (size_t i = 0; i < running.size(); ++i) {
      const int p = running[i];
      float* out = y;
      if (i > 0) {
        scratch[size_t(p)].y.reserve(size_t(n_tokens * hidden) * sizeof(float));
        out = scratch[size_t(p)].y.as<float>();
      }
      pools[size_t(p)]->start([this, &L, &counters, p, x, n_tokens, out](int thread) {
        run_pool_job(L, p, thread, counters[size_t(p)].up, counters[size_t(p)].down, x, n_tokens, out);
      });
    }
    for (int p : running) pools[size_t(p)]->wait();
    if (phases.on && running[0] == 0) phases.add(now_ns());
    for (size_t i = 1; i < running.size(); ++i) {
      const float* part = scratch[size_t(running[i])].y.as<float>();
      for (int64_t k = 0; k < n_tokens * hidden; ++k) y[k] += part[k];
    }
  }

  // Rows r0..r1 (r0 a multiple of kRepackRows) of gate and up of expert e for its pairs
  // [first, last), from the repacked layout, SiLU(g) * u into h.
  void up_repacked(const Layer& L, int p, int32_t e, int64_t r0, int64_t r1, int64_t first, int64_t last,
                   const uint8_t* xg, int64_t xg_row, const float* x_sums, float* hbuf) const {
    const int64_t hidden = L.w.hidden, ffn = L.w.ffn;
    const int64_t g_group = L.gate.repacked->group_bytes(hidden), u_group = L.up.repacked->group_bytes(hidden);
    const uint8_t* gate = L.gate_rp[size_t(p)][size_t(e)];
    const uint8_t* up = L.up_rp[size_t(p)][size_t(e)];
    for (int64_t b0 = first; b0 < last; b0 += kTokenBlock) {
      const int64_t b1 = std::min(last, b0 + kTokenBlock);
      for (int64_t r = r0; r < r1; r += kRepackRows) {
        const int rows = int(std::min<int64_t>(kRepackRows, r1 - r));
        for (int64_t t0 = b0; t0 < b1; t0 += kRepackMaxTokens) {
          const int nt = int(std::min<int64_t>(kRepackMaxTokens, b1 - t0));
          const void* acts[kRepackMaxTokens];
          const float* sums[kRepackMaxTokens];
          for (int j = 0; j < nt; ++j) {
            const int64_t t = pair_token[size_t(t0 + j)];
            acts[j] = xg + t * xg_row;
            sums[j] = x_sums ? x_sums + t * (hidden / 32) : nullptr;
          }
          float g[kRepackMaxTokens * kRepackRows], u[kRepackMaxTokens * kRepackRows];
          L.gate.tile(gate + r / kRepackRows * g_group, hidden, acts, sums, nt, g);
          L.up.tile(up + r / kRepackRows * u_group, hidden, acts, sums, nt, u);
          for (int j = 0; j < nt; ++j)
            for (int i = 0; i < rows; ++i)
              hbuf[(t0 + j) * ffn + r + i] = silu(g[j * kRepackRows + i]) * u[j * kRepackRows + i];
        }
      }
    }
  }

  // Rows r0..r1 of down of expert e for its pairs, weighted into out.
  void down_repacked(const Layer& L, int p, int32_t e, int64_t r0, int64_t r1, int64_t first, int64_t last,
                     const uint8_t* hqbuf, int64_t hq_row, float* out) const {
    const int64_t hidden = L.w.hidden, ffn = L.w.ffn, group_bytes = L.down.repacked->group_bytes(ffn);
    const uint8_t* down = L.down_rp[size_t(p)][size_t(e)];
    const float* sums_all = L.down.repacked->uses_act_sums ? hq_sums.as<float>() : nullptr;
    for (int64_t b0 = first; b0 < last; b0 += kTokenBlock) {
      const int64_t b1 = std::min(last, b0 + kTokenBlock);
      for (int64_t r = r0; r < r1; r += kRepackRows) {
        const int rows = int(std::min<int64_t>(kRepackRows, r1 - r));
        for (int64_t t0 = b0; t0 < b1; t0 += kRepackMaxTokens) {
          const int nt = int(std::min<int64_t>(kRepackMaxTokens, b1 - t0));
          const void* acts[kRepackMaxTokens];
          const float* sums[kRepackMaxTokens];
          for (int j = 0; j < nt; ++j) {
            acts[j] = hqbuf + (t0 + j) * hq_row;
            sums[j] = sums_all ? sums_all + (t0 + j) * (ffn / 32) : nullptr;
          }
          float d[kRepackMaxTokens * kRepackRows];
          L.down.tile(down + r / kRepackRows * group_bytes, ffn, acts, sums, nt, d);
          for (int j = 0; j < nt; ++j) {
            float* o = out + pair_token[size_t(t0 + j)] * hidden + r;
            const float wj = pair_weight[size_t(t0 + j)];
            for (int i = 0; i < rows; ++i) o[i] += wj * d[j * kRepackRows + i];
          }
        }
      }
    }
  }

  // Rows r0..r1 of gate and up of expert e dequantized to fp32, times the pairs' fp32 x (xs) with
  // one sgemm each, SiLU(g) * u into h.
  void up_blas(const Layer& L, int p, int32_t e, int64_t r0, int64_t r1, int64_t first, int64_t last,
               float* hbuf) const {
    const int64_t hidden = L.w.hidden, ffn = L.w.ffn, rows = r1 - r0, n = last - first;
    thread_local std::vector<float> wg, wu, g, u;
    wg.resize(size_t(rows * hidden)), wu.resize(size_t(rows * hidden));
    g.resize(size_t(n * rows)), u.resize(size_t(n * rows));
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(L.gate.type, L.gate_at[size_t(p)][size_t(e)] + (r0 + r) * L.gate.row_bytes,
                     wg.data() + r * hidden, hidden);
      dequantize_row(L.up.type, L.up_at[size_t(p)][size_t(e)] + (r0 + r) * L.up.row_bytes, wu.data() + r * hidden,
                     hidden);
    }
    const float* x = xs.as<float>() + first * hidden;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(rows), int(hidden), 1.0f, x, int(hidden),
                wg.data(), int(hidden), 0.0f, g.data(), int(rows));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(rows), int(hidden), 1.0f, x, int(hidden),
                wu.data(), int(hidden), 0.0f, u.data(), int(rows));
    for (int64_t j = 0; j < n; ++j)
      for (int64_t r = 0; r < rows; ++r)
        hbuf[(first + j) * ffn + r0 + r] = silu(g[size_t(j * rows + r)]) * u[size_t(j * rows + r)];
  }

  // Rows r0..r1 of down of expert e dequantized, times the pairs' fp32 h, weighted into out.
  void down_blas(const Layer& L, int p, int32_t e, int64_t r0, int64_t r1, int64_t first, int64_t last,
                 const float* hbuf, float* out) const {
    const int64_t hidden = L.w.hidden, ffn = L.w.ffn, rows = r1 - r0, n = last - first;
    thread_local std::vector<float> wd, d;
    wd.resize(size_t(rows * ffn)), d.resize(size_t(n * rows));
    for (int64_t r = 0; r < rows; ++r)
      dequantize_row(L.down.type, L.down_at[size_t(p)][size_t(e)] + (r0 + r) * L.down.row_bytes,
                     wd.data() + r * ffn, ffn);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(rows), int(ffn), 1.0f, hbuf + first * ffn,
                int(ffn), wd.data(), int(ffn), 0.0f, d.data(), int(rows));
    for (int64_t j = 0; j < n; ++j) {
      float* o = out + pair_token[size_t(first + j)] * hidden + r0;
      const float wj = pair_weight[size_t(first + j)];
      for (int64_t r = 0; r < rows; ++r) o[r] += wj * d[size_t(j * rows + r)];
    }
  }

  // One pool's share of a forward; every worker of the pool runs it (SPMD).
  void run_pool_job(const Layer& L, int p, int thread, std::atomic<int64_t>& up_items,
                    std::atomic<int64_t>& down_items, const float* x, int64_t n_tokens, float* out) {
    WorkerPool& pool = *pools[size_t(p)];
    const int threads = pool.size();
    const int64_t hidden = L.w.hidden, ffn = L.w.ffn;
    const std::vector<int32_t>& experts = pool_experts[size_t(p)];
    PoolScratch& s = scratch[size_t(p)];
    const bool same_act = L.gate.act == L.up.act;
    const int64_t xg_row = activation_row_bytes(L.gate.act, hidden), xu_row = activation_row_bytes(L.up.act, hidden);
    const int64_t hq_row = activation_row_bytes(L.down.act, ffn);
    const bool up_sums = L.repacked_up && (L.gate.repacked->uses_act_sums || L.up.repacked->uses_act_sums);
    const bool down_sums = L.repacked_down && L.down.repacked->uses_act_sums;
    PhaseTimer* timer = phases.on && p == 0 ? &phases : nullptr;
    if (timer) timer->woke(now_ns());

    // Phase 0: quantize the tokens' activations (each pool its own copy, in its own memory).
    if (thread == 0) {
      s.x_gate.reserve(size_t(std::max<int64_t>(n_tokens, 1) * xg_row));
      if (!same_act) s.x_up.reserve(size_t(std::max<int64_t>(n_tokens, 1) * xu_row));
      if (up_sums) s.x_sums.reserve(size_t(std::max<int64_t>(n_tokens, 1) * (hidden / 32)) * sizeof(float));
    }
    pool.barrier();
    uint8_t* xg = s.x_gate.as<uint8_t>();
    uint8_t* xu = same_act ? xg : s.x_up.as<uint8_t>();
    for (int64_t t = thread; t < n_tokens; t += threads) {
      quantize_activation_row(L.gate.act, x + t * hidden, xg + t * xg_row, hidden);
      if (!same_act) quantize_activation_row(L.up.act, x + t * hidden, xu + t * xu_row, hidden);
      if (up_sums) q8k_sub_block_sums(xg + t * xg_row, hidden, s.x_sums.as<float>() + t * (hidden / 32));
    }
    {  // fp32 x of the pairs whose expert multiplies gate/up with sgemm, contiguous per expert
      int64_t k = 0;
      for (int32_t e : experts) {
        if (up_kernel(L, pairs_of(e)) != Kernel::Blas) continue;
        for (int64_t q = expert_first_pair[size_t(e)]; q < expert_first_pair[size_t(e) + 1]; ++q, ++k)
          if (k % threads == thread)
            std::memcpy(xs.as<float>() + q * hidden, x + pair_token[size_t(q)] * hidden, size_t(hidden) * sizeof(float));
      }
    }
    pool.barrier();
    if (timer && thread == 0) timer->t_b1 = now_ns();

    // Phase 1: gate and up rows of each expert against its tokens, SiLU(g) * u into h.
    float* hbuf = h.as<float>();
    // Tiles of at least 16 rows where any expert runs the repacked tile (whole groups) or sgemm.
    bool wide_up = false, wide_down = false;
    for (int32_t e : experts) {
      wide_up |= up_kernel(L, pairs_of(e)) != Kernel::Rows;
      wide_down |= down_kernel(L, pairs_of(e)) != Kernel::Rows;
    }
    const int64_t tile1 = row_tile(ffn, int64_t(experts.size()), threads, wide_up ? kRepackRows : kMinRowTile);
    const int64_t tiles_per_expert = (ffn + tile1 - 1) / tile1;
    const int64_t n_up_items = int64_t(experts.size()) * tiles_per_expert;
    const uint8_t* const* gate_at = L.gate_at[size_t(p)].data();
    const uint8_t* const* up_at = L.up_at[size_t(p)].data();
    const uint8_t* const* down_at = L.down_at[size_t(p)].data();
    for (int64_t item; (item = up_items.fetch_add(1, std::memory_order_relaxed)) < n_up_items;) {
      const int32_t e = experts[size_t(item / tiles_per_expert)];
      const int64_t r0 = item % tiles_per_expert * tile1, r1 = std::min(ffn, r0 + tile1);
      const int64_t first = expert_first_pair[size_t(e)], last = expert_first_pair[size_t(e) + 1];
      const Kernel kernel = up_kernel(L, last - first);
      if (kernel == Kernel::Amx) {
        L.amx->up(p, e, r0, r1, pair_token.data() + first, last - first, xg, xg_row, hbuf + first * ffn);
        continue;
      }
      if (kernel == Kernel::Repacked) {
        up_repacked(L, p, e, r0, r1, first, last, xg, xg_row, up_sums ? s.x_sums.as<float>() : nullptr, hbuf);
        continue;
      }
      if (kernel == Kernel::Blas) {
        up_blas(L, p, e, r0, r1, first, last, hbuf);
        continue;
      }
      for (int64_t b0 = first; b0 < last; b0 += kTokenBlock) {
        const int nb = int(std::min(last - b0, kTokenBlock));
        const void* xg_rows[kTokenBlock];
        const void* xu_rows[kTokenBlock];
        for (int j = 0; j < nb; ++j) {
          const int64_t t = pair_token[size_t(b0 + j)];
          xg_rows[j] = xg + t * xg_row;
          xu_rows[j] = xu + t * xu_row;
        }
        float g[kTokenBlock], u[kTokenBlock];
        for (int64_t r = r0; r < r1; ++r) {
          L.gate.dot(hidden, gate_at[e] + r * L.gate.row_bytes, xg_rows, nb, g);
          L.up.dot(hidden, up_at[e] + r * L.up.row_bytes, xu_rows, nb, u);
          for (int j = 0; j < nb; ++j) hbuf[(b0 + j) * ffn + r] = silu(g[j]) * u[j];
        }
      }
    }
    pool.barrier();
    if (timer && thread == 0) timer->t_b2 = now_ns();

    // Phase 1b: quantize h of this pool's pairs for the down kernel.
    uint8_t* hqbuf = hq.as<uint8_t>();
    {
      int64_t k = 0;
      for (int32_t e : experts)
        for (int64_t q = expert_first_pair[size_t(e)]; q < expert_first_pair[size_t(e) + 1]; ++q, ++k)
          if (k % threads == thread && down_kernel(L, pairs_of(e)) != Kernel::Blas) {
            quantize_activation_row(L.down.act, hbuf + q * ffn, hqbuf + q * hq_row, ffn);
            if (down_sums) q8k_sub_block_sums(hqbuf + q * hq_row, ffn, hq_sums.as<float>() + q * (ffn / 32));
          }
    }
    pool.barrier();
    if (timer && thread == 0) timer->t_b3 = now_ns();

    // Phase 2: down rows, weighted sum over the pool's experts into out (rows split among items).
    const int64_t tile2 = row_tile(hidden, 1, threads, wide_down ? kRepackRows : kMinRowTile);
    const int64_t n_down_items = (hidden + tile2 - 1) / tile2;
    for (int64_t item; (item = down_items.fetch_add(1, std::memory_order_relaxed)) < n_down_items;) {
      const int64_t r0 = item * tile2, r1 = std::min(hidden, r0 + tile2);
      for (int64_t t = 0; t < n_tokens; ++t) std::fill(out + t * hidden + r0, out + t * hidden + r1, 0.0f);
      for (int32_t e : experts) {
        const int64_t first = expert_first_pair[size_t(e)], last = expert_first_pair[size_t(e) + 1];
        const Kernel kernel = down_kernel(L, last - first);
        if (kernel == Kernel::Amx) {
          L.amx->down(p, e, r0, r1, hqbuf + first * hq_row, hq_row, last - first, pair_token.data() + first,
                      pair_weight.data() + first, out);
          continue;
        }
        if (kernel == Kernel::Repacked) {
          down_repacked(L, p, e, r0, r1, first, last, hqbuf, hq_row, out);
          continue;
        }
        if (kernel == Kernel::Blas) {
          down_blas(L, p, e, r0, r1, first, last, hbuf, out);
          continue;
        }
        for (int64_t b0 = first; b0 < last; b0 += kTokenBlock) {
          const int nb = int(std::min(last - b0, kTokenBlock));
          const void* h_rows[kTokenBlock];
          for (int j = 0; j < nb; ++j) h_rows[j] = hqbuf + (b0 + j) * hq_row;
          float d[kTokenBlock];
          for (int64_t r = r0; r < r1; ++r) {
            L.down.dot(ffn, down_at[e] + r * L.down.row_bytes, h_rows, nb, d);
            for (int j = 0; j < nb; ++j)
              out[pair_token[size_t(b0 + j)] * hidden + r] += pair_weight[size_t(b0 + j)] * d[j];
          }
        }
      }
    }
  }
};

MoeEngine::MoeEngine(MoeEngineOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
MoeEngine::~MoeEngine() = default;

int MoeEngine::add_layer(const MoeLayerWeights& weights, const std::vector<uint8_t>& owned,
                         const std::vector<int>& nodes) {
  return impl_->add_layer(weights, owned, nodes);
}

void MoeEngine::forward(int layer, const float* x, int64_t n_tokens, const int32_t* ids, const float* weights,
                        int k_used, float* y) {
  impl_->forward(layer, x, n_tokens, ids, weights, k_used, y);
}

CpuIsa MoeEngine::isa() const { return impl_->isa; }
int MoeEngine::n_nodes() const { return int(impl_->pools.size()); }
const std::vector<NumaNodeCpus>& MoeEngine::pools() const { return impl_->plan; }
int MoeEngine::total_threads() const {
  int n = 0;
  for (const auto& p : impl_->pools) n += p->size();
  return n;
}
int MoeEngine::expert_pool(int layer, int64_t expert) const {
  const auto& L = impl_->layers.at(size_t(layer));
  return L.owner.at(size_t(expert));
}
int64_t MoeEngine::owned_experts(int layer) const {
  const auto& owner = impl_->layers.at(size_t(layer)).owner;
  return int64_t(std::count_if(owner.begin(), owner.end(), [](int o) { return o != kNotOwned; }));
}
int64_t MoeEngine::repacked_bytes(int layer) const { return impl_->layers.at(size_t(layer)).repacked_bytes; }
ExpertMatrixMemory MoeEngine::host_bytes(int layer) const {
  const auto& L = impl_->layers.at(size_t(layer));
  ExpertMatrixMemory m;
  for (const auto& c : L.copies) m.owned += int64_t(c->size());
  if (L.amx) m.owned += L.amx->extra_bytes();
  const int64_t owned = owned_experts(layer);
  if (L.mapped_gate_up) m.mapped += owned * (L.gate.expert_bytes + L.up.expert_bytes);
  if (L.mapped_down) m.mapped += owned * L.down.expert_bytes;
  return m;
}

int64_t MoeEngine::expert_bytes(int layer) const {
  const auto& L = impl_->layers.at(size_t(layer));
  return L.gate.expert_bytes + L.up.expert_bytes + L.down.expert_bytes;
}

}  // namespace tandem
