// `tandem tune --model M [--ctx N] [--time 10m] [--gpu-budget GB] [--portrait F] [--stats F] [--out R]`:
// predicts the decode and prefill speed of candidate placements from the machine's portrait
// (measured once and cached, or --portrait) and the routing statistics (--stats, from
// `tandem profile-experts`), measures the most promising for real (the code of `bench run`),
// and writes the best as a rules file whose comments give the machine, the predicted and the
// measured figures. Ctrl-C or --time stops the measuring; the best plan so far is written.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "placement/model_layout.h"
#include "placement/tensor_kind.h"
#include "placement/topology.h"
#include "placement/tuning.h"
#include "runtime/core/error.h"
#include "runtime/engine/model_loader.h"
#include "runtime/engine/placement_options.h"
#include "runtime/gguf/gguf_file.h"
#include "tools/command_registry.h"
#include "tools/commands/model_speed.h"
#include "tools/commands/portrait_measure.h"

namespace tandem::tools {
namespace {

namespace fs = std::filesystem;

struct TuneArgs {
  std::string model, portrait, stats, out = "rules/mine.yaml", time = "10m", gpu_budget, report;
  uint32_t context = 4096;
  int gpu = 0, prompt = 512, generate = 32, measure = 3, repetitions = 1;
  bool no_measure = false, remeasure = false;
};

std::atomic<bool> g_stop{false};
extern "C" void on_sigint(int) { g_stop = true; }

double parse_duration(const std::string& text) {
  if (text.empty()) fail("--time: empty duration");
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    fail("--time ", text, ": expected a duration such as 90s, 10m or 1h");
  }
  const std::string unit = text.substr(used);
  const double scale = unit.empty() || unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : -1;
  if (scale < 0 || !(v > 0)) fail("--time ", text, ": expected a positive duration such as 90s, 10m or 1h");
  return v * scale;
}

std::string cache_path() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const fs::path base = xdg && *xdg ? fs::path(xdg) : home && *home ? fs::path(home) / ".cache" : fs::temp_directory_path();
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return (base / "tandem" / (std::string("portrait-") + host + ".json")).string();
}

void write_text(const std::string& path, const std::string& text) {
  if (const fs::path dir = fs::path(path).parent_path(); !dir.empty()) fs::create_directories(dir);
  std::ofstream f(path, std::ios::binary);
  if (!f || !(f << text)) fail("cannot write ", path);
}

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

std::string machine_line(const placement::MachinePortrait& p, const std::optional<uint64_t>& budget) {
  std::ostringstream o;
  o << (p.host.empty() ? "?" : p.host) << ": " << (p.cpu.empty() ? "?" : p.cpu) << ", " << p.nodes.size() << " NUMA node(s) x "
    << p.nodes.front().cores << " cores, local read " << fmt("%.1f", p.read_gb_per_s[0][0]) << " GB/s";
  for (const auto& g : p.gpus)
    o << "; gpu:" << g.index << " " << g.name << " " << fmt("%.1f", double(g.device_local_bytes) / double(1ull << 30)) << " GiB"
      << (g.software ? " (software)" : "") << ", h2d " << fmt("%.1f", g.h2d_pinned) << " GB/s";
  if (budget) o << "; GPU budget " << fmt("%.2f", double(*budget) / double(1ull << 30)) << " GiB";
  return o.str();
}

std::string label(const placement::Candidate& c) {
  std::string s = c.name;
  if (c.threads_per_node) s += ", " + std::to_string(c.threads_per_node) + " threads/node";
  if (c.reserved_cores) s += ", 1 core for the GPU feeder";
  if (c.replicate) s += ", replicated";
  return s;
}

struct Measured {
  double decode = 0, prefill = 0;
};

