#include "placement/tuning.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <tuple>

#include "placement/memory_budget.h"
#include "placement/rules.h"
#include "placement/tensor_kind.h"
#include "runtime/core/error.h"

namespace tandem::placement {

namespace {

constexpr uint64_t kMargin = 512ull << 20;  // the plan builder's fill margin, beside cap / 20

// Routed expert bytes of each layer (0 for dense layers).
std::vector<uint64_t> expert_bytes_by_layer(const ModelLayout& m) {
  std::vector<uint64_t> out(size_t(std::max<int64_t>(m.n_layer, 0)), 0);
  for (const ModelTensor& t : m.tensors)
    if (const auto c = classify_tensor(t.name); c && c->kind == TensorKind::RoutedExperts && c->layer >= 0 &&
                                                size_t(c->layer) < out.size())
      out[size_t(c->layer)] += t.bytes;
  return out;
}

bool usable_gpu(const TuneInputs& in) { return in.gpu >= 0 && size_t(in.gpu) < in.portrait.gpus.size(); }

// Per layer, the experts placed on the tuner's GPU.
using Assignment = std::vector<std::set<int64_t>>;

std::string device_text(const Device& d) { return d.str(); }

// Rules text for: non-expert parts on `dense` (defaults), the assigned experts on gpu:g, every
// other expert on the CPU (sharded or replicated).
std::string assignment_rules(const Assignment& a, int64_t n_expert, const Device& dense, int gpu, bool replicate,
                             const std::vector<std::string>& header) {
  std::ostringstream o;
  for (const std::string& h : header) o << "# " << h << "\n";
  o << "rules:\n";
  for (size_t l = 0; l < a.size();) {
    if (a[l].empty()) {
      ++l;
      continue;
    }
    size_t last = l;
    while (last + 1 < a.size() && a[last + 1] == a[l]) ++last;
    const std::vector<int64_t> list(a[l].begin(), a[l].end());
    const std::string layers = last == l ? std::to_string(l) : std::to_string(l) + "-" + std::to_string(last);
    o << "  - match: {kind: routed_experts, layers: \"" << layers << "\"";
    if (int64_t(list.size()) < n_expert) o << ", experts: \"" << expert_list_text(list) << "\"";
    o << "}\n    place: gpu:" << gpu << "\n";
    l = last + 1;
  }
  o << "  - match: {kind: routed_experts}\n    place: " << (replicate ? "cpu:replicate" : "cpu") << "\n";
  o << "defaults: {place: " << device_text(dense) << "}\n";
  return o.str();
}

PlacementPlan plan_of(const TuneInputs& in, const Topology& topo, const std::string& rules_text) {
  const Rules r = parse_rules_text(rules_text, "tune candidate");
  PlanOptions po;
  po.context = in.context;
  return make_plan(in.model, topo, &r, po);
}

bool plan_fits(const TuneInputs& in, const Topology& topo, const PlacementPlan& p) {
  PlanOptions po;
  po.context = in.context;
  return plan_budget(p, in.model, topo, po).fits();
}

int threads_on(const MachinePortrait& p, size_t node, int threads_per_node, int reserved) {
  const int cores = p.nodes[node].cores;
  int t = threads_per_node > 0 ? std::min(threads_per_node, cores) : cores;
  if (node == 0) t -= std::min(reserved, t - 1);
  return std::max(t, 1);
}

struct CpuRates {
  std::vector<double> bytes_per_s;  // per node: decode-sized reads
  double flops = 0;                 // all nodes: many-token work
};

CpuRates cpu_rates(const TuneInputs& in, int threads_per_node, int reserved) {
  const MachinePortrait& P = in.portrait;
  CpuRates r;
  const KernelRate* k = P.kernel(in.expert_type);
  for (size_t n = 0; n < P.nodes.size(); ++n) {
    const int t = threads_on(P, n, threads_per_node, reserved);
    double bw = P.node_bandwidth(int(n), t) * 1e9;
    if (k && k->threads > 0 && k->gemv_gb_per_s > 0) bw = std::min(bw, k->gemv_gb_per_s * 1e9 / k->threads * t);
    r.bytes_per_s.push_back(std::max(bw, 1e6));
    const double per_thread_flops = k && k->gemm_gflops > 0 && k->threads > 0 ? k->gemm_gflops * 1e9 / k->threads : 20e9;
    r.flops += per_thread_flops * t;
  }
  return r;
}

// Expected time of the slowest node for one token's CPU experts of a layer, experts sharded in
// contiguous ranges: a deterministic sample of routings by the hit rates.
double sharded_expert_seconds(const std::vector<double>& rates, const std::vector<bool>& on_cpu, double expert_bytes,
                              const std::vector<double>& node_bps, int64_t k, uint32_t seed) {
  const size_t n = rates.size(), nodes = node_bps.size();
  std::vector<double> w(rates);
  for (size_t e = 0; e < n; ++e) w[e] = std::max(w[e], 1e-9);
  std::mt19937 rng(seed);
  std::discrete_distribution<size_t> pick(w.begin(), w.end());
  constexpr int kSamples = 96;
  double sum = 0;
  std::vector<double> load(nodes);
  for (int s = 0; s < kSamples; ++s) {
    std::fill(load.begin(), load.end(), 0.0);
    std::set<size_t> chosen;
    for (int guard = 0; int64_t(chosen.size()) < std::min<int64_t>(k, int64_t(n)) && guard < 64 * k; ++guard) chosen.insert(pick(rng));
    for (size_t e : chosen)
      if (on_cpu[e]) load[e * nodes / n] += expert_bytes;
    double worst = 0;
    for (size_t d = 0; d < nodes; ++d) worst = std::max(worst, load[d] / node_bps[d]);
    sum += worst;
  }
  return sum / kSamples;
}

bool same_placement(const PlacementPlan& a, const PlacementPlan& b) {
  if (a.layers.size() != b.layers.size()) return false;
  for (size_t l = 0; l < a.layers.size(); ++l)
    if (a.layers[l].experts != b.layers[l].experts || !(a.layers[l].attention == b.layers[l].attention)) return false;
  return true;
}

}  // namespace

Topology tune_topology(const TuneInputs& in) {
  Topology t = in.portrait.topology();
  if (in.gpu_budget_bytes)
    for (GpuInfo& g : t.gpus) g.device_local_bytes = std::min(g.device_local_bytes, *in.gpu_budget_bytes);
  return t;
}

int64_t gpu_expert_room(const TuneInputs& in) {
  if (!usable_gpu(in) || in.model.n_expert <= 0) return 0;
  const Topology topo = tune_topology(in);
  const Assignment none(size_t(in.model.n_layer));
  const PlacementPlan p = plan_of(in, topo, assignment_rules(none, in.model.n_expert, Device::gpu(in.gpu), in.gpu, false, {}));
  PlanOptions po;
  po.context = in.context;
  const MemoryBudget b = plan_budget(p, in.model, topo, po);
  const uint64_t cap = b.gpu_capacity[size_t(in.gpu)];
  const uint64_t used = b.gpu_total[size_t(in.gpu)] + cap / 20 + kMargin;
  if (cap <= used) return 0;
  uint64_t per_expert = 0;
  for (uint64_t bytes : expert_bytes_by_layer(in.model)) per_expert = std::max(per_expert, bytes / uint64_t(in.model.n_expert));
  return per_expert ? int64_t((cap - used) / per_expert) : 0;
}

// The model's guess of what a MoE layer with GPU experts adds (a launch and a CPU-GPU sync);
// the calibration replaces it with a measured figure when it can.
constexpr double kGpuMoeLayerSeconds = 30e-6;

Prediction predict(const TuneInputs& in, const PlacementPlan& plan, int threads_per_node, bool replicate, int reserved_cores,
                   double decode_overhead_s, double prefill_overhead_s) {
  const MachinePortrait& P = in.portrait;
  const CpuRates cpu = cpu_rates(in, threads_per_node, reserved_cores);
  double cpu_total_bps = 0;
  for (double b : cpu.bytes_per_s) cpu_total_bps += b;
  const auto gpu_bps = [&](int g) {
    if (g < 0 || size_t(g) >= P.gpus.size()) return cpu_total_bps;
    const PortraitGpu& pg = P.gpus[size_t(g)];
    return pg.device_copy > 0 ? pg.device_copy * 1e9 : 20 * cpu_total_bps;
  };
  const std::vector<uint64_t> layer_bytes = expert_bytes_by_layer(in.model);
  const int64_t n_expert = std::max<int64_t>(in.model.n_expert, 1);
  const int64_t k = std::max<int64_t>(in.n_expert_used, 1);
  const double tokens = std::max(in.prompt_tokens, 1);

  // Dense bytes (everything but the routed experts and the embedding rows) per layer and device.
  std::vector<std::map<std::string, double>> dense(plan.layers.size());
  std::map<std::string, double> global;
  std::map<std::string, int> gpu_of;
  for (const auto& [name, t] : plan.tensors) {
    const auto c = classify_tensor(name);
    if (c && (c->kind == TensorKind::RoutedExperts || c->kind == TensorKind::TokenEmbd)) continue;
    const std::string d = t.device.str();
    if (t.device.is_gpu()) gpu_of[d] = t.device.index;
    if (c && c->layer >= 0 && size_t(c->layer) < dense.size()) dense[size_t(c->layer)][d] += double(t.bytes);
    else global[d] += double(t.bytes);
  }
  auto seconds_on = [&](const std::string& d, double bytes) {
    return d.rfind("gpu", 0) == 0 ? bytes / gpu_bps(gpu_of[d]) : bytes / cpu_total_bps;
  };

  Prediction out;
  double decode = 0, prefill = 0, gpu_hits = 0, all_hits = 0, decode_cpu = 0, prefill_cpu = 0;
  for (size_t l = 0; l < plan.layers.size(); ++l) {
    double dense_s = 0, dense_prefill_s = 0;
    for (const auto& [d, bytes] : dense[l]) {
      dense_s += seconds_on(d, bytes);
      if (d.rfind("gpu", 0) != 0) dense_prefill_s += 2 * tokens * bytes * in.expert_params_per_byte / cpu.flops;
      (d.rfind("gpu", 0) == 0 ? out.gpu_bytes_per_token : out.cpu_bytes_per_token) += uint64_t(bytes);
    }
    const LayerPlacement& L = plan.layers[l];
    double cpu_s = 0, gpu_s = 0, cpu_prefill_s = 0, gpu_prefill_s = 0;
    bool any_gpu = false;
    if (!L.experts.empty() && layer_bytes[l] > 0) {
      const double eb = double(layer_bytes[l]) / double(n_expert);
      const std::vector<double> rates = in.stats ? in.stats->smoothed_hit_rates(int64_t(l))
                                                 : std::vector<double>(size_t(n_expert), double(k) / double(n_expert));
      std::vector<bool> on_cpu(size_t(n_expert), true);
      double cpu_bytes = 0, gpu_bytes = 0, cpu_flops = 0, gpu_flops = 0, cpu_touched = 0, gpu_touched = 0;
      for (size_t e = 0; e < size_t(n_expert) && e < L.experts.size(); ++e) {
        const double rate = std::clamp(e < rates.size() ? rates[e] : 0.0, 0.0, 1.0);
        all_hits += rate;
        // Of a prompt's tokens, the chance at least one routes to e: its weights are read once.
        const double touched = (1 - std::pow(1 - rate, tokens)) * eb;
        const double flops = 2 * tokens * rate * eb * in.expert_params_per_byte;  // its token-expert pairs
        if (L.experts[e].is_gpu()) {
          on_cpu[e] = false, any_gpu = true;
          gpu_bytes += rate * eb, gpu_hits += rate, gpu_flops += flops, gpu_touched += touched;
        } else {
          cpu_bytes += rate * eb, cpu_flops += flops, cpu_touched += touched;
        }
      }
      if (P.nodes.size() > 1 && !replicate)
        cpu_s = sharded_expert_seconds(rates, on_cpu, eb, cpu.bytes_per_s, k, uint32_t(l) * 7919u + 1);
      else
        cpu_s = cpu_bytes / cpu_total_bps;
      const int g = L.experts.empty() ? -1 : [&] {
        for (const Device& d : L.experts)
          if (d.is_gpu()) return d.index;
        return -1;
      }();
      // GPU experts are not free: their activated bytes at the on-device rate, and in prefill
      // each touched one read once plus its multiply-adds (the portrait has no GPU GEMM rate:
      // assumed 100 flops per byte of its on-device bandwidth, ~55 TFLOP/s on an H200).
      gpu_s = gpu_bytes / gpu_bps(g);
      gpu_prefill_s = gpu_touched / gpu_bps(g) + gpu_flops / (100 * gpu_bps(g));
      // CPU prefill: the GEMM rate on its token-expert pairs plus reading each touched expert
      // once; or, with a hardware GPU and a long enough prompt, the touched CPU experts streamed
      // over PCIe (pinned h2d) and computed there, whichever is quicker.
      cpu_prefill_s = cpu_flops / cpu.flops + cpu_touched / cpu_total_bps;
      if (usable_gpu(in) && !P.gpus[size_t(in.gpu)].software && P.gpus[size_t(in.gpu)].h2d_pinned > 0)
        cpu_prefill_s = std::min(cpu_prefill_s, cpu_touched / (P.gpus[size_t(in.gpu)].h2d_pinned * 1e9) +
                                                    cpu_flops / (100 * gpu_bps(in.gpu)));
      out.cpu_bytes_per_token += uint64_t(cpu_bytes);
      out.gpu_bytes_per_token += uint64_t(gpu_bytes);
    }
    // CPU and GPU experts of a layer are added, not overlapped: the engine waits for both before
    // the next layer, and a linear sum lets the tuner fit a scale of the CPU part (tune.cpp). A
    // layer with GPU experts also pays a launch and a CPU-GPU sync.
    const double sync_s = any_gpu ? kGpuMoeLayerSeconds : 0;
    out.gpu_expert_layers += any_gpu ? 1 : 0;
    decode += dense_s + cpu_s + gpu_s + sync_s;
    decode_cpu += cpu_s;
    prefill += dense_prefill_s + cpu_prefill_s + gpu_prefill_s + sync_s;
    prefill_cpu += cpu_prefill_s;
  }
  for (const auto& [d, bytes] : global) {
    decode += seconds_on(d, bytes);
    if (d.rfind("gpu", 0) != 0) prefill += 2 * tokens * bytes * in.expert_params_per_byte / cpu.flops;
  }
  // Ceiling: a batched prompt shares each weight read among its tokens, but of the non-CPU part
  // (dense, GPU experts, syncs) no more than kMaxBatchGain times a decode token's cost comes off,
  // so an all-GPU plan cannot predict a prefill of hundreds of thousands of tokens per second.
  // (Not on the CPU part: a portrait's GEMV rate can be far off and would make the floor bind.)
  constexpr double kMaxBatchGain = 64;
  prefill = prefill_cpu + std::max(prefill - prefill_cpu, tokens * (decode - decode_cpu) / kMaxBatchGain);
  out.gpu_layer_seconds = kGpuMoeLayerSeconds;
  out.decode_seconds = decode;
  out.prefill_seconds = prefill;
  out.decode_cpu_seconds = decode_cpu;
  out.prefill_cpu_seconds = prefill_cpu;
  out.gpu_expert_hit_rate = all_hits > 0 ? gpu_hits / all_hits : 0;
  out.decode_tokens_per_s = 1.0 / std::max(decode + decode_overhead_s, 1e-9);
  out.prefill_tokens_per_s = tokens / std::max(prefill + prefill_overhead_s * tokens, 1e-9);
  return out;
}

Prediction calibrated(const Prediction& raw, const Calibration& c, int prompt_tokens) {
  Prediction p = raw;
  const double tokens = std::max(prompt_tokens, 1);
  const double layers = raw.gpu_expert_layers;
  const double model_layers_s = layers * raw.gpu_layer_seconds;
  const double dl = c.decode_gpu_layer_s >= 0 ? c.decode_gpu_layer_s : raw.gpu_layer_seconds;
  const double pl = c.prefill_gpu_layer_s >= 0 ? c.prefill_gpu_layer_s : raw.gpu_layer_seconds;
  // Never below a tenth of the model's own figure: a fit on noisy plans must not predict 0 s.
  const double d = std::max(c.decode_fixed_s + c.decode_cpu_scale * raw.decode_cpu_seconds + layers * dl +
                                (raw.decode_seconds - raw.decode_cpu_seconds - model_layers_s),
                            0.1 * raw.decode_seconds);
  const double pf = std::max(c.prefill_fixed_s * tokens + c.prefill_cpu_scale * raw.prefill_cpu_seconds + layers * pl +
                                 (raw.prefill_seconds - raw.prefill_cpu_seconds - model_layers_s),
                             0.1 * raw.prefill_seconds);
  p.decode_tokens_per_s = 1.0 / std::max(d, 1e-12);
  p.prefill_tokens_per_s = tokens / std::max(pf, 1e-12);
  return p;
}

namespace {

// A measured plan as the fit sees it: its raw CPU part, its MoE layers with GPU experts, the rest
// of the raw figure (without the model's per-layer guess), and the measured seconds.
struct FitPoint {
  double cpu = 0, layers = 0, rest = 0, measured = 0;
};

// Fit fixed + scale * cpu + rest = measured seconds through the points; one point: scale 1.
// The scale is wide open (1/50..50): a portrait's GEMV rate can be far off the engine's.
std::pair<double, double> fit_line(const std::vector<FitPoint>& pts) {
  if (pts.empty()) return {0, 1};
  double scale = 1;
  if (pts.size() >= 2) {
    const FitPoint& a = pts[0];
    const FitPoint& b = pts[1];
    const double dc = a.cpu - b.cpu;
    if (std::abs(dc) > 0.05 * std::max(a.cpu, b.cpu) && std::abs(dc) > 0)
      scale = std::clamp(((a.measured - a.rest) - (b.measured - b.rest)) / dc, 0.02, 50.0);
  }
  double fixed = 0, cpu = 0, left = 0;
  for (const FitPoint& p : pts) fixed += p.measured - p.rest - scale * p.cpu, cpu += p.cpu, left += p.measured - p.rest;
  fixed /= double(pts.size());
  // A negative fixed cost means the model's CPU part is too slow: scale it down instead.
  if (fixed < 0 && cpu > 0) return {0.0, std::clamp(left / cpu, 0.02, 50.0)};
  return {std::max(fixed, 0.0), scale};
}

struct Fit3 {
  double fixed = 0, scale = 1, layer = -1;
  bool ok = false;
};

// fixed + scale * cpu + layer * layers + rest = measured through three points (Cramer's rule),
// accepted when the system is well conditioned and every parameter is plausible.
Fit3 fit_plane(const std::vector<FitPoint>& p) {
  Fit3 f;
  if (p.size() < 3) return f;
  const double m[3][3] = {{1, p[0].cpu, p[0].layers}, {1, p[1].cpu, p[1].layers}, {1, p[2].cpu, p[2].layers}};
  const double y[3] = {p[0].measured - p[0].rest, p[1].measured - p[1].rest, p[2].measured - p[2].rest};
  auto det = [](const double a[3][3]) {
    return a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
           a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
  };
  const double d = det(m);
  // Scale of the columns: a determinant this small against them means two plans say the same.
  double cmax = 0, lmax = 0;
  for (const FitPoint& q : p) cmax = std::max(cmax, q.cpu), lmax = std::max(lmax, q.layers);
  if (cmax <= 0 || lmax <= 0 || std::abs(d) < 0.05 * cmax * lmax) return f;
  double sol[3];
  for (int k = 0; k < 3; ++k) {
    double a[3][3];
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) a[i][j] = j == k ? y[i] : m[i][j];
    sol[k] = det(a) / d;
  }
  f.fixed = sol[0], f.scale = sol[1], f.layer = sol[2];
  f.ok = f.fixed >= 0 && f.scale >= 0.02 && f.scale <= 50 && f.layer >= 0;
  return f;
}

}  // namespace

