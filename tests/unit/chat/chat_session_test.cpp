// ChatSession on the golden tiny deepseek2 model with the deepseek-coder vocabulary (random weights: the text is gibberish, the
// token sequences are what is checked).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "runtime/chat/chat_session.h"
#include "runtime/core/error.h"
#include "runtime/engine/model_loader.h"

namespace tandem {
namespace {

std::string model_path() { return std::string(TANDEM_SHARED_DIR) + "/golden/tiny-v3-q4km.gguf"; }

class ChatSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(model_path())) GTEST_SKIP() << "no " << model_path();
  }
  static LoadedModel load() {
    ModelLoadOptions o;
    o.path = ComputePath::Reference;
    return load_model(model_path(), o);
  }
  static ChatSessionOptions greedy(int n) {
    ChatSessionOptions o;
    o.sampling.temperature = 0.0f;
    o.max_new_tokens = n;
    return o;
  }
  static ChatTemplate template_of(const LoadedModel& m) {
    std::string warning;
    return ChatTemplate::for_model(*m.file, *m.tokenizer, "", &warning);
  }
};

TEST_F(ChatSessionTest, FallsBackToDeepseek2ForThisVocabWithAWarning) {
  LoadedModel m = load();
  std::string warning;
  const ChatTemplate t = ChatTemplate::for_model(*m.file, *m.tokenizer, "", &warning);
  EXPECT_EQ(t.format(), ChatFormat::Deepseek2);
  EXPECT_NE(warning.find("'deepseek2'"), std::string::npos) << warning;
  const ChatTemplate o = ChatTemplate::for_model(*m.file, *m.tokenizer, "chatml", &warning);
  EXPECT_EQ(o.format(), ChatFormat::Chatml);
  EXPECT_EQ(warning, "");
}

TEST_F(ChatSessionTest, GreedyReplyIsTheArgmaxContinuationAndStopsAtN) {
  LoadedModel m = load();
  const ChatTemplate t = template_of(m);
  ChatSession s(*m.lm, *m.tokenizer, t, greedy(6));
  s.set_system_prompt("Be brief.");
  std::vector<TokenId> streamed;
  std::string streamed_text;
  const ChatTurn turn = s.send("Hello", [&](TokenId id, std::string_view text) {
    if (id != kNoToken) streamed.push_back(id);
    streamed_text += text;
  });
  ASSERT_EQ(turn.stats.stop, StopReason::MaxTokens) << "the tiny model happened to end its turn";
  EXPECT_EQ(turn.reply_tokens.size(), 6u);
  EXPECT_EQ(turn.stats.generated_tokens, 6);
  EXPECT_EQ(streamed, turn.reply_tokens);
  EXPECT_EQ(streamed_text, m.tokenizer->decode(turn.reply_tokens));

  // The same continuation by hand: encode the rendered prompt, feed it, take argmaxes.
  const std::vector<ChatMessage> msgs = {{"system", "Be brief."}, {"user", "Hello"}};
  const std::string prompt = t.render(msgs, true);
  EXPECT_EQ(prompt, "<｜begin▁of▁sentence｜>Be brief.\n\nUser: Hello\n\nAssistant:");
  std::vector<TokenId> tokens = m.tokenizer->encode(prompt, false, true);
  ASSERT_EQ(tokens.front(), m.tokenizer->vocab().bos());
  EXPECT_EQ(turn.stats.prompt_tokens, int64_t(tokens.size()));
  m.lm->reset();
  std::vector<float> logits;
  std::vector<TokenId> expected;
  const int64_t nv = m.lm->n_vocab();
  m.lm->forward(tokens, logits);
  for (int i = 0; i < 6; ++i) {
    const float* last = logits.data() + logits.size() - size_t(nv);
    const TokenId best = TokenId(std::max_element(last, last + nv) - last);
    expected.push_back(best);
    const std::vector<TokenId> one = {best};
    m.lm->forward(one, logits);
  }
  EXPECT_EQ(turn.reply_tokens, expected);

  // And again from a fresh session: greedy is deterministic.
  LoadedModel m2 = load();
  ChatSession s2(*m2.lm, *m2.tokenizer, template_of(m2), greedy(6));
  s2.set_system_prompt("Be brief.");
  EXPECT_EQ(s2.send("Hello").reply_tokens, turn.reply_tokens);
}

