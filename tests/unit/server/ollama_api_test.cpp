// The Ollama endpoints and reasoning output end to end: a generated tiny model served with the
// DeepSeek-R1 prompt format (its generation prompt opens <think>, so every reply starts inside
// the reasoning), the server in-process on an ephemeral 127.0.0.1 port, plain-socket requests.
// Greedy replies are compared across endpoints: the split of reasoning_format "none"'s raw text
// is what reasoning_content / message.thinking and content carry, streamed or not.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/chat/reasoning_splitter.h"
#include "runtime/engine/model_loader.h"
#include "runtime/server/api_server.h"
#include "runtime/server/generator.h"
#include "runtime/server/ollama_api.h"
#include "tests/unit/server/running_server.h"
#include "tests/unit/server/test_http_client.h"
#include "tools/modelgen/deepseek2_generator.h"

namespace tandem::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kMaxTokens = 8;

// NDJSON lines of a body, each parsed; fails the test on a line that is not JSON.
std::vector<json> ndjson(const std::string& body) {
  std::vector<json> out;
  size_t at = 0;
  while (at < body.size()) {
    size_t end = body.find('\n', at);
    if (end == std::string::npos) end = body.size();
    const std::string line = body.substr(at, end - at);
    if (!line.empty()) {
      try {
        out.push_back(json::parse(line));
      } catch (const std::exception& e) {
        ADD_FAILURE() << "not JSON: " << line;
      }
    }
    at = end + 1;
  }
  return out;
}

// SSE payloads (without [DONE]) parsed.
std::vector<json> sse(const std::string& body) {
  std::vector<json> out;
  size_t at = 0;
  while ((at = body.find("data: ", at)) != std::string::npos) {
    const size_t end = body.find("\n\n", at);
    const std::string p = body.substr(at + 6, end - at - 6);
    if (p != "[DONE]") out.push_back(json::parse(p));
    at = end;
  }
  return out;
}

class OllamaApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_path_ = (fs::temp_directory_path() / ("tandem_ollama_api_test_" + std::to_string(getpid()) + ".gguf")).string();
    modelgen::Deepseek2Options o = modelgen::deepseek2_preset("tiny-v3");
    o.types.set_all(GgmlType::Q8_0);
    o.block_pool = 0;
    o.seed = 5;
    modelgen::generate_deepseek2(o, model_path_);
    ModelLoadOptions lo;
    lo.path = ComputePath::Cpu;
    lo.threads = 1;
    served_ = std::make_unique<LoadedModel>(load_model(model_path_, lo));
    GeneratorOptions go;
    go.context_limit = 1024;
    ChatTemplate r1(ChatFormat::DeepseekR1, "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>");
    generator_ = std::make_unique<Generator>(*served_->lm, *served_->tokenizer, std::move(r1), go);
    ApiServerOptions so;
    so.model_name = "tiny-r1";
    so.ollama_model = describe_ollama_model(*served_->file, so.model_name, go.context_limit);
    testing::start_server(server_, thread_, port_, *generator_, so);
  }
  static void TearDownTestSuite() {
    testing::stop_server(server_, thread_);
    generator_.reset();
    served_.reset();
    fs::remove(model_path_);
  }
  void SetUp() override { ASSERT_TRUE(server_->running()); }

  static testing::TestResponse call(const std::string& method, const std::string& path, const std::string& body = "") {
    return testing::http_request(port_, method, path, body);
  }
  static testing::TestResponse post(const std::string& path, const json& body) { return call("POST", path, body.dump()); }

  // The greedy reply as raw text (reasoning_format none) and split as the server should split it.
  static ReasoningPiece expected_split(const std::string& user, std::string* raw = nullptr) {
    json body = {{"messages", {{{"role", "user"}, {"content", user}}}},
                 {"max_tokens", kMaxTokens},
                 {"temperature", 0},
                 {"reasoning_format", "none"}};
    auto r = post("/v1/chat/completions", body);
    EXPECT_EQ(r.status, 200) << r.body;
    const std::string text = json::parse(r.body)["choices"][0]["message"]["content"];
    if (raw) *raw = text;
    ReasoningSplitter s(true);
    ReasoningPiece p = s.push(text);
    const ReasoningPiece tail = s.finish();
    p.reasoning += tail.reasoning;
    p.content += tail.content;
    return p;
  }

  static inline std::string model_path_;
  static inline std::unique_ptr<LoadedModel> served_;
  static inline std::unique_ptr<Generator> generator_;
  static inline std::unique_ptr<ApiServer> server_;
  static inline int port_ = 0;
  static inline std::thread thread_;
};