Calibration fit_calibration(const std::vector<const Candidate*>& measured, int prompt_tokens) {
  std::vector<FitPoint> dec, pre;
  const double tokens = std::max(prompt_tokens, 1);
  for (const Candidate* c : measured) {
    if (!c || !c->measured_decode || !c->measured_prefill || *c->measured_decode <= 0 || *c->measured_prefill <= 0) continue;
    const Prediction& r = c->predicted;
    const double layers = r.gpu_expert_layers, guess = layers * r.gpu_layer_seconds;
    dec.push_back({r.decode_cpu_seconds, layers, r.decode_seconds - r.decode_cpu_seconds - guess, 1.0 / *c->measured_decode});
    pre.push_back({r.prefill_cpu_seconds, layers, r.prefill_seconds - r.prefill_cpu_seconds - guess, tokens / *c->measured_prefill});
    if (dec.size() == 3) break;
  }
  Calibration out;
  out.points = int(dec.size());
  // The two-plan fit keeps the model's per-layer guess: put it back into the rest.
  auto with_guess = [&](std::vector<FitPoint> pts, double guess_per_layer) {
    for (FitPoint& q : pts) q.rest += q.layers * guess_per_layer;
    return pts;
  };
  const double guess = kGpuMoeLayerSeconds;
  const Fit3 d3 = fit_plane(dec), p3 = fit_plane(pre);
  if (d3.ok) {
    out.decode_fixed_s = d3.fixed, out.decode_cpu_scale = d3.scale, out.decode_gpu_layer_s = d3.layer;
  } else {
    std::tie(out.decode_fixed_s, out.decode_cpu_scale) = fit_line(with_guess(dec, guess));
  }
  if (p3.ok) {
    out.prefill_fixed_s = p3.fixed / tokens, out.prefill_cpu_scale = p3.scale, out.prefill_gpu_layer_s = p3.layer;
  } else {
    const auto [pf, ps] = fit_line(with_guess(pre, guess));
    out.prefill_fixed_s = pf / tokens, out.prefill_cpu_scale = ps;
  }
  return out;
}