Measured measure(const TuneArgs& a, const placement::Candidate& c, const std::string& rules_path) {
  ModelLoadOptions lo;
  lo.threads = c.threads_per_node;
  lo.reserved_cores = c.reserved_cores;
  lo.max_context = uint32_t(std::max(a.prompt, a.generate) + 1);
  (void)apply_rules_option(rules_path, false, a.model, lo);
  LoadedModel m = load_model(a.model, lo);
  Measured r;
  uint32_t seed = 1;
  (void)prompt_tokens_per_s(*m.lm, a.prompt, seed++);  // warm-up: records GPU steps, faults weights in
  for (int i = 0; i < a.repetitions && !g_stop; ++i) r.prefill = std::max(r.prefill, prompt_tokens_per_s(*m.lm, a.prompt, seed++));
  (void)generate_tokens_per_s(*m.lm, std::min(a.generate, 8), seed++);
  for (int i = 0; i < a.repetitions && !g_stop; ++i) r.decode = std::max(r.decode, generate_tokens_per_s(*m.lm, a.generate, seed++));
  return r;
}

void run_tune(const TuneArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  const double budget_s = parse_duration(a.time);
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  auto progress = [&](const std::string& what) {
    const double e = elapsed(), left = std::max(0.0, budget_s - e);
    std::fprintf(stderr, "[tune %d:%02d, %d:%02d left] %s\n", int(e) / 60, int(e) % 60, int(left) / 60, int(left) % 60, what.c_str());
  };
  if (a.prompt < 1 || a.generate < 1 || a.repetitions < 1) fail("-p, -n and -r must be positive");

  placement::TuneInputs in;
  const auto file = GgufFile::open(a.model);
  in.model = placement::model_layout_from_gguf(*file);
  const std::string arch = file->architecture();
  in.n_expert_used = int64_t(file->get_uint_opt(arch + ".expert_used_count").value_or(0));
  for (const GgufTensor& t : file->tensors())
    if (const auto c = placement::classify_tensor(t.name); c && c->kind == placement::TensorKind::RoutedExperts) {
      const auto& info = ggml_type_info(t.type);
      in.expert_type = std::string(info.name);
      in.expert_params_per_byte = double(info.block_size) / double(info.type_size);
      break;
    }
  in.context = a.context;
  in.gpu = a.gpu;
  in.prompt_tokens = a.prompt;
  if (!a.gpu_budget.empty()) in.gpu_budget_bytes = placement::parse_byte_size(a.gpu_budget);
  if (!a.stats.empty()) in.stats = placement::read_expert_stats_file(a.stats);

  std::string portrait_source = a.portrait;
  if (!a.portrait.empty()) {
    in.portrait = placement::read_portrait_file(a.portrait);
  } else {
    const std::string cached = cache_path();
    if (!a.remeasure && fs::exists(cached)) {
      in.portrait = placement::read_portrait_file(cached);
      portrait_source = cached + " (cached; --remeasure measures again)";
    } else {
      PortraitOptions po;
      po.megabytes = 64, po.passes = 2, po.selected_only = true, po.kernel_types = {in.expert_type};
      po.on_step = [&](const std::string& s) { progress("measuring the machine: " + s); };
      in.portrait = measure_portrait(po);
      write_text(cached, placement::portrait_json(in.portrait).dump(2) + "\n");
      portrait_source = cached + " (measured now)";
    }
  }
  progress("portrait: " + portrait_source);
  if (in.gpu >= int(in.portrait.gpus.size()) && !in.portrait.gpus.empty()) fail("--gpu ", in.gpu, ": the portrait has ", in.portrait.gpus.size(), " GPU(s)");

  std::vector<placement::Candidate> cands = placement::tune_candidates(in);
  progress(std::to_string(cands.size()) + " candidate plans; room for " + std::to_string(placement::gpu_expert_room(in)) +
           " routed experts on the GPU");

  // Measure: the automatic plan, the even spread, the layers in order, then while the count lasts
  // the unmeasured plan of best current prediction (decode x prefill). The first three measured
  // plans of each path (CPU only, or with a GPU) calibrate it: a fixed per-token cost the
  // bandwidth model leaves out (kernel launches, attention), a scale of its CPU part and the cost
  // of a layer with GPU experts (placement::fit_calibration). The first is marked "cal" in the
  // report; every other measured plan keeps the prediction it had before it was measured, so its
  // error is a real test of the model so far.
  auto find = [&](auto pred) -> placement::Candidate* {
    placement::Candidate* best = nullptr;
    for (auto& c : cands)
      if (c.fits && !c.measured_decode && !c.tried && pred(c) &&
          (!best || c.predicted.decode_tokens_per_s * c.predicted.prefill_tokens_per_s >
                        best->predicted.decode_tokens_per_s * best->predicted.prefill_tokens_per_s))
        best = &c;
    return best;
  };
  constexpr size_t kCalibrationPlans = 3;
  const size_t planned = size_t(std::max(a.measure, 0)) + kCalibrationPlans;
  g_stop = false;
  auto old = std::signal(SIGINT, on_sigint);
  std::map<bool, std::vector<const placement::Candidate*>> fitted_on;  // uses a GPU -> its calibration plans
  const std::string scratch = a.out + ".candidate.yaml";
  if (!a.no_measure)
    for (size_t n = 0; n < planned; ++n) {
      if (g_stop) {
        progress("stopped (Ctrl-C): writing the best plan so far");
        break;
      }
      if (elapsed() > budget_s) {
        progress("--time " + a.time + " spent: writing the best plan so far");
        break;
      }
      placement::Candidate* next = n == 0   ? find([](const auto& c) { return c.name == "automatic"; })
                                   : n == 1 ? find([](const auto& c) { return c.name == "even spread"; })
                                   : n == 2 ? find([](const auto& c) { return c.name == "layers in order"; })
                                            : nullptr;
      if (!next) next = find([](const auto&) { return true; });
      if (!next) break;
      placement::Candidate& c = *next;
      c.tried = true;
      progress("measuring " + std::to_string(n + 1) + "/" + std::to_string(planned) + ": " + label(c) + " (pp" +
               std::to_string(a.prompt) + ", tg" + std::to_string(a.generate) + ")");
      write_text(scratch, placement::rules_from_plan(c.plan, {"tune candidate: " + label(c)}, c.replicate));
      try {
        const Measured m = measure(a, c, scratch);
        if (g_stop && m.decode == 0) continue;
        c.measured_decode = m.decode, c.measured_prefill = m.prefill;
      } catch (const Error& e) {
        progress("  failed: " + std::string(e.what()));
        continue;
      }
      const bool gpu_path = c.plan.uses_gpu();
      if (fitted_on[gpu_path].size() < kCalibrationPlans) {
        fitted_on[gpu_path].push_back(&c);
        const placement::Calibration cal = placement::fit_calibration(fitted_on[gpu_path], a.prompt);
        if (fitted_on[gpu_path].size() == 1) c.calibration = true;
        for (auto& x : cands) {
          if (x.plan.uses_gpu() != gpu_path || (x.measured_decode && !x.calibration)) continue;
          x.predicted = placement::calibrated(x.predicted, cal, a.prompt);
        }
      }
      progress("  predicted " + fmt("%.2f", c.predicted.decode_tokens_per_s) + " / measured " + fmt("%.2f", *c.measured_decode) +
               " tokens/s decode; predicted " + fmt("%.1f", c.predicted.prefill_tokens_per_s) + " / measured " +
               fmt("%.1f", *c.measured_prefill) + " tokens/s prefill" + (c.calibration ? " (calibrates its path)" : ""));
    }
  const bool calibrated = !fitted_on.empty();
  std::signal(SIGINT, old);
  std::error_code ec;
  fs::remove(scratch, ec);

  // Best: measured decode x prefill (both matter) among measured plans, else the best prediction.
  const placement::Candidate* best = nullptr;
  auto score = [](const placement::Candidate& c) {
    return c.measured_decode ? *c.measured_decode * *c.measured_prefill : 0.0;
  };
  for (const auto& c : cands)
    if (c.measured_decode && (!best || score(c) > score(*best))) best = &c;
  if (!best)
    for (const auto& c : cands)
      if (c.fits && c.name != "automatic" && (!best || c.predicted.decode_tokens_per_s > best->predicted.decode_tokens_per_s)) best = &c;
  if (!best) best = &cands.front();

  // Report.
  std::ostringstream table;
  char line[512];
  std::snprintf(line, sizeof line, "%-58s %7s %6s %11s %11s %7s %11s %11s %7s\n", "plan", "gpu_exp", "hit%", "pred tg t/s",
                "meas tg t/s", "err", "pred pp t/s", "meas pp t/s", "err");
  table << line;
  for (const auto& c : cands) {
    if (!c.fits) continue;
    auto err = [&](const std::optional<double>& m, double p) {
      if (c.calibration) return std::string("cal");
      return m && *m > 0 ? fmt("%+.0f%%", 100.0 * (p - *m) / *m) : std::string("-");
    };
    std::snprintf(line, sizeof line, "%-58.58s %7lld %5.0f%% %11.2f %11s %7s %11.1f %11s %7s\n", label(c).c_str(), (long long)c.gpu_experts,
                  100 * c.predicted.gpu_expert_hit_rate, c.predicted.decode_tokens_per_s,
                  c.measured_decode ? fmt("%.2f", *c.measured_decode).c_str() : "-", err(c.measured_decode, c.predicted.decode_tokens_per_s).c_str(),
                  c.predicted.prefill_tokens_per_s, c.measured_prefill ? fmt("%.1f", *c.measured_prefill).c_str() : "-",
                  err(c.measured_prefill, c.predicted.prefill_tokens_per_s).c_str());
    table << line;
  }
  const placement::Candidate& automatic = cands.front();
  const placement::Candidate* even = nullptr;
  for (const auto& c : cands)
    if (c.name == "even spread" && (!even || (c.measured_decode && !even->measured_decode))) even = &c;
  std::printf("machine: %s\nmodel: %s (%lld layers, %lld experts, %lld per token, %s experts)\nportrait: %s\nstatistics: %s\n\n%s",
              machine_line(in.portrait, in.gpu_budget_bytes).c_str(), a.model.c_str(), (long long)in.model.n_layer,
              (long long)in.model.n_expert, (long long)in.n_expert_used, in.expert_type.c_str(), portrait_source.c_str(),
              a.stats.empty() ? "none (uniform routing assumed)" : a.stats.c_str(), table.str().c_str());
  std::printf("(predictions %s; err = (predicted - measured) / measured)\n",
              calibrated ? "calibrated on the first three measured plans of each path: a fixed per-token cost, a scale of the CPU part and a cost per layer with GPU experts (cal: the first); other plans show the prediction made before they were measured"
                         : "of the bandwidth model alone");
  auto versus = [&](const placement::Candidate* other, const char* what) {
    if (!other || other == best || !other->measured_decode || !best->measured_decode) return;
    std::printf("tuned vs %s: decode %+.1f%%, prefill %+.1f%%\n", what, 100.0 * (*best->measured_decode / *other->measured_decode - 1),
                100.0 * (*best->measured_prefill / *other->measured_prefill - 1));
  };
  std::printf("\nchosen: %s\n", label(*best).c_str());
  versus(&automatic, "the automatic plan");
  versus(even, "an even spread of the same number of GPU experts");

  std::vector<std::string> header = {
      "For: " + machine_line(in.portrait, in.gpu_budget_bytes),
      "Written by tandem tune for " + fs::path(a.model).filename().string() + ", context " + std::to_string(a.context) +
          (a.stats.empty() ? ", uniform routing" : ", routing statistics " + a.stats),
      "Plan: " + label(*best) + ": " + best->what,
      "Run with: --rules FILE" + (best->threads_per_node ? " --threads " + std::to_string(best->threads_per_node) : std::string()) +
          (best->reserved_cores ? " --reserve-cores " + std::to_string(best->reserved_cores) : std::string()),
      "Predicted: decode " + fmt("%.2f", best->predicted.decode_tokens_per_s) + " tokens/s, prefill (pp" + std::to_string(a.prompt) +
          ") " + fmt("%.1f", best->predicted.prefill_tokens_per_s) + " tokens/s; GPU experts take " +
          fmt("%.0f", 100 * best->predicted.gpu_expert_hit_rate) + "% of the routed picks",
      best->measured_decode ? "Measured: decode (tg" + std::to_string(a.generate) + ") " + fmt("%.2f", *best->measured_decode) +
                                  " tokens/s, prefill (pp" + std::to_string(a.prompt) + ") " + fmt("%.1f", *best->measured_prefill) + " tokens/s"
                            : std::string("Measured: not measured (--no-measure, Ctrl-C or --time before it)")};
  if (const int64_t thr = placement::stream_threshold_tokens(in, best->plan, best->threads_per_node); thr > 0)
    header.push_back("Prefill: streaming the CPU experts to the GPU would pay from about " + std::to_string(thr) +
                     " prompt tokens (prefill: experts_on_gpu_from_tokens; the engine does not stream yet)");
  header.push_back("Candidates (predicted / measured tokens/s):");
  for (const auto& c : cands)
    if (c.measured_decode)
      header.push_back("  " + label(c) + (c.calibration ? " (calibrates)" : "") + ": tg " + fmt("%.2f", c.predicted.decode_tokens_per_s) + " / " + fmt("%.2f", *c.measured_decode) +
                       ", pp " + fmt("%.1f", c.predicted.prefill_tokens_per_s) + " / " + fmt("%.1f", *c.measured_prefill));
  write_text(a.out, placement::rules_from_plan(best->plan, header, best->replicate));
  std::printf("wrote %s\n", a.out.c_str());
  if (!a.report.empty()) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& c : cands) {
      nlohmann::json r = {{"plan", label(c)}, {"name", c.name}, {"fits", c.fits}, {"gpu_experts", c.gpu_experts},
                          {"threads_per_node", c.threads_per_node}, {"reserved_cores", c.reserved_cores}, {"replicate", c.replicate},
                          {"predicted_decode", c.predicted.decode_tokens_per_s}, {"predicted_prefill", c.predicted.prefill_tokens_per_s},
                          {"gpu_expert_hit_rate", c.predicted.gpu_expert_hit_rate}, {"chosen", &c == best},
                          {"calibration", c.calibration}};
      if (c.measured_decode) r["measured_decode"] = *c.measured_decode, r["measured_prefill"] = *c.measured_prefill;
      j.push_back(std::move(r));
    }
    write_text(a.report, j.dump(1) + "\n");
  }
}