json ollama_chat(const std::string& model, const std::string& user, bool stream) {
  return {{"model", model},
          {"messages", {{{"role", "user"}, {"content", user}}}},
          {"stream", stream},
          {"keep_alive", "5m"},
          {"options", {{"temperature", 0}, {"num_predict", kMaxTokens}, {"num_ctx", 4096}, {"mirostat", 0}}}};
}

TEST_F(OllamaApiTest, OpenAIReasoningContentStreamedAndNot) {
  std::string raw;
  const ReasoningPiece want = expected_split("Think about it", &raw);
  ASSERT_FALSE(want.reasoning.empty()) << "the reply is only whitespace: " << raw;
  json body = {{"messages", {{{"role", "user"}, {"content", "Think about it"}}}}, {"max_tokens", kMaxTokens},
               {"temperature", 0}};
  auto r = post("/v1/chat/completions", body);
  ASSERT_EQ(r.status, 200) << r.body;
  const json m = json::parse(r.body)["choices"][0]["message"];
  EXPECT_EQ(m["reasoning_content"], want.reasoning);
  EXPECT_EQ(m["content"], want.content);

  body["stream"] = true;
  auto s = post("/v1/chat/completions", body);
  ASSERT_EQ(s.status, 200) << s.body;
  std::string reasoning, content;
  const auto events = sse(s.body);
  ASSERT_GE(events.size(), 3u);
  for (const auto& e : events) {
    EXPECT_FALSE(e.contains("usage")) << "usage only when stream_options.include_usage asks: " << e.dump();
    const json& d = e["choices"][0]["delta"];
    if (d.contains("reasoning_content")) reasoning += d["reasoning_content"].get<std::string>();
    if (d.contains("content")) content += d["content"].get<std::string>();
  }
  EXPECT_EQ(reasoning, want.reasoning);
  EXPECT_EQ(content, want.content);
}

