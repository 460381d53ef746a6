// ReasoningSplitter: R1-style <think> separation, with the tags split across chunks at every
// possible place and the prompt-opened case.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "runtime/chat/reasoning_splitter.h"

namespace tandem {
namespace {

ReasoningPiece whole(std::string_view text, bool starts_in_reasoning) {
  ReasoningSplitter s(starts_in_reasoning);
  ReasoningPiece r = s.push(text);
  const ReasoningPiece end = s.finish();
  r.reasoning += end.reasoning;
  r.content += end.content;
  return r;
}

// The same text pushed in pieces cut at the given positions.
ReasoningPiece chunked(std::string_view text, bool starts_in_reasoning, const std::vector<size_t>& cuts) {
  ReasoningSplitter s(starts_in_reasoning);
  ReasoningPiece r;
  size_t at = 0;
  auto add = [&](const ReasoningPiece& p) {
    r.reasoning += p.reasoning;
    r.content += p.content;
  };
  for (size_t c : cuts) {
    add(s.push(text.substr(at, c - at)));
    at = c;
  }
  add(s.push(text.substr(at)));
  add(s.finish());
  return r;
}

void expect_split(std::string_view text, bool starts, const std::string& reasoning, const std::string& content) {
  const ReasoningPiece w = whole(text, starts);
  EXPECT_EQ(w.reasoning, reasoning) << text;
  EXPECT_EQ(w.content, content) << text;
  // Every single cut, every pair of cuts, and byte-at-a-time give the same split.
  for (size_t i = 0; i <= text.size(); ++i) {
    for (size_t j = i; j <= text.size(); ++j) {
      const ReasoningPiece c = chunked(text, starts, {i, j});
      ASSERT_EQ(c.reasoning, reasoning) << text << " cut at " << i << "," << j;
      ASSERT_EQ(c.content, content) << text << " cut at " << i << "," << j;
    }
  }
  std::vector<size_t> every;
  for (size_t i = 1; i < text.size(); ++i) every.push_back(i);
  const ReasoningPiece b = chunked(text, starts, every);
  EXPECT_EQ(b.reasoning, reasoning);
  EXPECT_EQ(b.content, content);
}

TEST(ReasoningSplitter, ReplyOpensThink) {
  expect_split("<think>\nLet me see.\n</think>\n\nThe answer is 4.", false, "Let me see.\n", "The answer is 4.");
  expect_split("  \n<think>a</think>b", false, "a", "b");
}

TEST(ReasoningSplitter, PromptAlreadyOpenedThink) {
  expect_split("Let me see.\n</think>\n\nFour.", true, "Let me see.\n", "Four.");
  expect_split("no close tag, all reasoning <", true, "no close tag, all reasoning <", "");
}

TEST(ReasoningSplitter, NoReasoning) {
  expect_split("Just an answer with </think> and <think> inside.", false, "",
               "Just an answer with </think> and <think> inside.");
  expect_split("<thin", false, "", "<thin");        // a partial tag at the end is text
  expect_split("<thinking>x", false, "", "<thinking>x");
  expect_split("", false, "", "");
}

TEST(ReasoningSplitter, LaterThinkIsContent) {
  expect_split("<think>r</think>c <think>more</think>", false, "r", "c <think>more</think>");
}

TEST(ReasoningSplitter, NearMissCloseTagsStayReasoning) {
  expect_split("<think>a </thin b <//think> c</think>d", false, "a </thin b <//think> c", "d");
}

TEST(ReasoningSplitter, StateAndRandomChunks) {
  ReasoningSplitter s(false);
  EXPECT_FALSE(s.in_reasoning());
  EXPECT_TRUE(s.push("<thi").empty());
  EXPECT_EQ(s.push("nk>abc</th").reasoning, "abc");
  EXPECT_TRUE(s.in_reasoning());
  EXPECT_EQ(s.push("ink>x").content, "x");
  EXPECT_FALSE(s.in_reasoning());
  EXPECT_TRUE(s.saw_reasoning());

  const std::string text = "<think>\nstep 1\nstep 2 </ think ü </think>\n\nresult ✓ </think>";
  std::mt19937 rng(7);
  for (int n = 0; n < 200; ++n) {
    std::vector<size_t> cuts;
    for (size_t i = 1; i < text.size(); ++i)
      if (rng() % 4 == 0) cuts.push_back(i);
    const ReasoningPiece c = chunked(text, false, cuts);
    ASSERT_EQ(c.reasoning, "step 1\nstep 2 </ think ü ");
    ASSERT_EQ(c.content, "result ✓ </think>");
  }
}

TEST(ReasoningSplitter, PromptOpensReasoning) {
  EXPECT_TRUE(ReasoningSplitter::prompt_opens_reasoning("<｜User｜>hi<｜Assistant｜><think>\n"));
  EXPECT_FALSE(ReasoningSplitter::prompt_opens_reasoning("<｜User｜>hi<｜Assistant｜>"));
  EXPECT_FALSE(ReasoningSplitter::prompt_opens_reasoning("<think>\n\n</think>\n\n"));  // Qwen3 thinking off
  EXPECT_TRUE(ReasoningSplitter::prompt_opens_reasoning("<think>x</think> then <think>"));
}

// keep_leading_space: what the server uses (it replaced a wrapper that restored the space).
ReasoningPiece run_kept(std::string_view prompt, const std::vector<std::string>& chunks) {
  ReasoningSplitOptions o;
  o.starts_in_reasoning = ReasoningSplitter::prompt_opens_reasoning(prompt);
  o.keep_leading_space = true;
  ReasoningSplitter s(o);
  ReasoningPiece all;
  auto add = [&](const ReasoningPiece& p) {
    all.reasoning += p.reasoning;
    all.content += p.content;
  };
  for (const auto& c : chunks) add(s.push(c));
  add(s.finish());
  return all;
}

TEST(ReasoningSplitter, KeepLeadingSpaceWhenThereIsNoReasoning) {
  auto p = run_kept("<｜Assistant｜>", {" ", " <", "b>hi", " there"});
  EXPECT_EQ(p.content, "  <b>hi there");
  EXPECT_EQ(p.reasoning, "");
  EXPECT_EQ(run_kept("", {" ", "\n"}).content, " \n");  // whitespace only
  p = run_kept("User: x\nAssistant:", {" <th", "ink>\nstep one", "</thi", "nk>\n\nanswer"});
  EXPECT_EQ(p.reasoning, "step one");
  EXPECT_EQ(p.content, "answer");
  p = run_kept("<｜Assistant｜><think>\n", {"hmm", "</think>", " yes"});
  EXPECT_EQ(p.reasoning, "hmm");
  EXPECT_EQ(p.content, "yes");
  EXPECT_EQ(run_kept("<think>a</think>", {" plain"}).content, " plain");
  // Without the option the leading space goes.
  ReasoningSplitter plain;
  ReasoningPiece q = plain.push(" x");
  EXPECT_EQ(q.content + plain.finish().content, "x");
}

}  // namespace
}  // namespace tandem
