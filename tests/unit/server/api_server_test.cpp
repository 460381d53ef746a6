// The OpenAI-compatible server end to end: a generated tiny model, the server in-process on an
// ephemeral port, and a plain-socket client (test_http_client.h). Greedy replies must be exactly what
// ChatSession produces on its own copy of the model.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/chat/chat_session.h"
#include "runtime/engine/model_loader.h"
#include "runtime/server/api_server.h"
#include "runtime/server/generator.h"
#include "runtime/server/openai_response.h"
#include "tests/unit/server/running_server.h"
#include "tests/unit/server/test_http_client.h"
#include "tools/modelgen/deepseek2_generator.h"

namespace tandem::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int64_t kContext = 2048;

LoadedModel load(const std::string& path) {
  ModelLoadOptions o;
  o.path = ComputePath::Cpu;
  o.threads = 1;
  return load_model(path, o);
}

ChatTemplate template_of(const LoadedModel& m) {
  std::string warning;
  return ChatTemplate::for_model(*m.file, *m.tokenizer, "", &warning);
}

// What a client receives for generated text: invalid UTF-8 comes out as U+FFFD.
std::string as_sent(const std::string& text) { return json::parse(to_text(json(text))).get<std::string>(); }

// The SSE payloads of a stream body; fails the test on anything but "data: ...\n\n" events.
std::vector<std::string> sse_payloads(const std::string& body) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < body.size()) {
    const size_t end = body.find("\n\n", at);
    EXPECT_NE(end, std::string::npos) << "unterminated event at " << at;
    if (end == std::string::npos) break;
    const std::string event = body.substr(at, end - at);
    EXPECT_TRUE(event.starts_with("data: ")) << event;
    EXPECT_EQ(event.find('\n'), std::string::npos) << "one line per event: " << event;
    out.push_back(event.substr(6));
    at = end + 2;
  }
  return out;
}

class ApiServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_path_ = (fs::temp_directory_path() / ("tandem_api_server_test_" + std::to_string(getpid()) + ".gguf")).string();
    modelgen::Deepseek2Options o = modelgen::deepseek2_preset("tiny-v3");
    o.types.set_all(GgmlType::Q8_0);  // quick to write; the K-quants take a minute on a busy machine
    o.block_pool = 0;
    o.seed = 11;
    modelgen::generate_deepseek2(o, model_path_);
    served_ = std::make_unique<LoadedModel>(load(model_path_));
    GeneratorOptions go;
    go.context_limit = kContext;
    generator_ = std::make_unique<Generator>(*served_->lm, *served_->tokenizer, template_of(*served_), go);
    ApiServerOptions so;
    so.model_name = "tiny-test";
    so.log = [](const std::string& line) {
      std::lock_guard lock(log_mutex_);
      log_.push_back(line);
    };
    testing::start_server(server_, thread_, port_, *generator_, so);
  }
  static void TearDownTestSuite() {
    testing::stop_server(server_, thread_);
    generator_.reset();
    served_.reset();
    fs::remove(model_path_);
  }
  void SetUp() override { ASSERT_TRUE(server_->running()); }

  static testing::TestResponse get(const std::string& path) { return testing::http_request(port_, "GET", path); }
  static testing::TestResponse post(const std::string& path, const json& body) {
    return testing::http_request(port_, "POST", path, body.dump());
  }
  static testing::TestResponse post_text(const std::string& path, const std::string& body) {
    return testing::http_request(port_, "POST", path, body);
  }
  static std::vector<std::string> log_lines() {
    std::lock_guard lock(log_mutex_);
    return log_;
  }
  // Waits for a log line containing `what` (the server logs after it finished a request).
  static std::string wait_for_log(const std::string& what, size_t after) {
    for (int i = 0; i < 1000; ++i) {
      const auto lines = log_lines();
      for (size_t k = after; k < lines.size(); ++k)
        if (lines[k].find(what) != std::string::npos) return lines[k];
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return "";
  }

  // ChatSession's greedy replies to `users`, one turn each, on a fresh copy of the model.
  // *exact_text (when given) says whether the first reply's text is exactly its tokens: no
  // control tokens (they decode to nothing) and valid UTF-8.
  static std::vector<ChatTurn> chat_session_turns(const std::vector<std::string>& users, int max_tokens,
                                                  bool* exact_text = nullptr) {
    LoadedModel m = load(model_path_);
    ChatSessionOptions o;
    o.sampling.temperature = 0.0f;
    o.max_new_tokens = max_tokens;
    o.context_limit = kContext;
    ChatSession s(*m.lm, *m.tokenizer, template_of(m), o);
    std::vector<ChatTurn> turns;
    if (exact_text) *exact_text = true;
    for (const auto& u : users) {
      turns.push_back(s.send(u));
      const ChatTurn& t = turns.back();
      if (exact_text && turns.size() == 1 &&
          (m.tokenizer->decode(t.reply_tokens, true) != t.reply || as_sent(t.reply) != t.reply))
        *exact_text = false;
    }
    return turns;
  }

  static inline std::string model_path_;
  static inline std::unique_ptr<LoadedModel> served_;
  static inline std::unique_ptr<Generator> generator_;
  static inline std::unique_ptr<ApiServer> server_;
  static inline int port_ = 0;
  static inline std::thread thread_;
  static inline std::mutex log_mutex_;
  static inline std::vector<std::string> log_;
};

