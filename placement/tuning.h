// `tandem tune`'s search: candidate placements of a model on a machine described by its portrait
// (placement/machine_portrait.h), each with a predicted decode and prefill speed, written as
// ordinary rules files (explicit per-layer expert lists, so a plan reads the same on any GPU).
//
// The prediction is a bandwidth model. Decode: per MoE layer, the CPU reads the expected bytes
// of the experts it owns (hit rate x expert bytes, from the routing statistics smoothed toward
// uniform by their sample size, or uniform k/n) at the node pools' bandwidth (the portrait's
// scaling curve at the chosen threads, capped by the kernel's GEMV rate, sharded pools waiting
// for the most loaded node), the GPU reads its experts' activated bytes and the dense weights at
// its on-device rate, plus a launch/sync per MoE layer with GPU experts; the parts add up.
// Prefill of P tokens: per layer the experts touched, sum_e 1-(1-p_e)^P, are each read once,
// the CPU's token-expert pairs run at the kernel's GEMM rate (or its touched experts stream to
// the GPU over pinned h2d where that is quicker), the GPU's at an assumed rate; a
// ceiling keeps a prompt token at least 1/64 of a decode token's cost. The tuner then fits up to
// three parameters per figure on its first measured plans (fit_calibration): a fixed per-token
// cost (kernel launches, attention), a scale of the CPU part, and the cost of a MoE layer with
// GPU experts (their kernels and the CPU-GPU hand-over, which a bandwidth model cannot see: on
// the H200 box ~0.6 ms per layer, twenty times the model's launch-and-sync guess).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "placement/expert_stats.h"
#include "placement/machine_portrait.h"
#include "placement/plan.h"
#include "placement/plan_builder.h"

namespace tandem::placement {

struct TuneInputs {
  ModelLayout model;
  int64_t n_expert_used = 0;
  double expert_params_per_byte = 2;  // weights per byte of the routed experts' type (q4_K: 256/144)
  std::string expert_type = "q4_K";   // kernel rate lookup
  MachinePortrait portrait;
  std::optional<ExpertStats> stats;   // none: uniform routing
  uint32_t context = 4096;
  std::optional<uint64_t> gpu_budget_bytes;  // VRAM the plan may use on the GPU (default: all)
  int gpu = 0;                               // GPU the candidates use (if the portrait has one)
  int prompt_tokens = 512;                   // prefill figure's prompt length
};

struct Prediction {
  double decode_tokens_per_s = 0, prefill_tokens_per_s = 0;
  double decode_seconds = 0, prefill_seconds = 0;  // per token / per prompt, before calibration
  double decode_cpu_seconds = 0, prefill_cpu_seconds = 0;  // their CPU-expert part (what the fit scales)
  int gpu_expert_layers = 0;       // MoE layers with experts on a GPU (each pays gpu_layer_seconds)
  double gpu_layer_seconds = 0;    // the model's guess of that cost per layer, in both figures
  uint64_t cpu_bytes_per_token = 0, gpu_bytes_per_token = 0;
  double gpu_expert_hit_rate = 0;  // share of routed picks that land on GPU experts
};

struct Candidate {
  std::string name;  // "automatic", "even spread", "hot experts", ...
  std::string what;  // one line: what differs
  PlacementPlan plan;
  int threads_per_node = 0;  // 0: every core
  int reserved_cores = 0;    // cores left for the GPU feeder
  bool replicate = false;    // CPU experts: a copy per node instead of a shard
  int64_t gpu_experts = 0;
  bool fits = true;
  Prediction predicted;
  std::optional<double> measured_decode, measured_prefill;  // tokens/s
  bool tried = false;        // measuring was attempted
  bool calibration = false;  // its measurement calibrated the fixed cost of its path
};

// The model's expert-placement room: routed experts that fit on the GPU after everything else
// the plan puts there, the KV cache for `context` and the builder's margin.
int64_t gpu_expert_room(const TuneInputs& in);
// The machine the candidates are planned for: the portrait's topology, the GPU capped at the budget.
Topology tune_topology(const TuneInputs& in);
// Predicted speed of a plan with these CPU settings.
Prediction predict(const TuneInputs& in, const PlacementPlan& plan, int threads_per_node, bool replicate,
                   int reserved_cores, double decode_overhead_s = 0, double prefill_overhead_s = 0);
// Calibration of a path (CPU only, or with a GPU) from measured plans: seconds = fixed + scale x
// CPU part + per-layer cost x MoE layers with GPU experts + the rest of the model's figure. One
// plan: scale 1, the fixed cost its residual; two: fixed and scale; three whose CPU parts and
// GPU-expert layer counts differ: all three (else the two-plan fit on the first two). A layer
// cost left unfitted (negative: the model's own guess) keeps the model's guess.
struct Calibration {
  double decode_fixed_s = 0, decode_cpu_scale = 1;    // per decode token
  double prefill_fixed_s = 0, prefill_cpu_scale = 1;  // fixed: per prompt token
  double decode_gpu_layer_s = -1, prefill_gpu_layer_s = -1;  // per layer with GPU experts (prefill: per prompt)
  int points = 0;                                     // measured plans it was fitted on (<= 3)
};
// Fitted on the first three of `measured` that have both figures (their raw predictions).
Calibration fit_calibration(const std::vector<const Candidate*>& measured, int prompt_tokens);
// The raw prediction with the calibration applied (tokens/s; the raw seconds are kept).
Prediction calibrated(const Prediction& raw, const Calibration& c, int prompt_tokens);
// Every candidate of the search (the automatic plan first, then the even spread of the same GPU
// expert count, the hot experts, layers in order (whole layers, the rest of the room in the
// next); each with thread and sharding variants), with
// predictions, best predicted decode first after the automatic plan and the even spread.
std::vector<Candidate> tune_candidates(const TuneInputs& in);
// Prompt length from which streaming the CPU experts to the GPU beats computing them on the CPU
// (0: never, e.g. no GPU, or the GPU is a CPU-backed one).
int64_t stream_threshold_tokens(const TuneInputs& in, const PlacementPlan& plan, int threads_per_node);
// A rules file placing exactly as `plan` does (defaults for the dense parts, one rule per run of
// layers whose experts are placed alike), headed by `header` comment lines.
std::string rules_from_plan(const PlacementPlan& plan, const std::vector<std::string>& header, bool replicate);

}  // namespace tandem::placement
