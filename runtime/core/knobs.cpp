#include "runtime/core/knobs.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <mutex>

#include "runtime/core/error.h"

extern char** environ;

namespace tandem::knobs {
namespace {

using T = KnobType;

// The whole table. Measured reasons for the defaults live in bench/README.md and beside the code
// that reads each knob.
constexpr Knob kKnobs[] = {
    {"TANDEM_CPU_ISA", T::Choice, "", "scalar|avx2|avx512|amx",
     "CPU kernel path of the expert engine and CPU layers (default: the widest this CPU runs)"},
    {"TANDEM_PREFILL_PATH", T::Choice, "auto", "auto|rows|repacked|blas",
     "kernels for experts with many tokens: auto, or force row kernels, the repacked tile, or sgemm"},
    {"TANDEM_PREFILL_REPACK", T::Flag, "", "",
     "force the repacked K-quant expert layout on (1) or off (0); unset: on while it fits memory"},
    {"TANDEM_REPACK_MIN_TOKENS", T::Integer, "", "",
     "experts with at least this many tokens use the repacked tile (Auto path; unset: 1)"},
    {"TANDEM_BLAS_MIN_TOKENS", T::Integer, "", "",
     "experts with at least this many tokens and no repacked layout use dequantize + sgemm (unset: never)"},
    {"TANDEM_AMX_MIN_TOKENS", T::Integer, "", "", "experts with at least this many tokens use AMX tiles (unset: 16)"},
    {"TANDEM_AMX_KQUANTS", T::Flag, "0", "", "also run Q4_K/Q6_K experts on AMX int8 tiles (they only tie vpdpbusd)"},
    {"TANDEM_AMX_LEGACY", T::Flag, "1", "",
     "run Q4_0/Q5_0 expert down matrices with many tokens on AMX int8 tiles (converted to Q8_0, 1.6x their bytes)"},
    {"TANDEM_RELEASE_MAPPED", T::Flag, "1", "",
     "drop the mapped GGUF pages of weights once a GPU copy or a repacked expert layout replaces them "
     "(0: keep them resident; to measure what the release saves)"},
    {"TANDEM_MEMORY_REPORT", T::Flag, "0", "",
     "after a load, print the plan's host/GPU/KV bytes and the process's VmRSS and VmHWM on stderr"},
    {"TANDEM_MOE_PHASES", T::Flag, "0", "", "print where the expert engine's time goes when it is destroyed"},
    {"TANDEM_POOL_SPIN_US", T::Integer, "", "",
     "worker pool: spin this many microseconds before sleeping (0: a short fixed spin)"},
    {"TANDEM_SYNTHETIC_TOPOLOGY", T::Text, "", "",
     "an hwloc synthetic topology (e.g. \"pack:2 numa:1(memory=16GB) core:1 pu:1\") planned and run on instead "
     "of this machine's NUMA nodes (threads then unpinned): tests of NUMA plans on one node"},
    {"TANDEM_GPU_LOGICAL_COPIES", T::Integer, "1", "",
     "each Vulkan device is listed this many times (gpu:N opens physical device N / copies as a VkDevice "
     "of its own): multi-GPU plans tested on one device"},
    {"TANDEM_GPU_INT_DOT", T::Flag, "0", "", "GPU matvec on int8 activations for every product (accuracy checks)"},
    {"TANDEM_VULKAN_FALLBACK_DRIVER", T::Text, "", "",
     "path of a Vulkan driver library to try when no installed driver works (headless NVIDIA)"},
    {"TANDEM_API_KEY", T::Text, "", "",
     "tandem serve: the API key clients must send (Bearer or x-api-key) when --api-key is not given", true},
};

struct State {
  std::mutex mu;
  bool loaded = false;
  std::map<std::string, std::string, std::less<>> environment, overrides;
};

State& state() {
  static State s;
  return s;
}

void load_locked(State& s) {
  s.environment.clear();
  for (char** e = environ; e && *e; ++e) {
    const std::string_view kv(*e);
    if (!kv.starts_with("TANDEM_")) continue;
    const size_t eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    s.environment.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  s.loaded = true;
}

const Knob& find(std::string_view name) {
  for (const Knob& k : kKnobs)
    if (k.name == name) return k;
  fail("knob ", name, ": not declared in runtime/core/knobs.cpp");
}

bool choice_allowed(const Knob& k, std::string_view v) {
  if (k.choices.empty()) return true;
  for (size_t at = 0; at <= k.choices.size();) {
    size_t bar = k.choices.find('|', at);
    if (bar == std::string_view::npos) bar = k.choices.size();
    if (k.choices.substr(at, bar - at) == v) return true;
    at = bar + 1;
  }
  return false;
}

}  // namespace

std::span<const Knob> table() { return kKnobs; }

std::optional<std::string> value(std::string_view name) {
  find(name);
  State& s = state();
  std::lock_guard lock(s.mu);
  if (!s.loaded) load_locked(s);
  if (auto it = s.overrides.find(name); it != s.overrides.end()) return it->second;
  if (auto it = s.environment.find(name); it != s.environment.end() && !it->second.empty()) return it->second;
  return std::nullopt;
}

bool flag(std::string_view name) {
  const Knob& k = find(name);
  const std::string v = value(name).value_or(std::string(k.fallback));
  if (v.empty() || v == "0" || v == "false" || v == "off" || v == "no") return false;
  if (v == "1" || v == "true" || v == "on" || v == "yes") return true;
  fail(name, "=", v, ": expected 0 or 1");
}

int64_t integer(std::string_view name, int64_t min, int64_t max, int64_t fallback_if_unset) {
  const Knob& k = find(name);
  const std::string v = value(name).value_or(std::string(k.fallback));
  if (v.empty()) return fallback_if_unset;
  int64_t x = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc() || end != v.data() + v.size()) fail(name, "=", v, ": expected an integer");
  if (x < min || x > max) fail(name, "=", v, ": expected a value from ", min, " to ", max);
  return x;
}

std::optional<std::string> text(std::string_view name) {
  const Knob& k = find(name);
  std::optional<std::string> v = value(name);
  if (!v) return k.fallback.empty() ? std::nullopt : std::optional<std::string>(std::string(k.fallback));
  if (!choice_allowed(k, *v)) fail(name, "=", *v, ": expected one of ", k.choices);
  return v;
}

void set(std::string_view name, std::string v) {
  find(name);
  State& s = state();
  std::lock_guard lock(s.mu);
  s.overrides[std::string(name)] = std::move(v);
}

void unset(std::string_view name) {
  find(name);
  State& s = state();
  std::lock_guard lock(s.mu);
  if (auto it = s.overrides.find(name); it != s.overrides.end()) s.overrides.erase(it);
}

void reload_environment() {
  State& s = state();
  std::lock_guard lock(s.mu);
  load_locked(s);
}

std::vector<EffectiveKnob> effective() {
  std::vector<EffectiveKnob> out;
  State& s = state();
  std::lock_guard lock(s.mu);
  if (!s.loaded) load_locked(s);
  for (const Knob& k : kKnobs) {
    EffectiveKnob e{&k, std::nullopt, "default"};
    if (auto it = s.overrides.find(k.name); it != s.overrides.end()) {
      e.value = it->second, e.source = "set";
    } else if (auto env = s.environment.find(k.name); env != s.environment.end() && !env->second.empty()) {
      e.value = env->second, e.source = "environment";
    }
    if (k.secret && e.value) e.value = "(set, hidden)";  // listings never show a key
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<std::string> unknown_environment() {
  State& s = state();
  std::lock_guard lock(s.mu);
  if (!s.loaded) load_locked(s);
  std::vector<std::string> out;
  for (const auto& entry : s.environment) {
    const std::string& name = entry.first;
    const bool known = std::any_of(std::begin(kKnobs), std::end(kKnobs), [&](const Knob& k) { return k.name == name; });
    if (!known) out.push_back(name);
  }
  return out;
}

}  // namespace tandem::knobs
