// Every rules file we ship parses, names its machine on its first line, and places a routed
// expert tensor somewhere (a rule or the defaults).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "placement/rules.h"
#include "placement/tensor_kind.h"

namespace tandem::placement {
namespace {

TEST(PlacementShippedRules, EveryFileParses) {
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(TANDEM_RULES_DIR)) {
    if (entry.path().extension() != ".yaml") continue;
    ++files;
    const std::string path = entry.path().string();
    std::ifstream in(path);
    std::string first;
    std::getline(in, first);
    EXPECT_EQ(first.rfind("# For: ", 0), 0u) << path;
    const Rules r = parse_rules_file(path);
    const std::string exps = "blk.40.ffn_up_exps.weight";
    const Rule* rule = first_matching_rule(r, exps, *classify_tensor(exps), 40);
    EXPECT_TRUE(rule != nullptr || r.defaults) << path;
  }
  EXPECT_EQ(files, 6);
}

}  // namespace
}  // namespace tandem::placement
