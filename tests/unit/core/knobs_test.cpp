// The knob table: typed reads, checks naming the variable, overrides, the environment snapshot.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <string>

#include "runtime/core/error.h"
#include "runtime/core/knobs.h"

namespace tandem {
namespace {

TEST(Knobs, TableNamesAreUniqueAndDocumented) {
  std::set<std::string> names;
  for (const auto& k : knobs::table()) {
    EXPECT_TRUE(names.insert(std::string(k.name)).second) << k.name;
    EXPECT_TRUE(k.name.starts_with("TANDEM_")) << k.name;
    EXPECT_FALSE(k.help.empty()) << k.name;
  }
}

TEST(Knobs, TypedReadsAndErrorsNameTheVariable) {
  knobs::set("TANDEM_AMX_MIN_TOKENS", "32");
  EXPECT_EQ(knobs::integer("TANDEM_AMX_MIN_TOKENS", 1, 100, 16), 32);
  knobs::set("TANDEM_AMX_MIN_TOKENS", "12x");
  try {
    knobs::integer("TANDEM_AMX_MIN_TOKENS", 1, 100, 16);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("TANDEM_AMX_MIN_TOKENS=12x"), std::string::npos) << e.what();
  }
  knobs::set("TANDEM_AMX_MIN_TOKENS", "0");
  EXPECT_THROW(knobs::integer("TANDEM_AMX_MIN_TOKENS", 1, 100, 16), Error);
  knobs::unset("TANDEM_AMX_MIN_TOKENS");
  if (!knobs::value("TANDEM_AMX_MIN_TOKENS")) {
    EXPECT_EQ(knobs::integer("TANDEM_AMX_MIN_TOKENS", 1, 100, 16), 16);
  }

  knobs::set("TANDEM_MOE_PHASES", "1");
  EXPECT_TRUE(knobs::flag("TANDEM_MOE_PHASES"));
  knobs::set("TANDEM_MOE_PHASES", "maybe");
  EXPECT_THROW(knobs::flag("TANDEM_MOE_PHASES"), Error);
  knobs::unset("TANDEM_MOE_PHASES");

  knobs::set("TANDEM_PREFILL_PATH", "blas");
  EXPECT_EQ(knobs::text("TANDEM_PREFILL_PATH"), "blas");
  knobs::set("TANDEM_PREFILL_PATH", "fast");
  EXPECT_THROW(knobs::text("TANDEM_PREFILL_PATH"), Error);
  knobs::unset("TANDEM_PREFILL_PATH");
  EXPECT_THROW(knobs::value("TANDEM_NO_SUCH_KNOB"), Error);
}

TEST(Knobs, EnvironmentIsReadOnceAndUnknownNamesReported) {
  setenv("TANDEM_POOL_SPIN_US", "7", 1);
  setenv("TANDEM_POOL_SPINUS", "7", 1);  // a typo
  knobs::reload_environment();
  EXPECT_EQ(knobs::integer("TANDEM_POOL_SPIN_US", 0, 100), 7);
  setenv("TANDEM_POOL_SPIN_US", "9", 1);  // not seen until the next reload
  EXPECT_EQ(knobs::integer("TANDEM_POOL_SPIN_US", 0, 100), 7);
  knobs::set("TANDEM_POOL_SPIN_US", "3");  // an override wins over the environment
  EXPECT_EQ(knobs::integer("TANDEM_POOL_SPIN_US", 0, 100), 3);
  bool listed = false;
  for (const auto& e : knobs::effective())
    if (e.knob->name == "TANDEM_POOL_SPIN_US") listed = e.source == "set" && e.value == "3";
  EXPECT_TRUE(listed);
  const auto unknown = knobs::unknown_environment();
  EXPECT_NE(std::find(unknown.begin(), unknown.end(), "TANDEM_POOL_SPINUS"), unknown.end());
  knobs::unset("TANDEM_POOL_SPIN_US");
  unsetenv("TANDEM_POOL_SPIN_US");
  unsetenv("TANDEM_POOL_SPINUS");
  knobs::reload_environment();
  EXPECT_EQ(knobs::integer("TANDEM_POOL_SPIN_US", 0, 100, 5), 5);
}

TEST(Knobs, SecretsAreReadableButNeverListed) {
  knobs::set("TANDEM_API_KEY", "sekrit-123");
  EXPECT_EQ(knobs::text("TANDEM_API_KEY"), "sekrit-123");
  for (const auto& e : knobs::effective())
    if (e.knob->name == "TANDEM_API_KEY") {
      EXPECT_EQ(e.value, "(set, hidden)");
    }
  knobs::unset("TANDEM_API_KEY");
}

}  // namespace
}  // namespace tandem
