// The models' own chat templates (tests/unit/chat/templates, copied from their
// tokenizer_config.json / GGUF files) rendered by the Jinja interpreter, checked byte for byte
// against the hand-written renderer of the same family on a set of conversations, generation
// prompt on and off. Where a real template differs from the hand-written one by design, the
// difference itself is pinned down.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "runtime/chat/chat_template.h"
#include "runtime/core/error.h"

namespace tandem {
namespace {

const std::string kDsBos = "<｜begin▁of▁sentence｜>";
const std::string kDsEos = "<｜end▁of▁sentence｜>";

std::string template_text(const std::string& name) {
  std::ifstream in(std::string(TANDEM_CHAT_TEMPLATES_DIR) + "/" + name + ".jinja", std::ios::binary);
  EXPECT_TRUE(in) << name;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Family {
  std::string file;
  ChatFormat format;
  std::string bos, eos;
};

using Conversation = std::vector<ChatMessage>;

// Conversations on which every family's template and hand-written renderer agree. withsystem:
// those start with one system message (Qwen2.5 writes its own default system prompt without one).
std::vector<Conversation> conversations(bool with_system) {
  std::vector<Conversation> all = {
      {{"user", "Hi"}},
      {{"user", "Hi"}, {"assistant", "Hello! How can I help?"}, {"user", "What is 2+2?"}},
      {{"user", "Hi"}, {"assistant", " 4 "}, {"user", "multi\nline\n\n text "}, {"assistant", "ok"}, {"user", "Thanks"}},
      {{"user", "ünïcödé ✓ 你好"}, {"assistant", "{{ not jinja }} {% raw %}"}, {"user", "'quotes' \"and\" \\"}},
  };
  if (with_system)
    for (auto& c : all) c.insert(c.begin(), ChatMessage{"system", "You are terse."});
  return all;
}

void expect_same(const Family& f, const std::vector<Conversation>& convs, bool generation_prompt_off_too = true) {
  const ChatTemplate jinja = ChatTemplate::from_jinja(template_text(f.file), f.file, f.format, f.bos, f.eos);
  const ChatTemplate hand(f.format, f.bos, f.eos);
  ASSERT_TRUE(jinja.uses_jinja());
  for (size_t i = 0; i < convs.size(); ++i) {
    EXPECT_EQ(jinja.render(convs[i], true), hand.render(convs[i], true)) << f.file << " conversation " << i;
    if (generation_prompt_off_too) {
      EXPECT_EQ(jinja.render(convs[i], false), hand.render(convs[i], false)) << f.file << " conversation " << i;
    }
  }
}

TEST(ChatTemplateJinja, DeepseekV2) {
  const Family f{"deepseek-v2", ChatFormat::Deepseek2, kDsBos, kDsEos};
  expect_same(f, conversations(false));
  expect_same(f, conversations(true));
}

TEST(ChatTemplateJinja, DeepseekV3) {
  const Family f{"deepseek-v3", ChatFormat::Deepseek3, kDsBos, kDsEos};
  expect_same(f, conversations(false));
  expect_same(f, conversations(true));
  // V3 joins several system messages with a blank line; the hand-written format keeps the last.
  const Conversation two = {{"system", "A"}, {"system", "B"}, {"user", "u"}};
  const ChatTemplate jinja = ChatTemplate::from_jinja(template_text(f.file), f.file, f.format, f.bos, f.eos);
  EXPECT_EQ(jinja.render(two, true), kDsBos + "A\n\nB<｜User｜>u<｜Assistant｜>");
}

TEST(ChatTemplateJinja, DeepseekV25) {
  const Family f{"deepseek-v2.5", ChatFormat::Deepseek3, kDsBos, kDsEos};
  expect_same(f, conversations(false));
  // The real V2.5 template writes the 8 spaces that precede its {% set %} once per system
  // message, before BOS (a quirk of its whitespace control, which Jinja2 has too).
  const ChatTemplate jinja = ChatTemplate::from_jinja(template_text(f.file), f.file, f.format, f.bos, f.eos);
  const ChatTemplate hand(f.format, f.bos, f.eos);
  for (const auto& c : conversations(true)) EXPECT_EQ(jinja.render(c, true), "        " + hand.render(c, true));
}

TEST(ChatTemplateJinja, DeepseekR1) {
  const Family f{"deepseek-r1", ChatFormat::DeepseekR1, kDsBos, kDsEos};
  expect_same(f, conversations(false));
  expect_same(f, conversations(true));
  // Earlier replies lose their reasoning; the generation prompt opens <think>.
  const Conversation c = {{"user", "Hi"}, {"assistant", "<think>\nhm\n</think>\n\nHello"}, {"user", "Bye"}};
  expect_same(f, {c});
  const ChatTemplate jinja = ChatTemplate::from_jinja(template_text(f.file), f.file, f.format, f.bos, f.eos);
  EXPECT_EQ(jinja.render(c, true),
            kDsBos + "<｜User｜>Hi<｜Assistant｜>\n\nHello" + kDsEos + "<｜User｜>Bye<｜Assistant｜><think>\n");
}

TEST(ChatTemplateJinja, Qwen25) {
  const Family f{"qwen2.5", ChatFormat::Chatml, "", "<|im_end|>"};
  expect_same(f, conversations(true));
  // Without a system message Qwen2.5 writes its own; the hand-written chatml writes none.
  const ChatTemplate jinja = ChatTemplate::from_jinja(template_text(f.file), f.file, f.format, f.bos, f.eos);
  EXPECT_EQ(jinja.render(Conversation{{"user", "Hi"}}, true),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplateJinja, Qwen3) {
  const Family f{"qwen3", ChatFormat::Chatml, "", "<|im_end|>"};
  // Conversations ending with a user turn: earlier replies render as plain chatml.
  std::vector<Conversation> ending_with_user;
  for (auto with_system : {false, true})
    for (auto& c : conversations(with_system))
      if (c.back().role == "user") ending_with_user.push_back(c);
  expect_same(f, ending_with_user);
  // A reply after the last user turn gets its (empty) reasoning block; an earlier one loses it.
  const ChatTemplate jinja = ChatTemplate::from_jinja(template_text(f.file), f.file, f.format, f.bos, f.eos);
  EXPECT_EQ(jinja.render(Conversation{{"user", "Hi"}, {"assistant", "<think>\nhm\n</think>\n\nHello"}}, false),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\nhm\n</think>\n\nHello<|im_end|>\n");
  EXPECT_EQ(jinja.render(Conversation{{"user", "Hi"}, {"assistant", "<think>\nhm\n</think>\n\nHello"}, {"user", "Bye"}},
                         true),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n"
            "<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplateJinja, Llama3) {
  const Family f{"llama3", ChatFormat::Llama3, "<|begin_of_text|>", "<|eot_id|>"};
  expect_same(f, conversations(false));
  expect_same(f, conversations(true));
}

TEST(ChatTemplateJinja, ToolsAndExtraMessageFieldsReachTheTemplate) {
  const ChatTemplate jinja =
      ChatTemplate::from_jinja(template_text("qwen2.5"), "qwen2.5", ChatFormat::Chatml, "", "<|im_end|>");
  const auto messages = nlohmann::ordered_json::parse(R"([
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [{"type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
    {"role": "tool", "content": "18C"}])");
  const auto vars = nlohmann::ordered_json::parse(
      R"({"tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]})");
  const std::string r = jinja.render_json(messages, true, vars);
  EXPECT_NE(r.find("<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": {}}}\n</tools>"),
            std::string::npos)
      << r;
  EXPECT_NE(r.find("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"),
            std::string::npos)
      << r;
  EXPECT_NE(r.find("<|im_start|>user\n<tool_response>\n18C\n</tool_response><|im_end|>\n"), std::string::npos) << r;
  // The hand-written renderer has no tool format and says so.
  const ChatTemplate hand(ChatFormat::Chatml, "", "<|im_end|>");
  EXPECT_THROW(hand.render_json(messages, true, vars), Error);
}

TEST(ChatTemplateJinja, ParseErrorNamesSourceLineAndColumn) {
  try {
    ChatTemplate::from_jinja("ok\n{% if x %}\n{{ y + }}", "my.jinja", ChatFormat::Chatml, "", "");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("my.jinja"), std::string::npos) << m;
    EXPECT_NE(m.find("line 3"), std::string::npos) << m;
    EXPECT_NE(m.find("column"), std::string::npos) << m;
  }
}

TEST(ChatTemplateJinja, RaiseExceptionIsAnErrorWithTheTemplatesMessage) {
  const ChatTemplate t = ChatTemplate::from_jinja(
      "{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}ok", "t",
      ChatFormat::Chatml, "", "");
  EXPECT_EQ(t.render(Conversation{{"user", "a"}}, true), "ok");
  try {
    t.render(Conversation{{"system", "s"}}, true);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("System role not supported"), std::string::npos) << e.what();
  }
}

TEST(ChatTemplateJinja, ModelTemplateFallsBackWithAOneLineReason) {
  std::string warning;
  // Renders: the Jinja path, no warning.
  const ChatTemplate ok = ChatTemplate::from_model_text(template_text("deepseek-v3"), "tokenizer.chat_template", false,
                                                        true, kDsBos, kDsEos, &warning);
  EXPECT_TRUE(ok.uses_jinja());
  EXPECT_EQ(ok.format(), ChatFormat::Deepseek3);
  EXPECT_EQ(warning, "");
  // Outside the subset (an {% include %}): the detected hand-written format, with the reason.
  const std::string outside = "{% include 'x' %}<｜User｜><｜Assistant｜>";
  const ChatTemplate fb =
      ChatTemplate::from_model_text(outside, "tokenizer.chat_template", false, true, kDsBos, kDsEos, &warning);
  EXPECT_FALSE(fb.uses_jinja());
  EXPECT_EQ(fb.format(), ChatFormat::Deepseek3);
  EXPECT_NE(warning.find("tokenizer.chat_template"), std::string::npos) << warning;
  EXPECT_NE(warning.find("hand-written 'deepseek3'"), std::string::npos) << warning;
  EXPECT_EQ(warning.find('\n'), std::string::npos) << warning;
  // An unknown filter is found by the probe render.
  const ChatTemplate fb2 = ChatTemplate::from_model_text("{{ messages | frobnicate }}", "tokenizer.chat_template",
                                                         false, false, "", "", &warning);
  EXPECT_FALSE(fb2.uses_jinja());
  EXPECT_NE(warning.find("frobnicate"), std::string::npos) << warning;
  // --chat-template-file (strict): the same template is an Error.
  EXPECT_THROW(ChatTemplate::from_model_text(outside, "t.jinja", true, true, kDsBos, kDsEos, &warning), Error);
  // No template: the old fallback and its warning.
  const ChatTemplate none = ChatTemplate::from_model_text(std::nullopt, "tokenizer.chat_template", false, false, kDsBos,
                                                          kDsEos, &warning);
  EXPECT_EQ(none.format(), ChatFormat::Deepseek2);
  EXPECT_NE(warning.find("no tokenizer.chat_template"), std::string::npos) << warning;
}

}  // namespace
}  // namespace tandem
