#include "placement/ktransformers_rules.h"

#include <optional>
#include <regex>
#include <set>

#include "runtime/core/error.h"

namespace tandem::placement {
namespace {

std::string at(const std::string& file, const YAML::Node& n) {
  const YAML::Mark m = n.Mark();
  return m.is_null() ? file : file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

struct KtRule {
  std::regex name;
  std::string klass;                    // match.class, "" for any
  std::optional<Device> device;         // replace.kwargs.generate_device
  std::string origin;                   // file:line (KTransformers)
};

// "cuda", "cuda:N", "cpu"; nullopt (and a warning) for anything else.
std::optional<Device> device_of(const std::string& s, const std::string& where, std::vector<std::string>& warnings) {
  if (s == "cpu") return Device::cpu();
  if (s == "cuda") return Device::gpu(0);
  if (s.rfind("cuda:", 0) == 0) {
    const std::string n = s.substr(5);
    if (!n.empty() && n.size() < 4 && n.find_first_not_of("0123456789") == std::string::npos) return Device::gpu(std::stoi(n));
  }
  warnings.push_back(where + ": device \"" + s + "\" has no meaning here (cuda, cuda:N, cpu); the rule is ignored");
  return std::nullopt;
}

// What a module is, for rules that name a class: the last component of the Python class must
// contain the module's tag (DeepseekV3Attention ~ Attention, DeepseekV3MoE ~ MoE, MoEGate ~
// Gate, DeepseekV3MLP ~ MLP, torch.nn.Linear ~ Linear).
struct Module {
  std::string name;
  std::string tag;
};

bool class_fits(const std::string& klass, const std::string& tag) {
  if (klass.empty()) return true;
  const std::string last = klass.substr(klass.rfind('.') == std::string::npos ? 0 : klass.rfind('.') + 1);
  return last.find(tag) != std::string::npos;
}

// The first rule matching the module (name from its start, like Python's re.match), or null.
const KtRule* first_match(const std::vector<KtRule>& rules, const Module& m) {
  for (const KtRule& r : rules)
    if (class_fits(r.klass, m.tag) && std::regex_search(m.name, r.name, std::regex_constants::match_continuous))
      return &r;
  return nullptr;
}

struct Decision {
  std::optional<Device> device;
  std::string origin;
  bool operator==(const Decision& o) const {
    return device.has_value() == o.device.has_value() && (!device || *device == *o.device) && origin == o.origin;
  }
};

// A part's modules in the order that decides it: itself, its Linear children, then its
// ancestors (a matched rule without a device passes the decision up).
Decision decide(const std::vector<KtRule>& rules, const std::vector<Module>& own, const std::vector<Module>& linears,
                const std::vector<Module>& ancestors) {
  for (const auto* group : {&own, &linears, &ancestors})
    for (const Module& m : *group)
      if (const KtRule* r = first_match(rules, m); r && r->device) return {r->device, r->origin};
  return {};
}

std::vector<Module> linears_of(const std::string& prefix, std::initializer_list<const char*> names) {
  std::vector<Module> out;
  for (const char* n : names) out.push_back({prefix + "." + n, "Linear"});
  return out;
}

}  // namespace

bool looks_like_ktransformers_rules(const YAML::Node& doc) {
  if (!doc.IsSequence() || doc.size() == 0) return false;
  for (const auto& r : doc)
    if (!r.IsMap() || !r["match"]) return false;
  return true;
}

Rules translate_ktransformers_rules(const YAML::Node& doc, const std::string& file) {
  Rules out;
  std::vector<KtRule> rules;
  bool operators = false;
  for (const auto& r : doc) {
    const YAML::Node m = r["match"], rep = r["replace"];
    if (!m.IsMap()) fail(at(file, r), ": a KTransformers rule's match must be a map");
    KtRule k;
    k.origin = file + ":" + std::to_string(r.Mark().line + 1) + " (KTransformers)";
    const std::string name = m["name"] ? m["name"].as<std::string>() : std::string("");
    try {
      k.name = std::regex(name, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      fail(at(file, m["name"]), ": name regex \"", name, "\" is not one tandem reads (", e.what(),
           "); Python-only syntax such as (?P<name>...) has no equivalent here");
    }
    if (m["class"]) k.klass = m["class"].as<std::string>();
    if (rep && rep.IsMap()) {
      if (rep["class"] || (rep["kwargs"] && (rep["kwargs"]["generate_op"] || rep["kwargs"]["prefill_op"]))) operators = true;
      if (const YAML::Node kw = rep["kwargs"]; kw && kw.IsMap()) {
        const std::string where = at(file, kw);
        if (kw["generate_device"]) k.device = device_of(kw["generate_device"].as<std::string>(), where, out.warnings);
        if (kw["transfer_map"])
          out.warnings.push_back(where + ": transfer_map is not needed: tandem hands activations between the "
                                         "devices of consecutive layers itself");
        if (kw["prefill_device"] && kw["generate_device"] &&
            kw["prefill_device"].as<std::string>() != kw["generate_device"].as<std::string>())
          out.warnings.push_back(where + ": prefill_device " + kw["prefill_device"].as<std::string>() +
                                 " differs from generate_device " + kw["generate_device"].as<std::string>() +
                                 ": tandem runs a part where it decodes (for routed experts, prefill: "
                                 "{experts_on_gpu_from_tokens: N} streams them to the GPU for long prompts)");
      }
    }
    rules.push_back(std::move(k));
  }
  if (operators)
    out.warnings.push_back(file + ": KTransformers operator choices (replace.class, generate_op, prefill_op) are "
                                  "not used: tandem picks its kernels per device and type");

  auto emit = [&](TensorKind kind, int64_t first, int64_t last, const Decision& d) {
    if (!d.device) return;
    Rule r;
    r.match.kind = kind;
    if (first >= 0) {
      IndexRanges layers;
      layers.intervals.push_back({first, last});
      r.match.layers = layers;
    }
    r.place.device = *d.device;
    r.origin = d.origin;
    r.translated = true;
    out.rules.push_back(std::move(r));
  };

  const std::vector<Module> root = {{"model", "Model"}};
  emit(TensorKind::TokenEmbd, -1, -1, decide(rules, {{"model.embed_tokens", "Embedding"}}, {}, root));
  emit(TensorKind::Output, -1, -1, decide(rules, {{"lm_head", "Linear"}, {"model.norm", "RMSNorm"}}, {}, root));
  for (TensorKind kind : {TensorKind::Attention, TensorKind::DenseFfn, TensorKind::Router, TensorKind::SharedExperts,
                          TensorKind::RoutedExperts}) {
    int64_t start = 0;
    Decision run;
    for (int64_t l = 0; l <= kKtMaxLayers; ++l) {
      Decision d;
      if (l < kKtMaxLayers) {
        const std::string layer = "model.layers." + std::to_string(l);
        const std::string mlp = layer + ".mlp";
        std::vector<Module> ancestors = {{layer, "DecoderLayer"}, {"model.layers", "ModuleList"}, {"model", "Model"}};
        switch (kind) {
          case TensorKind::Attention:
            d = decide(rules, {{layer + ".self_attn", "Attention"}},
                       linears_of(layer + ".self_attn", {"q_proj", "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"}),
                       ancestors);
            break;
          case TensorKind::DenseFfn:
            d = decide(rules, {{mlp, "MLP"}}, linears_of(mlp, {"gate_proj", "up_proj", "down_proj"}), ancestors);
            break;
          case TensorKind::Router:
            ancestors.insert(ancestors.begin(), {mlp, "MoE"});
            d = decide(rules, {{mlp + ".gate", "Gate"}}, {}, ancestors);
            break;
          case TensorKind::SharedExperts:
            ancestors.insert(ancestors.begin(), {mlp, "MoE"});
            d = decide(rules, {{mlp + ".shared_experts", "MLP"}},
                       linears_of(mlp + ".shared_experts", {"gate_proj", "up_proj", "down_proj"}), ancestors);
            break;
          default:
            ancestors.insert(ancestors.begin(), {mlp, "MoE"});
            d = decide(rules, {{mlp + ".experts", "Experts"}}, {}, ancestors);
            break;
        }
      }
      if (l == 0) {
        run = d;
        continue;
      }
      if (l < kKtMaxLayers && d == run) continue;
      emit(kind, start, l == kKtMaxLayers ? -1 : l - 1, run);  // the last run stays open: "N-"
      start = l;
      run = d;
    }
  }
  // Whatever no rule reaches runs where KTransformers puts an unmatched module: the first GPU.
  Place p;
  p.device = Device::gpu(0);
  p.any_gpu = true;
  out.defaults = p;
  out.defaults_origin = file + " (KTransformers default device cuda:0)";
  return out;
}

}  // namespace tandem::placement
