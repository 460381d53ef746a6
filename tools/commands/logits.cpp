// `tandem logits`: per-position top logits, last-position logits and a greedy continuation for
// a list of prompts, in the JSON layout of ../shared/golden/compare.py.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "runtime/core/error.h"
#include "runtime/engine/logits_report.h"
#include "runtime/engine/model_loader.h"
#include "runtime/engine/placement_options.h"
#include "runtime/model/deepseek2/deepseek2_hybrid.h"
#include "tools/command_registry.h"
#include "tools/load_progress.h"

namespace tandem::tools {
namespace {

struct LogitsOptions {
  std::string model;
  std::string prompts;
  std::string out;
  int top = 20;
  int greedy = 16;
  bool cpu_only = false;
  bool reference = false;
  int gpu = -1;
  bool profile = false;
  std::string kv_type = "f16";
  bool kv_type_given = false;
  std::string rules;
};

void run_logits(const LogitsOptions& o) {
  if (o.top <= 0) fail("--top must be positive");
  if (o.greedy < 0) fail("--greedy must not be negative");
  if (o.gpu >= 0 && (o.cpu_only || o.reference)) fail("--gpu cannot be combined with --cpu-only or --reference");
  if (o.kv_type_given && o.gpu < 0) fail("--kv-type ", o.kv_type, " sets the GPU's KV cache: it needs --gpu N");
  const gpu::KvCacheType kv_type = gpu::parse_kv_cache_type(o.kv_type);
  const auto prompts = read_prompts_file(o.prompts);
  ModelLoadOptions lo;
  lo.path = o.reference ? ComputePath::Reference : o.gpu >= 0 ? ComputePath::Gpu : ComputePath::Cpu;
  if (o.gpu >= 0) lo.gpu_index = uint32_t(o.gpu);
  lo.kv_type = kv_type;
  lo.profile = o.profile;
  const RulesPlan plan =
      apply_rules_option(o.rules, o.gpu >= 0 || o.cpu_only || o.reference || o.kv_type_given, o.model, lo);
  lo.progress = announce_load(o.model, plan);
  LoadedModel m = load_model(o.model, lo);
  std::fprintf(stderr, "%s\n", m.description.c_str());
  const LogitsReport r = compute_logits_report(*m.lm, *m.tokenizer, prompts, o.top, o.greedy);
  write_logits_report(r, std::filesystem::path(o.model).filename().string(), o.out);
  std::fprintf(stderr, "wrote %s.json (%zu cases)\n", o.out.c_str(), r.cases.size());
  if (o.profile) {
    if (auto* hybrid = dynamic_cast<Deepseek2Hybrid*>(m.lm.get()))
      std::fprintf(stderr, "last forward step:\n%s", hybrid->profile_report().c_str());
  }
}

void setup_logits(CLI::App& root) {
  auto o = std::make_shared<LogitsOptions>();
  auto* cmd = root.add_subcommand("logits", "Dump top logits and greedy continuations for a list of prompts");
  cmd->add_option("--model", o->model, "GGUF model (first shard of a split model)")->required();
  cmd->add_option("--prompts", o->prompts, "JSON file: an array of prompt strings")->required();
  cmd->add_option("--out", o->out, "Output prefix: writes PREFIX.json and PREFIX.caseN.last.f32")->required();
  cmd->add_option("--top", o->top, "Top logits kept per position")->capture_default_str();
  cmd->add_option("--greedy", o->greedy, "Greedy continuation length")->capture_default_str();
  cmd->add_flag("--cpu-only", o->cpu_only, "Keep all work on the CPU");
  cmd->add_flag("--reference", o->reference, "Force the plain reference forward pass");
  cmd->add_option("--rules", o->rules, "Placement rules (YAML, see rules/README.md): where each layer, tensor and expert runs");
  cmd->add_option("--gpu", o->gpu, "Run the non-expert layers on this Vulkan device");
  cmd->add_flag("--profile", o->profile, "With --gpu: print per-kernel GPU times of the last step");
  auto* kv = cmd->add_option("--kv-type", o->kv_type, "With --gpu: latent KV cache element type, f16 or bf16")
                ->capture_default_str();
  cmd->callback([o, kv] {
    o->kv_type_given = kv->count() > 0;
    run_logits(*o);
  });
}

TANDEM_COMMAND(setup_logits);

}  // namespace
}  // namespace tandem::tools
