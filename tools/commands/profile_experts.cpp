// `tandem profile-experts --model M --prompts FILE --out stats.json [--hot N] [--write-rules R]`:
// how often each routed expert of each MoE layer is chosen over a prompt set, prefill (the
// prompt in one forward) and decode (greedy continuation, --decode tokens) counted apart.
// Counting hooks the shared router (runtime/model/moe_router.h's observer) on the CPU pass: the
// hybrid GPU path keeps expert ids on the GPU, so profiling always runs the CPU pass (routing is
// the same math there: route_token is the GPU router's oracle). --rules only checks that the
// rules plan the model.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "placement/expert_stats.h"
#include "placement/model_layout.h"
#include "placement/rules.h"
#include "runtime/core/error.h"
#include "runtime/engine/logits_report.h"
#include "runtime/engine/model_loader.h"
#include "runtime/engine/placement_options.h"
#include "runtime/model/moe_router.h"
#include "tools/command_registry.h"
#include "tools/load_progress.h"

namespace tandem::tools {
namespace {

struct ProfileArgs {
  std::string model, prompts, rules, out, write_rules, place = "gpu:0";
  int hot = 0, decode = 16, threads = 0;
  bool quiet = false;
};

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  if (!f || !(f << text)) fail("cannot write ", path);
}

// Rules placing each layer's `n` hottest experts on `place`, the rest on the CPU.
std::string hot_rules(const placement::ExpertStats& s, int n, const std::string& place, const std::string& source) {
  std::string o = "# For: the " + std::to_string(n) + " most routed experts of every MoE layer of " + s.model + " on " + place +
                  " (tandem profile-experts, " + source + ": " + std::to_string(s.prompts) + " prompts, " +
                  std::to_string(s.prefill_tokens) + " prefill + " + std::to_string(s.decode_tokens) + " decode tokens).\n";
  o += "rules:\n";
  for (const auto& l : s.layers)
    o += "  - match: {kind: routed_experts, layers: \"" + std::to_string(l.layer) + "\", experts: \"" +
         placement::expert_list_text(placement::hottest_experts(l, n)) + "\"}\n    place: " + place + "\n";
  o += "  - match: {kind: routed_experts}\n    place: cpu\ndefaults: {place: " + place + "}\n";
  return o;
}

void run_profile(const ProfileArgs& a) {
  if (a.decode < 0) fail("--decode must be 0 or more");
  if (a.hot < 0) fail("--hot must be positive");
  if (!a.write_rules.empty() && a.hot <= 0) fail("--write-rules needs --hot N (experts per layer)");
  (void)placement::parse_place(a.place, "--place");
  const std::vector<std::string> prompts = read_prompts_file(a.prompts);
  if (prompts.empty()) fail(a.prompts, ": no prompts");
  if (!a.rules.empty()) (void)plan_from_rules(a.model, a.rules, 4096);  // the rules must plan this model

  ModelLoadOptions lo;
  lo.path = ComputePath::Cpu;
  lo.threads = a.threads;
  lo.max_context = 4096;
  const RulesPlan plan = apply_rules_option("", true, a.model, lo);
  if (!a.quiet) lo.progress = announce_load(a.model, plan);
  LoadedModel m = load_model(a.model, lo);
  const placement::ModelLayout layout = placement::model_layout_from_gguf(*m.file);
  const std::string arch = m.file->architecture();
  placement::ExpertStats s;
  s.model = std::filesystem::path(a.model).filename().string();
  s.n_layer = layout.n_layer;
  s.n_expert = layout.n_expert;
  s.n_expert_used = int64_t(m.file->get_uint_opt(arch + ".expert_used_count").value_or(0));
  if (s.n_expert <= 0 || s.n_expert_used <= 0) fail(a.model, ": the model has no routed experts to profile");
  std::vector<std::vector<uint64_t>> prefill(size_t(s.n_layer)), decode(size_t(s.n_layer));
  bool decoding = false;
  std::mutex mu;
  set_routing_observer([&](int64_t layer, const int32_t* ids, int64_t n, int64_t k) {
    if (layer < 0 || layer >= s.n_layer) return;
    std::lock_guard lock(mu);
    auto& c = (decoding ? decode : prefill)[size_t(layer)];
    if (c.empty()) c.assign(size_t(s.n_expert), 0);
    for (int64_t i = 0; i < n * k; ++i)
      if (ids[i] >= 0 && ids[i] < s.n_expert) ++c[size_t(ids[i])];
  });
  struct Reset {
    ~Reset() { set_routing_observer({}); }
  } reset;

  std::vector<float> logits;
  const int64_t ctx = int64_t(lo.max_context);
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<int32_t> tokens;
    for (auto t : m.tokenizer->encode(prompts[i], true, true)) tokens.push_back(int32_t(t));
    if (tokens.empty()) continue;
    if (int64_t(tokens.size()) + a.decode > ctx) tokens.resize(size_t(std::max<int64_t>(1, ctx - a.decode)));
    m.lm->reset();
    decoding = false;
    m.lm->forward(tokens, logits);
    s.prefill_tokens += tokens.size();
    decoding = true;
    const int64_t nv = m.lm->n_vocab();
    for (int d = 0; d < a.decode; ++d) {
      const float* last = logits.data() + logits.size() - size_t(nv);
      const int32_t next = int32_t(std::max_element(last, last + nv) - last);
      m.lm->forward({&next, 1}, logits);
      ++s.decode_tokens;
    }
    ++s.prompts;
    if (!a.quiet) std::fprintf(stderr, "\rprofiled %zu/%zu prompts", i + 1, prompts.size());
  }
  if (!a.quiet) std::fprintf(stderr, "\n");
  for (int64_t l = 0; l < s.n_layer; ++l) {
    if (prefill[size_t(l)].empty() && decode[size_t(l)].empty()) continue;
    placement::LayerExpertCounts c;
    c.layer = l;
    c.prefill = prefill[size_t(l)].empty() ? std::vector<uint64_t>(size_t(s.n_expert), 0) : prefill[size_t(l)];
    c.decode = decode[size_t(l)].empty() ? std::vector<uint64_t>(size_t(s.n_expert), 0) : decode[size_t(l)];
    s.layers.push_back(std::move(c));
  }
  if (!a.out.empty()) write_text(a.out, placement::expert_stats_json(s).dump(1) + "\n");
  std::printf("%llu prompts, %llu prefill and %llu decode tokens routed through %zu MoE layers (%lld experts, %lld per token)\n",
              (unsigned long long)s.prompts, (unsigned long long)s.prefill_tokens, (unsigned long long)s.decode_tokens,
              s.layers.size(), (long long)s.n_expert, (long long)s.n_expert_used);
  if (a.hot > 0) {
    std::printf("%-6s %8s  %s\n", "layer", "share", "hottest experts (most routed first)");
    for (const auto& l : s.layers) {
      const auto hot = placement::hottest_experts(l, a.hot);
      uint64_t picked = 0, all = 0;
      for (size_t e = 0; e < l.prefill.size(); ++e) all += l.total(e);
      std::string list;
      for (int64_t e : hot) picked += l.total(size_t(e)), list += (list.empty() ? "" : " ") + std::to_string(e);
      std::printf("%-6lld %7.1f%%  %s\n", (long long)l.layer, all ? 100.0 * double(picked) / double(all) : 0.0, list.c_str());
    }
    std::printf("(share: of the layer's routed picks, those that went to these %d; uniform routing gives %.1f%%)\n", a.hot,
                100.0 * std::min<double>(a.hot, double(s.n_expert)) / double(s.n_expert));
  }
  if (!a.write_rules.empty()) {
    write_text(a.write_rules, hot_rules(s, a.hot, a.place, a.out.empty() ? a.prompts : a.out));
    std::printf("wrote %s\n", a.write_rules.c_str());
  }
}