int64_t stream_threshold_tokens(const TuneInputs& in, const PlacementPlan& plan, int threads_per_node) {
  if (!usable_gpu(in) || in.portrait.gpus[size_t(in.gpu)].software) return 0;
  const double h2d = in.portrait.gpus[size_t(in.gpu)].h2d_pinned * 1e9;
  const CpuRates cpu = cpu_rates(in, threads_per_node, 0);
  const std::vector<uint64_t> layer_bytes = expert_bytes_by_layer(in.model);
  double cpu_bytes = 0;  // every CPU-placed expert byte: what a streamed prompt moves
  for (size_t l = 0; l < plan.layers.size(); ++l) {
    int64_t on_cpu = 0;
    for (const Device& d : plan.layers[l].experts) on_cpu += d.is_cpu();
    if (in.model.n_expert > 0) cpu_bytes += double(layer_bytes[l]) * double(on_cpu) / double(in.model.n_expert);
  }
  if (cpu_bytes <= 0) return 0;
  // CPU cost of one token's routed work: k/n of the CPU experts' weights, 2 flops per weight.
  const double per_token_flops = 2 * cpu_bytes * in.expert_params_per_byte * double(in.n_expert_used) /
                                 double(std::max<int64_t>(in.model.n_expert, 1));
  const double stream_s = cpu_bytes / h2d;
  return int64_t(std::ceil(stream_s / (per_token_flops / cpu.flops)));
}

