// Every tunable that is not part of a model's placement, declared once (knobs.cpp: name, type,
// default, help) and set through the environment (TANDEM_*) or, in tests and commands, set().
// The environment is read once, at the first use of any knob; values are checked where they are
// read and a bad one is an Error naming the variable. `tandem knobs` prints the table with the
// effective values. Code reads knobs where it decides (engine construction, kernel choice),
// never inside a kernel's loop.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::knobs {

enum class KnobType { Flag, Integer, Choice, Text };

struct Knob {
  std::string_view name;      // the environment variable
  KnobType type;
  std::string_view fallback;  // the default, as text ("" for none: unset means "decide")
  std::string_view choices;   // Choice: the accepted values, separated by '|'
  std::string_view help;
  bool secret = false;        // shown masked by every listing (API keys)
};

std::span<const Knob> table();

// The knob's text when set (override, else environment), nullopt when neither set it.
// Throws Error for a name that is not in the table.
std::optional<std::string> value(std::string_view name);
// Typed reads: the set value checked against the type (Error names the variable and the value),
// else the default (Flag: false when the default is empty; Integer: fallback_if_unset when the
// default is empty).
bool flag(std::string_view name);
int64_t integer(std::string_view name, int64_t min, int64_t max, int64_t fallback_if_unset = 0);
// Choice (checked against the choices) or Text: the set value, else the default if any.
std::optional<std::string> text(std::string_view name);

// Overrides the environment for this process (tests, command-line options).
void set(std::string_view name, std::string value);
void unset(std::string_view name);  // back to the environment's value, if any
// Reads the environment again (tests that setenv); drops no override.
void reload_environment();

struct EffectiveKnob {
  const Knob* knob;
  std::optional<std::string> value;  // nullopt: the default; "(set, hidden)" for a secret
  std::string source;                // "default", "environment" or "set"
};
std::vector<EffectiveKnob> effective();
// TANDEM_* variables in the environment that no knob declares (typos), sorted.
std::vector<std::string> unknown_environment();

}  // namespace tandem::knobs
