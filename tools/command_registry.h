// Each subcommand of `tandem` lives in one file under tools/commands/ and registers itself
// here with TANDEM_COMMAND(setup), where setup(CLI::App& root) adds its subcommand.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace tandem::tools {

using CommandSetup = void (*)(CLI::App& root);

std::vector<CommandSetup>& command_setups();

struct CommandRegistration {
  explicit CommandRegistration(CommandSetup setup) { command_setups().push_back(setup); }
};

}  // namespace tandem::tools

#define TANDEM_COMMAND_CAT2(a, b) a##b
#define TANDEM_COMMAND_CAT(a, b) TANDEM_COMMAND_CAT2(a, b)
#define TANDEM_COMMAND(setup) \
  static ::tandem::tools::CommandRegistration TANDEM_COMMAND_CAT(tandem_command_, __LINE__)(setup)
