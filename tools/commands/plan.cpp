// `tandem plan --model M [--rules R] [--ctx N] [--json] [--explain TENSOR]`: where every layer,
// tensor and routed expert would go on this machine (or on one described by --topology and
// --assume-gpu), the bytes per device against capacity, and the effective knobs. Reads only the
// GGUF header. Exits non-zero when the plan does not fit, saying what to change.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "placement/model_layout.h"
#include "placement/plan_builder.h"
#include "placement/plan_report.h"
#include "placement/rules.h"
#include "placement/topology.h"
#include "runtime/core/error.h"
#include "runtime/core/knobs.h"
#include "runtime/engine/placement_options.h"
#include "runtime/gguf/gguf_file.h"
#include "tools/command_registry.h"

namespace tandem::tools {
namespace {

struct PlanArgs {
  std::string model, rules, topology;
  std::vector<std::string> assume_gpus, explain;
  uint32_t context = 4096;
  uint32_t parallel = 1;  // sequences, each its own KV cache of `context` rows
  bool json = false, no_gpu = false;
};

// "NAME=SIZE" or "SIZE" (e.g. "H200=141GB", "24GiB").
void add_assumed_gpu(placement::Topology& t, const std::string& spec) {
  const auto eq = spec.rfind('=');
  const std::string name = eq == std::string::npos ? "assumed GPU" : spec.substr(0, eq);
  const std::string size = eq == std::string::npos ? spec : spec.substr(eq + 1);
  t.add_gpu(name, placement::parse_byte_size(size));
}

void run_plan(const PlanArgs& a) {
  placement::Topology topo = a.topology.empty() ? this_machine_topology()
                                                : placement::Topology::from_hwloc_synthetic(a.topology);
  if (!a.topology.empty() || !a.assume_gpus.empty() || a.no_gpu) topo.gpus.clear();
  for (const std::string& g : a.assume_gpus) add_assumed_gpu(topo, g);

  const auto file = GgufFile::open(a.model);
  const placement::ModelLayout layout = placement::model_layout_from_gguf(*file);
  std::optional<placement::Rules> rules;
  if (!a.rules.empty()) rules = placement::parse_rules_file(a.rules);
  placement::PlanOptions po;
  if (a.parallel == 0) fail("--parallel must be at least 1");
  if (uint64_t(a.context) * a.parallel > UINT32_MAX) fail("--ctx x --parallel is too large");
  // N sequence slots hold N caches of --ctx rows: planned as one cache of N x ctx rows.
  po.context = a.context * a.parallel;
  const placement::PlacementPlan plan = placement::make_plan(layout, topo, rules ? &*rules : nullptr, po);
  const placement::MemoryBudget budget = placement::plan_budget(plan, layout, topo, po);
  const placement::PlanReport report{plan, budget, layout, topo, a.rules.empty() ? "automatic plan" : a.rules};

  if (a.json) {
    nlohmann::json j = placement::plan_json(report);
    nlohmann::json k = nlohmann::json::object();
    for (const auto& e : knobs::effective())
      if (e.value) k[std::string(e.knob->name)] = *e.value;
    j["knobs"] = k;
    if (!a.explain.empty()) {
      nlohmann::json ex = nlohmann::json::object();
      for (const std::string& t : a.explain) ex[t] = placement::explain_tensor(plan, t);
      j["explain"] = ex;
    }
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("%s", placement::format_plan_text(report).c_str());
    std::printf("\nknobs set:");
    bool any = false;
    for (const auto& e : knobs::effective())
      if (e.value && e.source != "default") {
        std::printf(" %s=%s (%s);", std::string(e.knob->name).c_str(), e.value->c_str(), e.source.c_str());
        any = true;
      }
    std::printf("%s\n", any ? "" : " none (`tandem knobs` lists them)");
    for (const std::string& t : a.explain) std::printf("\n%s\n", placement::explain_tensor(plan, t).c_str());
  }
  std::fflush(stdout);
  if (!budget.fits())
    fail("the plan does not fit", a.topology.empty() && a.assume_gpus.empty() ? " this machine" : " the given machine",
         ": ", budget.problems.front());
}

void setup_plan(CLI::App& root) {
  auto a = std::make_shared<PlanArgs>();
  auto* cmd = root.add_subcommand("plan", "Show where a model's layers, tensors and experts go, and the memory per device");
  cmd->add_option("--model,-m", a->model, "GGUF file (only its header is read)")->required();
  cmd->add_option("--rules", a->rules, "Placement rules (YAML, see rules/README.md); default: the automatic plan");
  cmd->add_option("--ctx,-c", a->context, "Context length the KV cache is planned for")->capture_default_str();
  cmd->add_option("--parallel", a->parallel,
                  "Sequences served together (serve --parallel): the KV cache is planned for N x --ctx rows")
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "Print the plan as JSON");
  cmd->add_option("--explain", a->explain, "Say which rule placed this tensor (repeatable)");
  cmd->add_option("--topology", a->topology,
                  "Plan for another machine: hwloc synthetic description, e.g. \"pack:2 numa:1(memory=256GB) core:16 pu:1\"");
  cmd->add_option("--assume-gpu", a->assume_gpus, "Plan with this GPU instead of the detected ones: NAME=SIZE or SIZE (repeatable)");
  cmd->add_flag("--no-gpu", a->no_gpu, "Plan for this machine without its GPUs");
  cmd->callback([a] { run_plan(*a); });
}

TANDEM_COMMAND(setup_plan);

}  // namespace
}  // namespace tandem::tools
