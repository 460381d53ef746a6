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

// A word where a command must come that names none is a mistyped command (`tandem foo`, `tandem
// bench foo`): say which and list the commands there (CLI11 alone says only that the argument was
// not expected, or that a subcommand is required). Returns whether it reported one.
bool report_unknown_command(CLI::App& root, int argc, char** argv) {
  CLI::App* app = &root;
  std::string path = "tandem";
  for (int i = 1; i < argc && argv[i][0] != '-'; ++i) {
    const std::string word = argv[i];
    const auto subs = app->get_subcommands([](CLI::App*) { return true; });
    CLI::App* next = nullptr;
    for (CLI::App* sub : subs)
      if (sub->check_name(word)) next = sub;
    if (next) {
      app = next;
      path += " " + next->get_name();
      continue;
    }
    if (subs.empty() || app->get_require_subcommand_min() == 0) return false;  // a positional argument
    std::string names;
    for (const CLI::App* sub : subs)
      if (!sub->get_group().empty()) names += (names.empty() ? "" : ", ") + sub->get_name();
    std::fprintf(stderr, "%s: unknown command '%s'\ncommands: %s\n(`%s COMMAND --help` for one)\n", path.c_str(),
                 word.c_str(), names.c_str(), path.c_str());
    return true;
  }
  return false;
}

}  // namespace
}  // namespace tandem::tools

int main(int argc, char** argv) {
  CLI::App app{"tandem: large Mixture-of-Experts models on one server (GPU attention, CPU experts)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tandem 0.1.0");
  for (auto setup : tandem::tools::command_setups()) setup(app);
  if (tandem::tools::report_unknown_command(app, argc, argv)) return 1;
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
