// Stop strings cut the text before their first occurrence, even when split across tokens,
// and nothing of a stop string is ever emitted.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "runtime/server/stop_string_matcher.h"

namespace tandem::server {
namespace {

// Feeds pieces one by one; returns everything emitted (finish() included) and whether it stopped.
std::pair<std::string, bool> run(std::vector<std::string> stops, const std::vector<std::string>& pieces) {
  StopStringMatcher m(std::move(stops));
  std::string out;
  for (const auto& p : pieces) out += m.push(p);
  const bool stopped = m.stopped();
  out += m.finish();
  return {out, stopped};
}

TEST(StopStringMatcherTest, NoStopsPassesEverythingThrough) {
  StopStringMatcher m({});
  EXPECT_EQ(m.push("abc"), "abc");
  EXPECT_EQ(m.push(""), "");
  EXPECT_EQ(m.finish(), "");
  EXPECT_FALSE(m.stopped());
}

TEST(StopStringMatcherTest, StopInsideOnePiece) {
  EXPECT_EQ(run({"END"}, {"hello END world"}), std::make_pair(std::string("hello "), true));
}

TEST(StopStringMatcherTest, StopSpanningPiecesIsHeldBackThenCut) {
  StopStringMatcher m({"</s>"});
  EXPECT_EQ(m.push("ab<"), "ab");  // "<" might start the stop string
  EXPECT_EQ(m.push("/"), "");
  EXPECT_EQ(m.push("s>tail"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.push("more"), "");
  EXPECT_EQ(m.finish(), "");
}

TEST(StopStringMatcherTest, AFalseStartIsReleased) {
  StopStringMatcher m({"</s>"});
  EXPECT_EQ(m.push("a</"), "a");
  EXPECT_EQ(m.push("b"), "</b");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.push("<"), "");
  EXPECT_EQ(m.finish(), "<");  // the stream ended: held text is real text
}

TEST(StopStringMatcherTest, EarliestOfSeveralStopsWins) {
  EXPECT_EQ(run({"world", "lo"}, {"hello world"}), std::make_pair(std::string("hel"), true));
  EXPECT_EQ(run({"xyz", "b"}, {"a", "b", "c"}), std::make_pair(std::string("a"), true));
}

TEST(StopStringMatcherTest, OverlappingPrefixes) {
  // "aab" contains "ab" starting at 1: the held "a" + "a" must not hide it.
  EXPECT_EQ(run({"ab"}, {"a", "a", "b"}), std::make_pair(std::string("a"), true));
  EXPECT_EQ(run({"aaab"}, {"aa", "aa", "b"}), std::make_pair(std::string("a"), true));
}

TEST(StopStringMatcherTest, EmptyStopStringsAreIgnored) {
  EXPECT_EQ(run({""}, {"abc"}), std::make_pair(std::string("abc"), false));
}

}  // namespace
}  // namespace tandem::server
