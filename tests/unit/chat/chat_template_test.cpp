// Chat formats: rendering of a 3-turn conversation written out by hand for each format, and
// detection on template texts shaped like the ones shipped in the models' tokenizer_config.json.
#include <gtest/gtest.h>

#include "runtime/chat/chat_template.h"
#include "runtime/core/error.h"

namespace tandem {
namespace {

const std::string kBos = "<｜begin▁of▁sentence｜>";
const std::string kEos = "<｜end▁of▁sentence｜>";

std::vector<ChatMessage> three_turns() {
  return {
      {"system", "You are terse."},
      {"user", "Hi"},
      {"assistant", "Hello! How can I help?"},
      {"user", "What is 2+2?"},
      {"assistant", " 4 "},
      {"user", "Thanks"},
  };
}

TEST(ChatTemplate, Deepseek3) {
  const ChatTemplate t(ChatFormat::Deepseek3, kBos, kEos);
  EXPECT_EQ(t.render(three_turns(), true),
            "<｜begin▁of▁sentence｜>You are terse."
            "<｜User｜>Hi<｜Assistant｜>Hello! How can I help?<｜end▁of▁sentence｜>"
            "<｜User｜>What is 2+2?<｜Assistant｜> 4 <｜end▁of▁sentence｜>"
            "<｜User｜>Thanks<｜Assistant｜>");
  EXPECT_EQ(t.render(three_turns(), false),
            "<｜begin▁of▁sentence｜>You are terse."
            "<｜User｜>Hi<｜Assistant｜>Hello! How can I help?<｜end▁of▁sentence｜>"
            "<｜User｜>What is 2+2?<｜Assistant｜> 4 <｜end▁of▁sentence｜>"
            "<｜User｜>Thanks");
  EXPECT_EQ(t.end_of_turn_texts(), std::vector<std::string>{kEos});
}

TEST(ChatTemplate, Deepseek3SystemMessageGoesFirstWherever) {
  const ChatTemplate t(ChatFormat::Deepseek3, kBos, kEos);
  const std::vector<ChatMessage> m = {{"user", "a"}, {"system", "S"}};
  EXPECT_EQ(t.render(m, true), kBos + "S<｜User｜>a<｜Assistant｜>");
  EXPECT_EQ(t.render({}, true), kBos + "<｜Assistant｜>");
}

TEST(ChatTemplate, DeepseekR1DropsEarlierReasoningAndOpensThink) {
  const ChatTemplate t(ChatFormat::DeepseekR1, kBos, kEos);
  auto m = three_turns();
  m[2].content = "<think>\nThe user greets.\n</think>\n\nHello! How can I help?";
  EXPECT_EQ(t.render(m, true),
            "<｜begin▁of▁sentence｜>You are terse."
            "<｜User｜>Hi<｜Assistant｜>\n\nHello! How can I help?<｜end▁of▁sentence｜>"
            "<｜User｜>What is 2+2?<｜Assistant｜> 4 <｜end▁of▁sentence｜>"
            "<｜User｜>Thanks<｜Assistant｜><think>\n");
}

TEST(ChatTemplate, Deepseek2) {
  const ChatTemplate t(ChatFormat::Deepseek2, kBos, kEos);
  EXPECT_EQ(t.render(three_turns(), true),
            "<｜begin▁of▁sentence｜>You are terse.\n\n"
            "User: Hi\n\nAssistant: Hello! How can I help?<｜end▁of▁sentence｜>"
            "User: What is 2+2?\n\nAssistant:  4 <｜end▁of▁sentence｜>"
            "User: Thanks\n\nAssistant:");
  EXPECT_EQ(t.end_of_turn_texts(), std::vector<std::string>{kEos});
}

TEST(ChatTemplate, DeepseekCoder) {
  const ChatTemplate t(ChatFormat::DeepseekCoder, kBos, "<|EOT|>");
  EXPECT_EQ(t.render(three_turns(), true),
            "<｜begin▁of▁sentence｜>You are terse."
            "### Instruction:\nHi\n### Response:\nHello! How can I help?\n<|EOT|>\n"
            "### Instruction:\nWhat is 2+2?\n### Response:\n 4 \n<|EOT|>\n"
            "### Instruction:\nThanks\n### Response:\n");
  // Without a system message the model's own default system prompt is used.
  const std::vector<ChatMessage> m = {{"user", "Sort a list"}};
  const std::string r = t.render(m, true);
  EXPECT_TRUE(r.starts_with(kBos + "You are an AI programming assistant, utilizing the Deepseek Coder model"));
  EXPECT_TRUE(r.ends_with("refuse to answer\n### Instruction:\nSort a list\n### Response:\n"));
  EXPECT_EQ(t.end_of_turn_texts(), std::vector<std::string>{"<|EOT|>"});
}

TEST(ChatTemplate, Chatml) {
  const ChatTemplate t(ChatFormat::Chatml, "", "<|endoftext|>");
  EXPECT_EQ(t.render(three_turns(), true),
            "<|im_start|>system\nYou are terse.<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello! How can I help?<|im_end|>\n"
            "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
            "<|im_start|>assistant\n 4 <|im_end|>\n"
            "<|im_start|>user\nThanks<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(t.end_of_turn_texts(), (std::vector<std::string>{"<|im_end|>", "<|endoftext|>"}));
}

TEST(ChatTemplate, Llama3TrimsContent) {
  const ChatTemplate t(ChatFormat::Llama3, "<|begin_of_text|>", "<|eot_id|>");
  EXPECT_EQ(t.render(three_turns(), true),
            "<|begin_of_text|>"
            "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello! How can I help?<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nThanks<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(t.end_of_turn_texts(), (std::vector<std::string>{"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"}));
}

TEST(ChatTemplate, UnknownRoleIsAnErrorNamingIt) {
  const ChatTemplate t(ChatFormat::Chatml, "", "");
  const std::vector<ChatMessage> m = {{"user", "a"}, {"tool", "b"}};
  try {
    t.render(m, true);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("message 1: role 'tool'"), std::string::npos) << e.what();
  }
}

// Shortened but faithful shapes of the templates the models ship.
const char* kV3Template =
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
    "{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='') %}"
    "{%- for message in messages %}{%- if message['role'] == 'system' %}{% set ns.system_prompt = "
    "message['content'] %}{%- endif %}{%- endfor %}{{bos_token}}{{ns.system_prompt}}"
    "{%- for message in messages %}{%- if message['role'] == 'user' %}{%- set ns.is_tool = false -%}"
    "{{'<｜User｜>' + message['content']}}{%- endif %}{%- if message['role'] == 'assistant' and "
    "message['content'] is not none %}{{'<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}"
    "{%- endif %}{%- endfor %}{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜>'}}{% endif %}";
const char* kR1Template =
    "{{bos_token}}{{ns.system_prompt}}{%- for message in messages %}{%- if message['role'] == 'user' %}"
    "{{'<｜User｜>' + message['content']}}{%- endif %}{%- if message['role'] == 'assistant' %}"
    "{% set content = message['content'] %}{% if '</think>' in content %}{% set content = "
    "content.split('</think>')[-1] %}{% endif %}{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}"
    "{%- endif %}{%- endfor %}{% if add_generation_prompt %}{{'<｜Assistant｜><think>\\n'}}{% endif %}";
const char* kV2Template =
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ 'User: ' + "
    "message['content'] + '\\n\\n' }}{% elif message['role'] == 'assistant' %}{{ 'Assistant: ' + "
    "message['content'] + eos_token }}{% elif message['role'] == 'system' %}{{ message['content'] + "
    "'\\n\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";
const char* kCoderTemplate =
    "{%- set ns = namespace(found=false) -%}{{bos_token}}{%- if not ns.found -%}{{'You are an AI "
    "programming assistant...\\n'}}{%- endif %}{%- for message in messages %}{%- if message['role'] == "
    "'user' %}\n{{'### Instruction:\\n' + message['content'] + '\\n'}}\n{%- else %}\n{{'### Response:\\n' "
    "+ message['content'] + '\\n<|EOT|>\\n'}}\n{%- endif %}{%- endfor %}\n{% if add_generation_prompt %}"
    "\n{{'### Response:'}}\n{% endif %}";
const char* kChatmlTemplate =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
const char* kLlama3Template =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant"
    "<|end_header_id|>\\n\\n' }}{% endif %}";

TEST(ChatFormatDetection, RecognisesEachFormatsTemplate) {
  EXPECT_EQ(detect_chat_format(kV3Template), ChatFormat::Deepseek3);
  EXPECT_EQ(detect_chat_format(kR1Template), ChatFormat::DeepseekR1);
  EXPECT_EQ(detect_chat_format(kV2Template), ChatFormat::Deepseek2);
  EXPECT_EQ(detect_chat_format(kCoderTemplate), ChatFormat::DeepseekCoder);
  EXPECT_EQ(detect_chat_format(kChatmlTemplate), ChatFormat::Chatml);
  EXPECT_EQ(detect_chat_format(kLlama3Template), ChatFormat::Llama3);
  EXPECT_EQ(detect_chat_format("{{ messages }}"), std::nullopt);
  EXPECT_EQ(detect_chat_format(""), std::nullopt);
  for (auto name : chat_format_names()) EXPECT_EQ(chat_format_name(*detect_chat_format(name)), name);
}

TEST(ChatFormatDetection, ChoiceOverridesAndFallsBackWithAWarning) {
  auto c = choose_chat_format(std::string(kV2Template), "", false);
  EXPECT_EQ(c.format, ChatFormat::Deepseek2);
  EXPECT_EQ(c.warning, "");
  c = choose_chat_format(std::string(kV2Template), "chatml", false);
  EXPECT_EQ(c.format, ChatFormat::Chatml);
  EXPECT_EQ(c.warning, "");
  c = choose_chat_format(std::nullopt, "", true);
  EXPECT_EQ(c.format, ChatFormat::Deepseek3);
  EXPECT_NE(c.warning.find("no tokenizer.chat_template"), std::string::npos);
  EXPECT_NE(c.warning.find("'deepseek3'"), std::string::npos);
  c = choose_chat_format(std::string("{{ weird }}"), "", false);
  EXPECT_EQ(c.format, ChatFormat::Deepseek2);
  EXPECT_NE(c.warning.find("not a format tandem recognises"), std::string::npos);
  try {
    choose_chat_format(std::nullopt, "vicuna", false);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("--chat-format 'vicuna'"), std::string::npos) << m;
    EXPECT_NE(m.find("deepseek-coder"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace tandem