std::string rules_from_plan(const PlacementPlan& plan, const std::vector<std::string>& header, bool replicate) {
  Assignment a(plan.layers.size());
  int gpu = 0;
  int64_t n_expert = 0;
  for (size_t l = 0; l < plan.layers.size(); ++l) {
    n_expert = std::max<int64_t>(n_expert, int64_t(plan.layers[l].experts.size()));
    for (size_t e = 0; e < plan.layers[l].experts.size(); ++e)
      if (plan.layers[l].experts[e].is_gpu()) a[l].insert(int64_t(e)), gpu = plan.layers[l].experts[e].index;
  }
  Device dense = Device::cpu();
  for (const LayerPlacement& l : plan.layers) dense = l.attention;
  if (plan.layers.empty()) dense = plan.output;
  return assignment_rules(a, n_expert, dense, gpu, replicate, header);
}

std::vector<Candidate> tune_candidates(const TuneInputs& in) {
  if (in.model.n_layer <= 0) fail("tune: the model has no layers");
  if (in.stats && (in.stats->n_expert != in.model.n_expert || in.stats->n_layer != in.model.n_layer))
    fail("tune: the expert statistics are for ", in.stats->n_layer, " layers x ", in.stats->n_expert,
         " experts, the model has ", in.model.n_layer, " x ", in.model.n_expert, " (profile this model with `tandem profile-experts`)");
  const Topology topo = tune_topology(in);
  const MachinePortrait& P = in.portrait;
  const std::vector<uint64_t> layer_bytes = expert_bytes_by_layer(in.model);
  std::vector<size_t> moe_layers;
  for (size_t l = 0; l < layer_bytes.size(); ++l)
    if (layer_bytes[l] > 0) moe_layers.push_back(l);
  const int64_t n_expert = in.model.n_expert;
  const int64_t room = std::min<int64_t>(gpu_expert_room(in), int64_t(moe_layers.size()) * n_expert);
  std::vector<Candidate> out;

  // Thread and sharding variants of one placement.
  std::vector<int> thread_options = {0};
  if (!P.scaling.empty() && P.scaling.front().saturates_at > 0 && P.scaling.front().saturates_at < P.nodes.front().cores)
    thread_options.push_back(P.scaling.front().saturates_at);
  auto add = [&](const std::string& name, const std::string& what, const Assignment& a, const Device& dense, int64_t count) {
    std::vector<bool> replicas = {false};
    if (P.nodes.size() > 1) replicas.push_back(true);
    std::vector<int> reserves = {0};
    if (dense.is_gpu() && P.nodes.front().cores > 1) reserves.push_back(1);
    for (bool rep : replicas)
      for (int threads : thread_options)
        for (int reserve : reserves) {
          Candidate c;
          c.name = name;
          c.what = what;
          c.replicate = rep, c.threads_per_node = threads, c.reserved_cores = reserve, c.gpu_experts = count;
          c.plan = plan_of(in, topo, assignment_rules(a, n_expert, dense, in.gpu, rep, {}));
          const bool seen = std::any_of(out.begin(), out.end(), [&](const Candidate& o) {
            return o.replicate == rep && o.threads_per_node == threads && o.reserved_cores == reserve && same_placement(o.plan, c.plan);
          });
          if (seen) continue;  // e.g. every expert fits: the even spread, hot experts and layers in order agree
          c.fits = plan_fits(in, topo, c.plan);
          if (!c.fits && (rep || threads || reserve)) continue;  // only the plain variant reports not fitting
          c.predicted = predict(in, c.plan, threads, rep, reserve);
          out.push_back(std::move(c));
        }
  };

  // The automatic plan (what a command does without flags), made for the budgeted machine
  // without CPU-backed GPUs (which it never picks), as explicit lists.
  {
    Topology auto_topo = topo;
    auto_topo.gpus.erase(std::remove_if(auto_topo.gpus.begin(), auto_topo.gpus.end(), [](const GpuInfo& g) { return g.software; }),
                         auto_topo.gpus.end());
    PlanOptions po;
    po.context = in.context;
    const PlacementPlan automatic = make_plan(in.model, auto_topo, nullptr, po);
    Candidate c;
    c.name = "automatic";
    c.what = "the automatic plan (no flags): with a hardware GPU, whole layers of experts on it while VRAM lasts";
    Assignment a(automatic.layers.size());
    for (size_t l = 0; l < automatic.layers.size(); ++l)
      for (size_t e = 0; e < automatic.layers[l].experts.size(); ++e)
        if (automatic.layers[l].experts[e].is_gpu()) a[l].insert(int64_t(e)), ++c.gpu_experts;
    const Device dense = automatic.layers.empty() ? Device::cpu() : automatic.layers.front().attention;
    c.plan = plan_of(in, topo, assignment_rules(a, n_expert, dense, 0, false, {}));
    c.fits = plan_fits(in, topo, c.plan);
    c.predicted = predict(in, c.plan, 0, false, 0);
    out.push_back(std::move(c));
  }
  if (!usable_gpu(in)) {
    add("cpu", "every part on the CPU", Assignment(size_t(in.model.n_layer)), Device::cpu(), 0);
    return out;
  }
  const Device gpu = Device::gpu(in.gpu);
  // Even spread: the same number of GPU experts per MoE layer, the lowest indices (what
  // rules/hot-experts-gpu.yaml does without statistics).
  {
    Assignment a(size_t(in.model.n_layer));
    int64_t left = room;
    for (size_t i = 0; i < moe_layers.size(); ++i) {
      const int64_t m = room / int64_t(moe_layers.size()) + (int64_t(i) < room % int64_t(moe_layers.size()) ? 1 : 0);
      for (int64_t e = 0; e < std::min(m, n_expert) && left > 0; ++e, --left) a[moe_layers[i]].insert(e);
    }
    add("even spread", "experts 0..m-1 of every MoE layer on the GPU (" + std::to_string(room) + " experts)", a, gpu, room);
  }
  // Hot experts: the `room` (layer, expert) pairs most often routed to, over all layers.
  if (in.stats) {
    std::vector<std::pair<double, std::pair<size_t, int64_t>>> all;
    for (size_t l : moe_layers) {
      const std::vector<double> rates = in.stats->smoothed_hit_rates(int64_t(l));
      for (int64_t e = 0; e < n_expert; ++e) all.push_back({rates[size_t(e)], {l, e}});
    }
    std::stable_sort(all.begin(), all.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
    Assignment a(size_t(in.model.n_layer));
    for (int64_t i = 0; i < room && size_t(i) < all.size(); ++i) a[all[size_t(i)].second.first].insert(all[size_t(i)].second.second);
    add("hot experts", "the " + std::to_string(room) + " most routed (layer, expert) pairs of the statistics on the GPU", a, gpu, room);
  }
  // Layers in order: whole layers while the room lasts, the rest of the room in the next layer
  // (what `fill: true` does, plus the remainder). Few layers with GPU experts against the even
  // spread's many: the tuner's third calibration plan (the per-layer cost of GPU experts).
  {
    Assignment a(size_t(in.model.n_layer));
    int64_t left = room, count = 0, whole = 0;
    for (size_t l : moe_layers) {
      if (left <= 0) break;
      const int64_t m = std::min(left, n_expert);
      for (int64_t e = 0; e < m; ++e) a[l].insert(e);
      left -= m, count += m, whole += m == n_expert;
    }
    const int64_t part = count - whole * n_expert;
    if (count > 0)
      add("layers in order", std::to_string(whole) + " whole layers of experts on the GPU" +
                                 (part ? " and " + std::to_string(part) + " of the next" : std::string()),
          a, gpu, count);
  }
  add("no GPU experts", "dense parts on the GPU, every routed expert on the CPU", Assignment(size_t(in.model.n_layer)), gpu, 0);
  // Fitting candidates by predicted decode speed, the automatic plan first.
  std::stable_sort(out.begin() + 1, out.end(), [](const Candidate& a, const Candidate& b) {
    if (a.fits != b.fits) return a.fits;
    return a.predicted.decode_tokens_per_s > b.predicted.decode_tokens_per_s;
  });
  return out;
}

}  // namespace tandem::placement