// --reasoning-format none (ApiServerOptions::split_reasoning false): reasoning stays inline for
// every request, unless a request's reasoning_format asks for the split.
TEST_F(OllamaApiTest, ServerReasoningFormatNoneKeepsThinkInline) {
  std::string raw;
  const ReasoningPiece want = expected_split("Inline please", &raw);
  ApiServerOptions so;
  so.model_name = "tiny-r1";
  so.split_reasoning = false;
  std::unique_ptr<ApiServer> inline_server;
  std::thread inline_thread;
  int inline_port = 0;
  testing::start_server(inline_server, inline_thread, inline_port, *generator_, so);
  json body = {{"messages", {{{"role", "user"}, {"content", "Inline please"}}}}, {"max_tokens", kMaxTokens},
               {"temperature", 0}};
  auto r = testing::http_request(inline_port, "POST", "/v1/chat/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  json m = json::parse(r.body)["choices"][0]["message"];
  EXPECT_EQ(m["content"], raw);
  EXPECT_FALSE(m.contains("reasoning_content"));
  body["reasoning_format"] = "deepseek";
  r = testing::http_request(inline_port, "POST", "/v1/chat/completions", body.dump());
  m = json::parse(r.body)["choices"][0]["message"];
  EXPECT_EQ(m.value("reasoning_content", ""), want.reasoning);
  EXPECT_EQ(m["content"], want.content);
  testing::stop_server(inline_server, inline_thread);
}

TEST_F(OllamaApiTest, InfoEndpoints) {
  auto root = call("GET", "/");
  EXPECT_EQ(root.status, 200);
  EXPECT_EQ(root.body, "Ollama is running");
  auto head = call("HEAD", "/");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  auto v = call("GET", "/api/version");
  ASSERT_EQ(v.status, 200);
  EXPECT_TRUE(json::parse(v.body)["version"].is_string());

  auto t = call("GET", "/api/tags");
  ASSERT_EQ(t.status, 200);
  const json m = json::parse(t.body)["models"][0];
  EXPECT_EQ(m["name"], "tiny-r1:latest");
  EXPECT_EQ(m["model"], "tiny-r1:latest");
  EXPECT_EQ(m["size"].get<int64_t>(), int64_t(fs::file_size(model_path_)));
  EXPECT_EQ(m["digest"].get<std::string>().size(), 64u);
  EXPECT_TRUE(m["modified_at"].get<std::string>().ends_with("Z"));
  EXPECT_EQ(m["details"]["format"], "gguf");
  EXPECT_EQ(m["details"]["family"], "deepseek2");
  EXPECT_EQ(m["details"]["families"][0], "deepseek2");
  EXPECT_EQ(m["details"]["quantization_level"], "Q8_0");
  EXPECT_FALSE(m["details"]["parameter_size"].get<std::string>().empty());
  EXPECT_EQ(call("HEAD", "/api/tags").status, 200);

  for (const char* field : {"model", "name"}) {
    for (const char* name : {"tiny-r1", "tiny-r1:latest"}) {
      auto s = post("/api/show", {{field, name}});
      ASSERT_EQ(s.status, 200) << s.body;
      const json j = json::parse(s.body);
      EXPECT_EQ(j["details"]["family"], "deepseek2");
      EXPECT_EQ(j["model_info"]["general.architecture"], "deepseek2");
      EXPECT_EQ(j["model_info"]["deepseek2.context_length"], 1024);
      EXPECT_TRUE(j["template"].is_string());
      EXPECT_EQ(j["capabilities"][0], "completion");
    }
  }
  auto missing = post("/api/show", {{"model", "llama3"}});
  EXPECT_EQ(missing.status, 404);
  EXPECT_TRUE(json::parse(missing.body)["error"].is_string()) << missing.body;

  auto ps = call("GET", "/api/ps");
  ASSERT_EQ(ps.status, 200);
  EXPECT_EQ(json::parse(ps.body)["models"][0]["name"], "tiny-r1:latest");

  auto one = call("GET", "/v1/models/tiny-r1");
  ASSERT_EQ(one.status, 200);
  EXPECT_EQ(json::parse(one.body)["id"], "tiny-r1");
  EXPECT_EQ(call("GET", "/v1/models/other").status, 404);
}

TEST_F(OllamaApiTest, ChatStreamedAndNotCarriesThinkingAndTimings) {
  const ReasoningPiece want = expected_split("Hello Ollama");
  auto r = post("/api/chat", ollama_chat("tiny-r1", "Hello Ollama", false));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("content-type"), "application/json");
  const json j = json::parse(r.body);
  EXPECT_EQ(j["model"], "tiny-r1:latest");
  EXPECT_TRUE(j["done"].get<bool>());
  EXPECT_EQ(j["message"]["role"], "assistant");
  EXPECT_EQ(j["message"]["content"], want.content);
  EXPECT_EQ(j["message"].value("thinking", ""), want.reasoning);
  EXPECT_EQ(j["done_reason"], "length");
  EXPECT_EQ(j["eval_count"], kMaxTokens);
  EXPECT_GT(j["prompt_eval_count"].get<int64_t>(), 0);
  for (const char* d : {"total_duration", "load_duration", "prompt_eval_duration", "eval_duration"})
    EXPECT_GT(j[d].get<int64_t>(), 0) << d;
  EXPECT_GE(j["total_duration"].get<int64_t>(), j["eval_duration"].get<int64_t>());

  auto s = post("/api/chat", ollama_chat("tiny-r1:latest", "Hello Ollama", true));
  ASSERT_EQ(s.status, 200) << s.body;
  EXPECT_EQ(s.header("content-type"), "application/x-ndjson");
  const auto lines = ndjson(s.body);
  ASSERT_GE(lines.size(), 2u);
  std::string content, thinking;
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    EXPECT_FALSE(lines[i]["done"].get<bool>());
    content += lines[i]["message"]["content"].get<std::string>();
    thinking += lines[i]["message"].value("thinking", "");
  }
  EXPECT_EQ(content, want.content);
  EXPECT_EQ(thinking, want.reasoning);
  const json& last = lines.back();
  EXPECT_TRUE(last["done"].get<bool>());
  EXPECT_EQ(last["done_reason"], "length");
  EXPECT_EQ(last["eval_count"], kMaxTokens);
  EXPECT_EQ(last["prompt_eval_count"], j["prompt_eval_count"]);  // the whole prompt, cached or not

  // think: false shows no reasoning.
  json no_think = ollama_chat("tiny-r1", "Hello Ollama", false);
  no_think["think"] = false;
  auto n = post("/api/chat", no_think);
  ASSERT_EQ(n.status, 200) << n.body;
  EXPECT_FALSE(json::parse(n.body)["message"].contains("thinking"));
}

TEST_F(OllamaApiTest, GenerateStreamedRawAndLoad) {
  json body = {{"model", "tiny-r1"}, {"prompt", "Write a poem"}, {"system", "Be brief"},
               {"options", {{"temperature", 0}, {"num_predict", 4}, {"seed", 3}, {"stop", {"\x01"}}}}};
  auto s = post("/api/generate", body);  // stream by default
  ASSERT_EQ(s.status, 200) << s.body;
  const auto lines = ndjson(s.body);
  ASSERT_GE(lines.size(), 2u);
  std::string streamed;
  for (size_t i = 0; i + 1 < lines.size(); ++i)
    streamed += lines[i]["response"].get<std::string>() + lines[i].value("thinking", "");
  EXPECT_TRUE(lines.back()["done"].get<bool>());
  EXPECT_EQ(lines.back()["eval_count"], 4);
  body["stream"] = false;
  auto one = post("/api/generate", body);
  ASSERT_EQ(one.status, 200) << one.body;
  const json j = json::parse(one.body);
  EXPECT_EQ(j["response"].get<std::string>() + j.value("thinking", ""), streamed);

  body["raw"] = true;
  body["prompt"] = "<｜begin▁of▁sentence｜>Once upon a time";
  auto raw = post("/api/generate", body);
  ASSERT_EQ(raw.status, 200) << raw.body;
  EXPECT_EQ(json::parse(raw.body)["eval_count"], 4);

  for (const json& load : {json{{"model", "tiny-r1"}}, json{{"model", "tiny-r1"}, {"messages", json::array()}}}) {
    auto l = post(load.contains("messages") ? "/api/chat" : "/api/generate", load);
    ASSERT_EQ(l.status, 200) << l.body;
    const auto ls = ndjson(l.body);
    ASSERT_EQ(ls.size(), 1u);
    EXPECT_TRUE(ls[0]["done"].get<bool>());
    EXPECT_EQ(ls[0]["done_reason"], "load");
  }
}

