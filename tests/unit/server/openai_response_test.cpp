// The response objects and Server-Sent Events framing the server writes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "runtime/server/openai_response.h"
#include "runtime/server/request_error.h"

namespace tandem::server {
namespace {

using nlohmann::json;

const ResponseMeta kMeta{"chatcmpl-abc", 1700000000, "tiny"};

TEST(SseTest, EventIsOneDataLineEndedByABlankLine) {
  const std::string e = sse_event(json{{"a", 1}, {"b", "x\ny"}});
  EXPECT_EQ(e, "data: {\"a\":1,\"b\":\"x\\ny\"}\n\n");  // newlines in text stay escaped: one line
  EXPECT_EQ(sse_done(), "data: [DONE]\n\n");
}

TEST(SseTest, InvalidUtf8InGeneratedTextBecomesReplacementCharacters) {
  const std::string bad = "ok \xff\xfe end";
  const std::string e = sse_event(chat_chunk_json(kMeta, json{{"content", bad}}));
  ASSERT_TRUE(e.starts_with("data: ") && e.ends_with("\n\n"));
  const json j = json::parse(e.substr(6, e.size() - 8));
  EXPECT_EQ(j["choices"][0]["delta"]["content"], "ok \xEF\xBF\xBD\xEF\xBF\xBD end");
}

TEST(ChatResponseTest, ChunksCarryDeltaAndFinishReason) {
  const json first = chat_chunk_json(kMeta, json{{"role", "assistant"}, {"content", ""}});
  EXPECT_EQ(first["id"], "chatcmpl-abc");
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["created"], 1700000000);
  EXPECT_EQ(first["model"], "tiny");
  ASSERT_EQ(first["choices"].size(), 1u);
  EXPECT_EQ(first["choices"][0]["index"], 0);
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  EXPECT_FALSE(first.contains("usage"));

  const json last = chat_chunk_json(kMeta, json::object(), FinishReason::Length, Usage{12, 5});
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(last["choices"][0]["delta"].empty());
  EXPECT_EQ(last["usage"], (json{{"prompt_tokens", 12}, {"completion_tokens", 5}, {"total_tokens", 17}}));

  const json usage = usage_chunk_json(kMeta, true, Usage{3, 4});
  EXPECT_TRUE(usage["choices"].is_array() && usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 7);
}

TEST(ChatResponseTest, WholeCompletion) {
  const json j = chat_completion_json(kMeta, "Hello!", FinishReason::Stop, Usage{10, 2});
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"], (json{{"role", "assistant"}, {"content", "Hello!"}}));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(j["usage"]["prompt_tokens"], 10);
  EXPECT_EQ(j["usage"]["completion_tokens"], 2);
  EXPECT_EQ(j["usage"]["total_tokens"], 12);
}

TEST(TextResponseTest, CompletionAndChunks) {
  const ResponseMeta m{"cmpl-1", 5, "tiny"};
  const json j = text_completion_json(m, "abc", FinishReason::Length, Usage{1, 3});
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][0]["text"], "abc");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  const json c = text_chunk_json(m, "b");
  EXPECT_EQ(c["choices"][0]["text"], "b");
  EXPECT_TRUE(c["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(usage_chunk_json(m, false, Usage{1, 1})["object"], "text_completion");
}

TEST(ResponseIdTest, PrefixAndRandomHex) {
  const std::string a = new_response_id(true), b = new_response_id(true);
  EXPECT_TRUE(a.starts_with("chatcmpl-"));
  EXPECT_EQ(a.size(), 9u + 24u);
  EXPECT_NE(a, b);
  EXPECT_TRUE(new_response_id(false).starts_with("cmpl-"));
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef", 9), std::string::npos);
}

TEST(ModelListTest, OneModel) {
  const json j = model_list_json("deepseek-v3", 42);
  EXPECT_EQ(j["object"], "list");
  ASSERT_EQ(j["data"].size(), 1u);
  EXPECT_EQ(j["data"][0]["id"], "deepseek-v3");
  EXPECT_EQ(j["data"][0]["object"], "model");
}

TEST(ErrorJsonTest, NullParamAndCodeWhenEmpty) {
  const json j = error_json("boom", "server_error", "", "");
  EXPECT_EQ(j["error"]["message"], "boom");
  EXPECT_TRUE(j["error"]["param"].is_null());
  EXPECT_TRUE(j["error"]["code"].is_null());
  const json k = RequestError::invalid("n", "n must be 1", "bad_n").to_json();
  EXPECT_EQ(k["error"]["param"], "n");
  EXPECT_EQ(k["error"]["code"], "bad_n");
}

}  // namespace
}  // namespace tandem::server
