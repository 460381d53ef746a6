// tandem: run DeepSeek-class MoE models with attention on the GPU and experts on the CPU.
#include <cstdio>
#include <exception>
#include <string>

#include "runtime/core/error.h"
#include "runtime/core/knobs.h"
#include "tools/command_registry.h"

namespace tandem::tools {
std::vector<CommandSetup>& command_setups() {
  static std::vector<CommandSetup> setups;
  return setups;
}
namespace {

// A first word that names no command is a mistyped one: say which and list the commands (CLI11
// alone says only that the argument was not expected). Returns whether it was unknown.
bool report_unknown_command(CLI::App& app, const std::string& word) {
  const auto subs = app.get_subcommands([](CLI::App*) { return true; });
  for (const CLI::App* sub : subs)
    if (sub->check_name(word)) return false;
  std::string names;
  for (const CLI::App* sub : subs)
    if (!sub->get_group().empty()) names += (names.empty() ? "" : ", ") + sub->get_name();
  std::fprintf(stderr, "tandem: unknown command '%s'\ncommands: %s\n(`tandem COMMAND --help` for one)\n",
               word.c_str(), names.c_str());
  return true;
}

}  // namespace
}  // namespace tandem::tools

int main(int argc, char** argv) {
  CLI::App app{"tandem: large Mixture-of-Experts models on one server (GPU attention, CPU experts)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tandem 0.1.0");
  for (auto setup : tandem::tools::command_setups()) setup(app);
  if (argc > 1 && argv[1][0] != '-' && tandem::tools::report_unknown_command(app, argv[1])) return 1;
  try {
    for (const auto& name : tandem::knobs::unknown_environment())  // a typo would be ignored silently
      std::fprintf(stderr, "tandem: warning: %s is set but is not a tandem knob (see `tandem knobs`)\n", name.c_str());
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const tandem::Error& e) {
    std::fprintf(stderr, "tandem: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "tandem: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tandem: internal error: %s\n", e.what());
    return 2;
  }
  return 0;
}
