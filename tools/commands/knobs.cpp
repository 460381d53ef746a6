// `tandem knobs`: every tunable tandem reads from the environment, with its type, default,
// effective value and where that value came from.
#include <cstdio>
#include <string>

#include "runtime/core/knobs.h"
#include "tools/command_registry.h"

namespace tandem::tools {
namespace {

const char* type_name(knobs::KnobType t) {
  switch (t) {
    case knobs::KnobType::Flag: return "flag";
    case knobs::KnobType::Integer: return "integer";
    case knobs::KnobType::Choice: return "choice";
    case knobs::KnobType::Text: return "text";
  }
  return "?";
}

void setup_knobs(CLI::App& root) {
  auto* cmd = root.add_subcommand("knobs", "List the TANDEM_* tuning knobs with their effective values");
  cmd->callback([] {
    for (const auto& e : knobs::effective()) {
      const knobs::Knob& k = *e.knob;
      std::string type = type_name(k.type);
      if (!k.choices.empty()) type += " " + std::string(k.choices);
      const std::string value = e.value ? *e.value : (k.fallback.empty() ? "(unset)" : std::string(k.fallback));
      std::printf("%-30s %-12s (%s)  [%s]\n    %.*s\n", std::string(k.name).c_str(), value.c_str(),
                  e.source.c_str(), type.c_str(), int(k.help.size()), k.help.data());
    }
    for (const auto& name : knobs::unknown_environment())
      std::printf("warning: %s is set but no knob has that name\n", name.c_str());
  });
}

TANDEM_COMMAND(setup_knobs);

}  // namespace
}  // namespace tandem::tools