TEST_F(OllamaApiTest, ErrorsAreOllamaShaped) {
  auto expect_error = [](const testing::TestResponse& r, int status, const std::string& part) {
    EXPECT_EQ(r.status, status) << r.body;
    json j;
    ASSERT_NO_THROW(j = json::parse(r.body)) << r.body;
    ASSERT_TRUE(j["error"].is_string()) << r.body;
    EXPECT_NE(j["error"].get<std::string>().find(part), std::string::npos) << r.body;
  };
  expect_error(post("/api/chat", {{"messages", {{{"role", "user"}, {"content", "x"}}}}}), 400, "model is required");
  expect_error(post("/api/chat", ollama_chat("llama3.2", "x", false)), 404, "model 'llama3.2' not found");
  json bad = ollama_chat("tiny-r1", "x", false);
  bad["options"]["temperature"] = "hot";
  expect_error(post("/api/chat", bad), 400, "options.temperature");
  bad = ollama_chat("tiny-r1", "x", false);
  bad["options"]["top_p"] = 7;
  expect_error(post("/api/generate", json{{"model", "tiny-r1"}, {"prompt", "x"}, {"options", bad["options"]}}), 400,
               "options.top_p");
  expect_error(call("POST", "/api/chat", "{not json"), 400, "not valid JSON");
  expect_error(post("/api/chat", {{"model", "tiny-r1"}, {"messages", {{{"role", "user"}, {"content", "x"}, {"images", {"AAAA"}}}}}}),
               400, "images");
  expect_error(call("GET", "/api/chat"), 405, "POST");
  expect_error(call("GET", "/api/pull"), 404, "unknown endpoint");
}

TEST_F(OllamaApiTest, GuardRefusalsAreOllamaShapedAndMetricsCountEndpoints) {
  // A second server on the same generator, with an API key.
  ApiServerOptions so;
  so.model_name = "tiny-r1";
  so.guard.api_key = "secret-key";
  ApiServer keyed(*generator_, so);
  const int port = keyed.bind("127.0.0.1", 0);
  std::thread t([&] { keyed.run(); });
  for (int i = 0; i < 500 && !keyed.running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto refused = testing::http_request(port, "GET", "/api/tags");
  auto allowed = testing::http_request(port, "GET", "/api/tags", "", {{"Authorization", "Bearer secret-key"}});
  keyed.stop();
  t.join();
  EXPECT_EQ(refused.status, 401);
  const json e = json::parse(refused.body);
  ASSERT_TRUE(e["error"].is_string()) << refused.body;
  EXPECT_EQ(e["error"].get<std::string>().find("secret-key"), std::string::npos);
  EXPECT_EQ(allowed.status, 200);
  // Without a model file the description is by name.
  EXPECT_EQ(json::parse(allowed.body)["models"][0]["name"], "tiny-r1:latest");

  ASSERT_EQ(post("/api/chat", ollama_chat("tiny-r1", "count me", false)).status, 200);
  const std::string metrics = call("GET", "/metrics").body;
  EXPECT_NE(metrics.find("endpoint=\"/api/chat\""), std::string::npos) << metrics;
}

TEST(OllamaModelNames, TagsAndTimestamps) {
  const OllamaModel m = ollama_model_named("ds");
  EXPECT_EQ(m.name, "ds:latest");
  EXPECT_TRUE(ollama_model_matches(m, "ds"));
  EXPECT_TRUE(ollama_model_matches(m, "ds:latest"));
  EXPECT_FALSE(ollama_model_matches(m, "ds:7b"));
  EXPECT_FALSE(ollama_model_matches(m, "d"));
  const auto t = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000)) + std::chrono::nanoseconds(42);
  EXPECT_EQ(ollama_timestamp(t), "2023-11-14T22:13:20.000000042Z");
}

}  // namespace
}  // namespace tandem::server
