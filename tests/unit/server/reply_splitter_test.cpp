#include "runtime/server/reply_splitter.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tandem::server {
namespace {

// Pushes the chunks one by one, then finishes; returns everything that came out.
ReasoningPiece run(ReplySplitter& s, const std::vector<std::string>& chunks) {
  ReasoningPiece all;
  auto add = [&](const ReasoningPiece& p) {
    all.reasoning += p.reasoning;
    all.content += p.content;
  };
  for (const auto& c : chunks) add(s.push(c));
  add(s.finish());
  return all;
}

TEST(ReplySplitter, ReplyWithoutReasoningKeepsItsLeadingSpace) {
  ReplySplitter s("<｜Assistant｜>", true);
  const auto p = run(s, {" ", " <", "b>hi", " there"});
  EXPECT_EQ(p.content, "  <b>hi there");
  EXPECT_EQ(p.reasoning, "");
}

TEST(ReplySplitter, WhitespaceOnlyReplyStays) {
  ReplySplitter s("", true);
  EXPECT_EQ(run(s, {" ", "\n"}).content, " \n");
}

TEST(ReplySplitter, ThinkInTheReplyIsSplit) {
  ReplySplitter s("User: x\nAssistant:", true);
  const auto p = run(s, {" <th", "ink>\nstep one", "</thi", "nk>\n\nanswer"});
  EXPECT_EQ(p.reasoning, "step one");
  EXPECT_EQ(p.content, "answer");
}

TEST(ReplySplitter, PromptThatOpensThinkStartsInReasoning) {
  ReplySplitter s("<｜Assistant｜><think>\n", true);
  const auto p = run(s, {"hmm", "</think>", " yes"});
  EXPECT_EQ(p.reasoning, "hmm");
  EXPECT_EQ(p.content, "yes");
  ReplySplitter closed("<think>a</think>", true);
  EXPECT_EQ(run(closed, {" plain"}).content, " plain");
}

TEST(ReplySplitter, DisabledPassesEverythingAsContent) {
  ReplySplitter s("<think>\n", false);
  const auto p = run(s, {"<think>x</think>", " y"});
  EXPECT_EQ(p.content, "<think>x</think> y");
  EXPECT_EQ(p.reasoning, "");
}

}  // namespace
}  // namespace tandem::server