// chatml: the reply is stored verbatim, so every later prompt extends the history text and
// only the new turn is fed. deepseek2: this model's gibberish replies lack the leading space the
// template writes after "Assistant:", so history no longer matches and everything is re-fed;
// the tokens must agree either way.
void run_incremental_vs_refeed(const std::string& format, bool expect_incremental) {
  auto load = [] {
    ModelLoadOptions o;
    o.path = ComputePath::Reference;
    return load_model(model_path(), o);
  };
  LoadedModel a = load();
  LoadedModel b = load();
  ChatSessionOptions inc;
  inc.sampling.temperature = 0.0f;
  inc.max_new_tokens = 5;
  ChatSessionOptions full = inc;
  full.reuse_cache = false;
  std::string warning;
  ChatSession si(*a.lm, *a.tokenizer, ChatTemplate::for_model(*a.file, *a.tokenizer, format, &warning), inc);
  ChatSession sf(*b.lm, *b.tokenizer, ChatTemplate::for_model(*b.file, *b.tokenizer, format, &warning), full);
  const char* users[] = {"Hello", "Tell me more about that.", "Thanks, bye"};
  for (int turn = 0; turn < 3; ++turn) {
    const size_t cached_before = si.cached_tokens().size();
    const ChatTurn ti = si.send(users[turn]);
    const ChatTurn tf = sf.send(users[turn]);
    EXPECT_EQ(ti.reply_tokens, tf.reply_tokens) << format << " turn " << turn;
    EXPECT_EQ(si.history_tokens(), sf.history_tokens()) << format << " turn " << turn;
    EXPECT_EQ(ti.stats.prompt_tokens, tf.stats.prompt_tokens);
    EXPECT_EQ(tf.stats.fed_tokens, tf.stats.prompt_tokens);
    if (turn > 0 && expect_incremental) {
      // Only what the cache lacked went through the model.
      EXPECT_GT(cached_before, 0u);
      EXPECT_EQ(ti.stats.fed_tokens, ti.stats.prompt_tokens - int64_t(cached_before)) << format << " turn " << turn;
    }
  }
  ASSERT_EQ(si.messages().size(), 6u);
  EXPECT_EQ(si.messages()[1].role, "assistant");
  // The cache holds the history minus at most the final, unfed token.
  const auto& h = si.history_tokens();
  const auto& c = si.cached_tokens();
  ASSERT_LE(c.size(), h.size());
  EXPECT_GE(c.size() + 1, h.size());
  EXPECT_TRUE(std::equal(c.begin(), c.end(), h.begin()));

  // After /reset the conversation starts over and matches a fresh first turn.
  si.reset();
  EXPECT_TRUE(si.messages().empty());
  EXPECT_TRUE(si.cached_tokens().empty());
  sf.reset();
  EXPECT_EQ(si.send("Hello").reply_tokens, sf.send("Hello").reply_tokens);
}

TEST_F(ChatSessionTest, IncrementalTurnsMatchRefeedingEverything) {
  run_incremental_vs_refeed("chatml", true);
  run_incremental_vs_refeed("deepseek2", false);
}