json chat_body(const std::vector<std::pair<std::string, std::string>>& messages, int max_tokens, bool stream) {
  json ms = json::array();
  for (const auto& [role, content] : messages) ms.push_back({{"role", role}, {"content", content}});
  return {{"model", "whatever"}, {"messages", ms}, {"max_tokens", max_tokens}, {"temperature", 0}, {"stream", stream}};
}

TEST_F(ApiServerTest, HealthAndModels) {
  auto h = get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(json::parse(h.body)["status"], "ok");
  auto m = get("/v1/models");
  ASSERT_TRUE(m);
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(m.header("content-type"), "application/json");
  const json j = json::parse(m.body);
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["data"][0]["id"], "tiny-test");
}

TEST_F(ApiServerTest, GreedyChatEqualsChatSession) {
  const auto expected = chat_session_turns({"Hello there"}, 12);
  auto r = post("/v1/chat/completions", chat_body({{"user", "Hello there"}}, 12, false));
  ASSERT_TRUE(r);
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  EXPECT_TRUE(j["id"].get<std::string>().starts_with("chatcmpl-"));
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["model"], "tiny-test");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], as_sent(expected[0].reply));
  EXPECT_EQ(j["choices"][0]["finish_reason"], expected[0].stats.stop == StopReason::EndOfTurn ? "stop" : "length");
  EXPECT_EQ(j["usage"]["prompt_tokens"], expected[0].stats.prompt_tokens);
  EXPECT_EQ(j["usage"]["completion_tokens"], expected[0].stats.generated_tokens);
  EXPECT_EQ(j["usage"]["total_tokens"], expected[0].stats.prompt_tokens + expected[0].stats.generated_tokens);
  EXPECT_FALSE(expected[0].reply.empty());
}

TEST_F(ApiServerTest, StreamedChatIsTheSameTextInSseChunks) {
  const auto expected = chat_session_turns({"Stream me"}, 10);
  json body = chat_body({{"user", "Stream me"}}, 10, true);
  body["stream_options"] = {{"include_usage", true}};
  auto r = post("/v1/chat/completions", body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("content-type"), "text/event-stream");
  const auto events = sse_payloads(r.body);
  ASSERT_GE(events.size(), 5u);  // role, >=1 content, finish, usage, [DONE]
  EXPECT_EQ(events.back(), "[DONE]");
  const json first = json::parse(events[0]);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  std::string text;
  const std::string id = first["id"];
  for (size_t i = 1; i + 3 < events.size(); ++i) {
    const json c = json::parse(events[i]);
    EXPECT_EQ(c["id"], id);
    EXPECT_TRUE(c["choices"][0]["finish_reason"].is_null());
    text += c["choices"][0]["delta"]["content"].get<std::string>();
  }
  EXPECT_EQ(text, as_sent(expected[0].reply));
  const json finish = json::parse(events[events.size() - 3]);
  EXPECT_EQ(finish["choices"][0]["finish_reason"], expected[0].stats.stop == StopReason::EndOfTurn ? "stop" : "length");
  EXPECT_TRUE(finish["choices"][0]["delta"].empty());
  const json usage = json::parse(events[events.size() - 2]);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["prompt_tokens"], expected[0].stats.prompt_tokens);
  EXPECT_EQ(usage["usage"]["completion_tokens"], expected[0].stats.generated_tokens);
}

