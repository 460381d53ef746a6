// What `tandem plan` prints: a plan, its memory budget and the machine, as a table for people
// or as JSON for tools. Pure functions of plain data, so tests check the figures directly.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "placement/memory_budget.h"
#include "placement/plan.h"
#include "placement/plan_builder.h"
#include "placement/topology.h"

namespace tandem::placement {

// One row of the per-layer table: consecutive layers placed alike share a row.
struct LayerGroup {
  int64_t first = 0, last = 0;
  std::string attention, dense_ffn, router, shared_experts;
  std::vector<std::pair<std::string, int64_t>> experts;  // device -> experts per layer, by first use
};

std::vector<LayerGroup> group_layers(const PlacementPlan& plan);

// Bytes of the model's tensors by kind name ("token_embd", "attention", ... "routed_experts"); cpu:
// what each kind takes on the CPU (ModelTensor::cpu_bytes, the engine's layouts) instead.
std::vector<std::pair<std::string, uint64_t>> bytes_by_kind(const ModelLayout& model, bool cpu = false);

struct PlanReport {
  const PlacementPlan& plan;
  const MemoryBudget& budget;
  const ModelLayout& model;
  const Topology& topology;
  std::string rules_source;  // the rules file, or "automatic plan"
};

std::string format_plan_text(const PlanReport& r);
nlohmann::json plan_json(const PlanReport& r);
// Which rule placed the tensor, its device and bytes; for routed experts, the owners of every
// expert of its layer. Throws Error when the model has no such tensor (naming close names).
std::string explain_tensor(const PlacementPlan& plan, const std::string& name);

}  // namespace tandem::placement