void setup_profile(CLI::App& root) {
  auto a = std::make_shared<ProfileArgs>();
  auto* cmd = root.add_subcommand("profile-experts", "Count how often each routed expert is chosen over a prompt set");
  cmd->add_option("--model,-m", a->model, "GGUF model")->required();
  cmd->add_option("--prompts", a->prompts, "JSON file: an array of prompt strings")->required();
  cmd->add_option("--rules", a->rules, "Rules the statistics are for (checked; profiling runs the CPU pass)");
  cmd->add_option("--out,-o", a->out, "Write the statistics (tandem-expert-stats JSON) here");
  cmd->add_option("--hot", a->hot, "List the N most routed experts of each layer");
  cmd->add_option("--write-rules", a->write_rules, "Write a rules file placing each layer's --hot N experts on --place");
  cmd->add_option("--place", a->place, "Where --write-rules puts the hot experts")->capture_default_str();
  cmd->add_option("--decode,-n", a->decode, "Greedy tokens generated after each prompt (decode counts)")->capture_default_str();
  cmd->add_option("--threads,-t", a->threads, "CPU threads per NUMA node (0: every core)")->capture_default_str();
  cmd->add_flag("--quiet,-q", a->quiet, "No progress output");
  cmd->callback([a] { run_profile(*a); });
}

TANDEM_COMMAND(setup_profile);

}  // namespace
}  // namespace tandem::tools