TEST_F(ApiServerTest, MultiTurnReusesTheCacheAndMatchesChatSession) {
  // The client sends the first reply back as text; its tokens can be kept (by ChatSession and
  // the server alike) only when that text is exactly what was generated: valid UTF-8 and no
  // control tokens, which random weights often emit (the generated vocabulary has many
  // placeholder control tokens). Take the first opening whose short reply is.
  std::string first;
  std::vector<ChatTurn> expected;
  for (const char* opening : {"Hi", "Hello", "Good morning", "What is this?", "Tell me a story", "Why?", "OK",
                              "Sure", "Thanks", "Go on", "Yes", "No", "Maybe", "Explain", "Continue", "Wow"}) {
    bool exact = false;
    chat_session_turns({opening}, 4, &exact);
    if (exact) {
      first = opening;
      expected = chat_session_turns({opening, "Tell me more."}, 4);
      break;
    }
  }
  ASSERT_FALSE(first.empty()) << "no opening with an exact-text reply on this model";
  auto r1 = post("/v1/chat/completions", chat_body({{"user", first}}, 4, false));
  ASSERT_TRUE(r1);
  ASSERT_EQ(r1.status, 200);
  const std::string reply1 = json::parse(r1.body)["choices"][0]["message"]["content"];
  EXPECT_EQ(reply1, expected[0].reply);
  const size_t before = log_lines().size();
  auto r2 = post("/v1/chat/completions",
                 chat_body({{"user", first}, {"assistant", reply1}, {"user", "Tell me more."}}, 4, false));
  ASSERT_TRUE(r2);
  ASSERT_EQ(r2.status, 200);
  const json j2 = json::parse(r2.body);
  EXPECT_EQ(j2["choices"][0]["message"]["content"], as_sent(expected[1].reply));
  EXPECT_EQ(j2["usage"]["prompt_tokens"], expected[1].stats.prompt_tokens);
  // The first turn's prompt and reply were in the cache: only the new turn was fed.
  const std::string line = wait_for_log("completions: prompt", before);
  ASSERT_FALSE(line.empty());
  const std::string cached = "(" + std::to_string(expected[1].stats.prompt_tokens - expected[1].stats.fed_tokens) +
                             " cached)";
  EXPECT_NE(line.find(cached), std::string::npos) << line << " expected " << cached;
  EXPECT_GT(expected[1].stats.prompt_tokens, expected[1].stats.fed_tokens);
}