TEST_F(ChatSessionTest, ContextOverflowIsAClearErrorAndLeavesTheSessionUsable) {
  LoadedModel m = load();
  ChatSessionOptions o = greedy(100);
  o.context_limit = 16;
  ChatSession s(*m.lm, *m.tokenizer, template_of(m), o);
  const std::string long_text(200, 'x');
  try {
    s.send(long_text);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--ctx"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(s.messages().empty());
  // A short prompt fits; the reply stops when the cache is full.
  const ChatTurn t = s.send("Hi");
  if (t.stats.stop == StopReason::ContextFull) {
    EXPECT_EQ(s.cached_tokens().size(), 16u);
    EXPECT_EQ(t.stats.generated_tokens, 16 - t.stats.prompt_tokens + 1);
  } else {
    EXPECT_EQ(t.stats.stop, StopReason::EndOfTurn);
  }
  // The next turn cannot fit any more.
  EXPECT_THROW(s.send("again"), Error);
  EXPECT_EQ(s.messages().size(), 2u);
}

TEST_F(ChatSessionTest, StopTokensIncludeEos) {
  LoadedModel m = load();
  ChatSession s(*m.lm, *m.tokenizer, template_of(m), greedy(1));
  const auto& stops = s.stop_tokens();
  EXPECT_NE(std::find(stops.begin(), stops.end(), m.tokenizer->vocab().eos()), stops.end());
}

TEST_F(ChatSessionTest, ShouldStopEndsTheReplyAndKeepsIt) {
  LoadedModel m = load();
  ChatSession s(*m.lm, *m.tokenizer, template_of(m), greedy(50));
  int asked = 0;
  const ChatTurn turn = s.send("Hello", {}, [&] { return ++asked > 3; });
  EXPECT_EQ(turn.stats.stop, StopReason::Interrupted);
  EXPECT_EQ(turn.reply_tokens.size(), 3u);
  ASSERT_EQ(s.messages().size(), 2u);
  EXPECT_EQ(s.messages()[1].content, turn.reply);
  // The conversation goes on from there.
  const ChatTurn next = s.send("More", {});
  EXPECT_EQ(s.messages().size(), 4u);
  EXPECT_GT(next.stats.prompt_tokens, turn.stats.prompt_tokens);
}

TEST_F(ChatSessionTest, SetMessagesReplacesTheConversation) {
  LoadedModel m = load();
  ChatSession s(*m.lm, *m.tokenizer, template_of(m), greedy(2));
  s.send("Hello");
  s.set_messages({{"user", "a"}, {"assistant", "b"}});
  EXPECT_TRUE(s.cached_tokens().empty());
  s.send("c");
  EXPECT_EQ(s.last_prompt_text(), "<｜begin▁of▁sentence｜>User: a\n\nAssistant: b<｜end▁of▁sentence｜>User: c\n\nAssistant:");
  EXPECT_THROW(s.set_messages({{"tool", "x"}}), Error);
}

TEST_F(ChatSessionTest, ReasoningPrefixOpensThinkUnlessThePromptDid) {
  LoadedModel m = load();
  ChatSessionOptions o = greedy(2);
  o.reasoning_prefix = "<think>\n";
  ChatSession s(*m.lm, *m.tokenizer, template_of(m), o);
  s.send("Hello");
  EXPECT_TRUE(s.last_prompt_text().ends_with("Assistant:<think>\n")) << s.last_prompt_text();
  ChatSession r1(*m.lm, *m.tokenizer, ChatTemplate(ChatFormat::DeepseekR1, "", ""), o);
  r1.send("Hello");
  EXPECT_TRUE(r1.last_prompt_text().ends_with("<｜Assistant｜><think>\n")) << r1.last_prompt_text();
  EXPECT_FALSE(r1.last_prompt_text().ends_with("<think>\n<think>\n"));
}

TEST_F(ChatSessionTest, ATemplateRefusingTheConversationLeavesItAsItWas) {
  LoadedModel m = load();
  const ChatTemplate t = ChatTemplate::from_jinja(
      "{% if messages | length > 1 %}{{ raise_exception('one message only') }}{% endif %}{{ messages[0].content }}", "t",
      ChatFormat::Deepseek2, "", "");
  ChatSession s(*m.lm, *m.tokenizer, t, greedy(2));
  s.send("Hello");
  EXPECT_EQ(s.messages().size(), 2u);
  EXPECT_THROW(s.send("again"), Error);
  EXPECT_EQ(s.messages().size(), 2u);
}

}  // namespace
}  // namespace tandem
