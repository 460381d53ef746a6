// --rules FILE for every command that loads a model: reads the rules, measures this machine
// (NUMA nodes, Vulkan devices and their device-local memory), makes the placement plan from the
// model's header, refuses a plan that does not fit before any weight is read, and turns the plan
// into the load options of the engine that executes it.
#pragma once

#include <string>
#include <vector>

#include "placement/memory_budget.h"
#include "placement/plan.h"
#include "placement/rules.h"
#include "placement/topology.h"
#include "runtime/engine/model_loader.h"

namespace tandem {

struct RulesPlan {
  placement::PlacementPlan plan;
  std::string summary;  // one line: where things go, bytes per device
  // What the plan takes (bytes per GPU, NUMA node and host, KV cache) and the names of the GPUs
  // it was made for, by index: the line a command prints before it loads.
  placement::MemoryBudget budget;
  std::vector<std::string> gpu_names;
};

// This machine: NUMA nodes from hwloc, Vulkan devices with their largest device-local heap
// (none when no Vulkan driver loads).
placement::Topology this_machine_topology();

// Throws Error naming the rule file, the device or the budget line that fails.
RulesPlan plan_from_rules(const std::string& model_path, const std::string& rules_path, uint32_t context);
// Fills path, gpu_index, gpu_experts and kv_type of options from the plan.
void apply_plan(const placement::PlacementPlan& plan, const std::string& model_path, ModelLoadOptions& options);
// The rules --gpu N (path Gpu) and --cpu-only (path Cpu) stand for: rules/default-1gpu.yaml on
// device N and rules/cpu-only.yaml.
placement::Rules shorthand_rules(ComputePath path, uint32_t gpu_index);
// A command's placement: with --rules, that file's plan (an Error when --gpu / --cpu-only /
// --reference were given too); with device flags, the shorthand rules of options.path; with
// neither, the automatic plan. Every plan is checked against this machine's memory for
// options.max_context before any weight is read. The reference path is left alone (the result
// is then empty: no plan, a budget of nothing).
RulesPlan apply_rules_option(const std::string& rules, bool device_flags_given, const std::string& model_path,
                             ModelLoadOptions& options);

}  // namespace tandem