TEST_F(ApiServerTest, TextCompletionStreamedAndNotAndStopStrings) {
  json body = {{"prompt", "Once upon a time"}, {"max_tokens", 16}, {"temperature", 0}};
  auto r = post("/v1/completions", body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  EXPECT_EQ(j["object"], "text_completion");
  const std::string text = j["choices"][0]["text"];
  ASSERT_GE(text.size(), 6u);
  // Greedy continuation by hand: BOS (if the vocab adds it) + prompt, argmax each step.
  {
    LoadedModel m = load(model_path_);
    std::vector<TokenId> toks = m.tokenizer->encode("Once upon a time", true, true);
    EXPECT_EQ(j["usage"]["prompt_tokens"], toks.size());
    std::vector<float> logits;
    std::vector<TokenId> gen;
    m.lm->forward(toks, logits);
    const int64_t nv = m.lm->n_vocab();
    for (int64_t i = 0; i < j["usage"]["completion_tokens"].get<int64_t>(); ++i) {
      const float* last = logits.data() + logits.size() - size_t(nv);
      const TokenId best = TokenId(std::max_element(last, last + nv) - last);
      gen.push_back(best);
      m.lm->forward(std::vector<TokenId>{best}, logits);
    }
    EXPECT_EQ(as_sent(m.tokenizer->decode(gen)), text);
  }

  body["stream"] = true;
  auto s = post("/v1/completions", body);
  ASSERT_TRUE(s);
  ASSERT_EQ(s.status, 200);
  const auto events = sse_payloads(s.body);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string streamed;
  for (size_t i = 0; i + 1 < events.size(); ++i) streamed += json::parse(events[i])["choices"][0]["text"].get<std::string>();
  EXPECT_EQ(streamed, text);
  EXPECT_EQ(json::parse(events[events.size() - 2])["choices"][0]["finish_reason"], "length");

  // A stop string from the middle of that text cuts it there (ASCII, so U+FFFD replacement
  // of stray bytes cannot shift it).
  std::string stop;
  for (size_t i = text.size() / 3; i + 2 < text.size() && stop.empty(); ++i)
    if (uint8_t(text[i]) < 0x80 && uint8_t(text[i + 1]) < 0x80) stop = text.substr(i, 2);
  ASSERT_FALSE(stop.empty()) << "no two ASCII characters in " << text;
  body["stream"] = false;
  body["stop"] = json::array({stop});
  auto c = post("/v1/completions", body);
  ASSERT_TRUE(c);
  const json cj = json::parse(c.body);
  EXPECT_EQ(cj["choices"][0]["text"], text.substr(0, text.find(stop)));
  EXPECT_EQ(cj["choices"][0]["finish_reason"], "stop");
}

TEST_F(ApiServerTest, ConcurrentRequestsQueueAndBothAreRight) {
  const auto expected = chat_session_turns({"Two at once"}, 10);
  std::string a, b;
  std::thread ta([&] {
    auto r = post("/v1/chat/completions", chat_body({{"user", "Two at once"}}, 10, false));
    if (r && r.status == 200) a = json::parse(r.body)["choices"][0]["message"]["content"];
  });
  std::thread tb([&] {
    auto r = post("/v1/chat/completions", chat_body({{"user", "Two at once"}}, 10, true));
    if (!r || r.status != 200) return;
    for (const auto& e : sse_payloads(r.body)) {
      if (e == "[DONE]") break;
      const json c = json::parse(e);
      if (c["choices"][0]["delta"].contains("content")) b += c["choices"][0]["delta"]["content"].get<std::string>();
    }
  });
  ta.join();
  tb.join();
  EXPECT_EQ(a, as_sent(expected[0].reply));
  EXPECT_EQ(b, as_sent(expected[0].reply));
}

TEST_F(ApiServerTest, BadRequestsAre400WithOpenAiErrors) {
  auto bad = post_text("/v1/chat/completions", "{not json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad.status, 400);
  json e = json::parse(bad.body);
  EXPECT_EQ(e["error"]["type"], "invalid_request_error");
  EXPECT_EQ(e["error"]["code"], "invalid_json");
  EXPECT_NE(e["error"]["message"].get<std::string>().find("not valid JSON"), std::string::npos);

  auto n2 = post("/v1/chat/completions", json{{"messages", json::array({{{"role", "user"}, {"content", "x"}}})}, {"n", 2}});
  ASSERT_TRUE(n2);
  EXPECT_EQ(n2.status, 400);
  EXPECT_EQ(json::parse(n2.body)["error"]["param"], "n");

  auto tokens = post("/v1/completions", json{{"prompt", json::array({1, 999999})}});
  ASSERT_TRUE(tokens);
  EXPECT_EQ(tokens.status, 400);
  EXPECT_EQ(json::parse(tokens.body)["error"]["param"], "prompt");

  std::string huge;
  for (int i = 0; i < 3000; ++i) huge += "word" + std::to_string(i) + " ";
  auto big = post("/v1/chat/completions", chat_body({{"user", huge}}, 4, true));
  ASSERT_TRUE(big);
  EXPECT_EQ(big.status, 400);  // checked before the stream starts
  e = json::parse(big.body);
  EXPECT_EQ(e["error"]["code"], "context_length_exceeded");
  EXPECT_EQ(e["error"]["param"], "messages");
}

TEST_F(ApiServerTest, UnknownPathIs404AndWrongMethod405) {
  auto r = get("/v1/nothing");
  ASSERT_TRUE(r);
  EXPECT_EQ(r.status, 404);
  const json e = json::parse(r.body);
  EXPECT_EQ(e["error"]["type"], "not_found_error");
  EXPECT_NE(e["error"]["message"].get<std::string>().find("/v1/nothing"), std::string::npos);
  auto p = post_text("/v2/chat/completions", "{}");
  ASSERT_TRUE(p);
  EXPECT_EQ(p.status, 404);
  auto g = get("/v1/chat/completions");
  ASSERT_TRUE(g);
  EXPECT_EQ(g.status, 405);
  EXPECT_EQ(json::parse(g.body)["error"]["code"], "method_not_allowed");
}

TEST_F(ApiServerTest, ClientDisconnectStopsAStreamedGeneration) {
  const size_t before = log_lines().size();
  auto count_events = [](const std::string& raw) {
    size_t n = 0;
    for (size_t at = raw.find("data: "); at != std::string::npos; at = raw.find("data: ", at + 1)) ++n;
    return n;
  };
  auto r = testing::http_request(port_, "POST", "/v1/chat/completions",
                                 chat_body({{"user", "Go on forever"}}, 1500, true).dump(), {},
                                 std::chrono::milliseconds(60000),
                                 [&](const std::string& raw) { return count_events(raw) < 3; });
  EXPECT_FALSE(r);  // closed by the client after three events
  const std::string line = wait_for_log("client gone", before);
  ASSERT_FALSE(line.empty()) << "no cancelled generation in the log";
  EXPECT_EQ(line.find("1500 generated"), std::string::npos) << line;
  // The server still answers.
  auto after = post("/v1/chat/completions", chat_body({{"user", "Still there?"}}, 3, false));
  ASSERT_TRUE(after);
  EXPECT_EQ(after.status, 200);
}

TEST_F(ApiServerTest, ClientDisconnectStopsANonStreamedGeneration) {
  const size_t before = log_lines().size();
  // Gives up after 0.2 s and closes the connection.
  auto r = testing::http_request(port_, "POST", "/v1/chat/completions",
                                 chat_body({{"user", "Go on forever"}}, 1500, false).dump(), {},
                                 std::chrono::milliseconds(200));
  EXPECT_FALSE(r);
  const std::string line = wait_for_log("client gone", before);
  ASSERT_FALSE(line.empty()) << "no cancelled generation in the log";
  EXPECT_EQ(line.find("1500 generated"), std::string::npos) << line;
}

}  // namespace
}  // namespace tandem::server
