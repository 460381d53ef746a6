// Ollama request bodies into CompletionRequest, and the OpenAI reasoning switches: fields
// translated, defaults as Ollama's (stream on), bad options a 400 naming options.NAME.
#include "runtime/server/ollama_request.h"

#include <gtest/gtest.h>

#include <string>

#include "runtime/server/request_error.h"

namespace tandem::server {
namespace {

// The RequestError a body earns; fails the test when it is accepted.
RequestError error_of(std::string_view body, bool chat = true) {
  try {
    if (chat)
      parse_ollama_chat_request(body);
    else
      parse_ollama_generate_request(body);
  } catch (const RequestError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << body;
  return RequestError::invalid("", "");
}

TEST(OllamaRequestTest, ChatOptionsAndDefaults) {
  const OllamaRequest r = parse_ollama_chat_request(R"({"model":"m","messages":[{"role":"user","content":"hi"}],
    "keep_alive":"5m","options":{"num_predict":7,"temperature":0.5,"top_k":3,"top_p":0.9,"min_p":0.1,"seed":4,
    "stop":["a","b"],"repeat_penalty":1.1,"presence_penalty":0.5,"frequency_penalty":-0.5,"num_ctx":8192,
    "num_thread":4,"mirostat":2}})");
  EXPECT_EQ(r.model, "m");
  EXPECT_FALSE(r.load_only);
  EXPECT_FALSE(r.think);
  const CompletionRequest& c = r.request;
  EXPECT_TRUE(c.stream);  // Ollama streams unless told not to
  EXPECT_EQ(c.kind, RequestKind::Chat);
  ASSERT_EQ(c.messages.size(), 1u);
  EXPECT_EQ(c.messages[0].content, "hi");
  EXPECT_EQ(c.max_tokens, 7);
  EXPECT_FLOAT_EQ(*c.sampling.temperature, 0.5f);
  EXPECT_EQ(c.sampling.top_k, 3);
  EXPECT_FLOAT_EQ(*c.sampling.top_p, 0.9f);
  EXPECT_FLOAT_EQ(*c.sampling.min_p, 0.1f);
  EXPECT_EQ(c.sampling.seed, 4u);
  EXPECT_EQ(c.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_FLOAT_EQ(*c.sampling.repeat_penalty, 1.1f);
  EXPECT_FLOAT_EQ(*c.sampling.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(*c.sampling.frequency_penalty, -0.5f);
  EXPECT_EQ(c.split_reasoning, true);
  EXPECT_FALSE(c.enable_thinking);

  for (const char* unlimited : {"-1", "-2", "0"})
    EXPECT_FALSE(parse_ollama_chat_request(std::string(R"({"model":"m","messages":[{"role":"user","content":"x"}],"options":{"num_predict":)") +
                                           unlimited + "}}")
                     .request.max_tokens);
  const OllamaRequest off =
      parse_ollama_chat_request(R"({"model":"m","stream":false,"think":false,"messages":[{"role":"user","content":"x"}]})");
  EXPECT_FALSE(off.request.stream);
  EXPECT_EQ(off.think, false);
  EXPECT_EQ(off.request.enable_thinking, false);
  EXPECT_EQ(parse_ollama_chat_request(R"({"model":"m","think":"high","messages":[{"role":"user","content":"x"}]})").think,
            true);
  EXPECT_TRUE(parse_ollama_chat_request(R"({"model":"m"})").load_only);
  EXPECT_TRUE(parse_ollama_chat_request(R"({"model":"m","messages":[]})").load_only);
}

TEST(OllamaRequestTest, GenerateTemplatedAndRaw) {
  const OllamaRequest g = parse_ollama_generate_request(R"({"model":"m","prompt":"hi","system":"be brief","context":[1,2]})");
  ASSERT_EQ(g.request.messages.size(), 2u);
  EXPECT_EQ(g.request.messages[0].role, "system");
  EXPECT_EQ(g.request.messages[0].content, "be brief");
  EXPECT_EQ(g.request.messages[1].role, "user");
  EXPECT_EQ(g.request.messages[1].content, "hi");
  const OllamaRequest raw = parse_ollama_generate_request(R"({"model":"m","prompt":"<s>text","raw":true})");
  EXPECT_EQ(raw.request.kind, RequestKind::Text);
  EXPECT_EQ(std::get<std::string>(raw.request.prompt), "<s>text");
  EXPECT_TRUE(parse_ollama_generate_request(R"({"model":"m","prompt":""})").load_only);
  EXPECT_EQ(parse_ollama_show_request(R"({"name":"old"})"), "old");
  EXPECT_EQ(parse_ollama_show_request(R"({"model":"new","name":"old"})"), "new");
}

TEST(OllamaRequestTest, MalformedOrUnsupportedIsA400NamingIt) {
  const std::string msg = R"("messages":[{"role":"user","content":"x"}])";
  struct Case {
    std::string body;
    std::string param;
    bool chat = true;
  };
  const Case cases[] = {
      {"{" + msg + "}", "model"},
      {R"({"model":3,)" + msg + "}", "model"},
      {R"({"model":"m","stream":"yes",)" + msg + "}", "stream"},
      {R"({"model":"m","options":{"temperature":"hot"},)" + msg + "}", "options.temperature"},
      {R"({"model":"m","options":{"top_p":7},)" + msg + "}", "options.top_p"},
      {R"({"model":"m","options":{"stop":[""]},)" + msg + "}", "options.stop[0]"},
      {R"({"model":"m","options":{"num_predict":1.5},)" + msg + "}", "options.num_predict"},
      {R"({"model":"m","options":[],)" + msg + "}", "options"},
      {R"({"model":"m","format":"yaml",)" + msg + "}", "format"},
      {R"({"model":"m","format":3,)" + msg + "}", "format"},
      {R"({"model":"m","format":{"type":"string","minLength":2},)" + msg + "}", "format"},
      {R"({"model":"m","tools":[{"type":"function"}],)" + msg + "}", "tools[0].function"},
      {R"({"model":"m","think":3,)" + msg + "}", "think"},
      {R"({"model":"m","messages":[{"role":"user","content":"x","images":["AA"]}]})", "messages[0].images"},
      {R"({"model":"m","messages":[{"role":"robot","content":"x"}]})", "messages[0].role"},
      {R"({"model":"m","messages":"hi"})", "messages"},
      {R"({"model":"m","prompt":"x","images":["AA"]})", "images", false},
      {R"({"model":"m","prompt":"x","template":"{{ .Prompt }}"})", "template", false},
      {R"({"model":"m","prompt":"x","raw":1})", "raw", false},
  };
  for (const auto& c : cases) {
    const RequestError e = error_of(c.body, c.chat);
    EXPECT_EQ(e.status(), 400) << c.body;
    EXPECT_EQ(e.param(), c.param) << c.body << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(c.param), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_ollama_show_request("{}"), RequestError);
  EXPECT_THROW(parse_ollama_chat_request("[1]"), RequestError);
}

TEST(ChatRequestReasoningTest, ReasoningFormatAndTemplateKwargs) {
  const std::string msg = R"("messages":[{"role":"user","content":"x"}])";
  EXPECT_FALSE(parse_chat_completion_request("{" + msg + "}").split_reasoning.has_value());  // the server's default
  EXPECT_EQ(parse_chat_completion_request(R"({"reasoning_format":"none",)" + msg + "}").split_reasoning, false);
  EXPECT_EQ(parse_chat_completion_request(R"({"reasoning_format":"deepseek",)" + msg + "}").split_reasoning, true);
  EXPECT_THROW(parse_chat_completion_request(R"({"reasoning_format":"xml",)" + msg + "}"), RequestError);
  EXPECT_EQ(parse_chat_completion_request(R"({"chat_template_kwargs":{"enable_thinking":false},)" + msg + "}")
                .enable_thinking,
            false);
  EXPECT_FALSE(parse_chat_completion_request("{" + msg + "}").enable_thinking);
  EXPECT_THROW(parse_chat_completion_request(R"({"chat_template_kwargs":{"enable_thinking":"no"},)" + msg + "}"),
               RequestError);
}

}  // namespace
}  // namespace tandem::server