void setup_tune(CLI::App& root) {
  auto a = std::make_shared<TuneArgs>();
  auto* cmd = root.add_subcommand("tune", "Search, predict and measure placements for this machine; write the best as a rules file");
  cmd->add_option("--model,-m", a->model, "GGUF model")->required();
  cmd->add_option("--ctx,-c", a->context, "Context the KV cache is planned for")->capture_default_str();
  cmd->add_option("--time", a->time, "Bound on the measuring (90s, 10m, 1h)")->capture_default_str();
  cmd->add_option("--gpu-budget", a->gpu_budget, "VRAM the plan may use on the GPU (e.g. 40GB, 24GiB; default: all of it)");
  cmd->add_option("--gpu", a->gpu, "Vulkan device the plans use (portrait index)")->capture_default_str();
  cmd->add_option("--portrait", a->portrait, "Machine portrait (`tandem bench numa --json`); default: measured once and cached");
  cmd->add_flag("--remeasure", a->remeasure, "Measure the machine again instead of using the cached portrait");
  cmd->add_option("--stats", a->stats, "Routing statistics (`tandem profile-experts --out`); default: uniform routing");
  cmd->add_option("--out,-o", a->out, "Rules file to write")->capture_default_str();
  cmd->add_option("--report", a->report, "Also write every candidate's predicted and measured figures as JSON");
  cmd->add_option("-p,--n-prompt", a->prompt, "Prompt length of the prefill figure")->capture_default_str();
  cmd->add_option("-n,--n-gen", a->generate, "Tokens of the decode figure")->capture_default_str();
  cmd->add_option("-r,--repetitions", a->repetitions, "Measured runs per figure (best kept)")->capture_default_str();
  cmd->add_option("--measure", a->measure, "Candidates measured beside the three calibration plans (automatic, even spread, layers in order)")->capture_default_str();
  cmd->add_flag("--no-measure", a->no_measure, "Predict only (plans for another machine's portrait)");
  cmd->callback([a] { run_tune(*a); });
}

TANDEM_COMMAND(setup_tune);

}  // namespace
}  // namespace tandem::tools
