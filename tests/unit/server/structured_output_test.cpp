// Constrained sampling end to end on a generated random model: random weights write garbage,
// which is what shows the constraint works. Whatever the seed, a structured-output reply must
// parse and validate against its schema, and a forced tool call must name an existing function
// with arguments valid against its parameters, streamed or not, OpenAI and Ollama, in every
// family's tool format (the real templates of tests/unit/chat/templates).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/chat/tool_calls.h"
#include "runtime/engine/model_loader.h"
#include "runtime/server/api_server.h"
#include "runtime/server/completion_request.h"
#include "runtime/server/generator.h"
#include "runtime/server/request_error.h"
#include "tests/unit/server/running_server.h"
#include "tests/unit/server/test_http_client.h"
#include "tools/modelgen/deepseek2_generator.h"

namespace tandem::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kMaxTokens = 64;
// The tiny model's vocabulary has no tool-call tokens: the markup is spelled byte by byte.
constexpr int kMaxCallTokens = 320;
const std::string kBos = "<｜begin▁of▁sentence｜>";
const std::string kEos = "<｜end▁of▁sentence｜>";

std::string template_text(const std::string& name) {
  std::ifstream in(std::string(TANDEM_CHAT_TEMPLATES_DIR) + "/" + name + ".jinja", std::ios::binary);
  EXPECT_TRUE(in) << name;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

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

std::vector<json> ndjson(const std::string& body) {
  std::vector<json> out;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

const json kSchema = json::parse(R"({"type":"object","properties":{
    "name":{"type":"string"},"age":{"type":"integer"},"color":{"enum":["red","green"]},
    "tags":{"type":"array","items":{"type":"boolean"},"maxItems":2}},
    "required":["name","age","color"],"additionalProperties":false})");

// The reply against kSchema, by hand (the test's own oracle).
void expect_valid(const std::string& text) {
  json d;
  ASSERT_NO_THROW(d = json::parse(text)) << text;
  ASSERT_TRUE(d.is_object()) << text;
  EXPECT_TRUE(d["name"].is_string()) << text;
  EXPECT_TRUE(d["age"].is_number_integer()) << text;
  EXPECT_TRUE(d["color"] == "red" || d["color"] == "green") << text;
  if (d.contains("tags")) {
    EXPECT_TRUE(d["tags"].is_array() && d["tags"].size() <= 2) << text;
    for (const auto& t : d["tags"]) EXPECT_TRUE(t.is_boolean()) << text;
  }
  for (const auto& [k, v] : d.items()) EXPECT_TRUE(kSchema["properties"].contains(k)) << k << " in " << text;
}

const json kTools = json::parse(R"([
  {"type":"function","function":{"name":"get_weather","description":"Weather of a city",
    "parameters":{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}},
    "required":["city"],"additionalProperties":false}}},
  {"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{}}}}])");

void expect_valid_call(const std::string& name, const std::string& arguments, const std::string& only = "") {
  if (!only.empty()) {
    EXPECT_EQ(name, only);
  }
  ASSERT_TRUE(name == "get_weather" || name == "get_time") << name;
  json a;
  ASSERT_NO_THROW(a = json::parse(arguments)) << arguments;
  ASSERT_TRUE(a.is_object()) << arguments;
  if (name == "get_weather") {
    EXPECT_TRUE(a["city"].is_string()) << arguments;
    for (const auto& [k, v] : a.items()) EXPECT_TRUE(k == "city" || (k == "days" && v.is_number_integer())) << arguments;
  }
}

class StructuredOutputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_path_ = (fs::temp_directory_path() / ("tandem_structured_test_" + std::to_string(getpid()) + ".gguf")).string();
    modelgen::Deepseek2Options o = modelgen::deepseek2_preset("tiny-v3");
    o.types.set_all(GgmlType::Q8_0);
    o.block_pool = 0;
    o.seed = 11;
    modelgen::generate_deepseek2(o, model_path_);
    ModelLoadOptions lo;
    lo.path = ComputePath::Cpu;
    lo.threads = 1;
    served_ = std::make_unique<LoadedModel>(load_model(model_path_, lo));
    GeneratorOptions go;
    go.context_limit = 2048;
    generator_ = std::make_unique<Generator>(
        *served_->lm, *served_->tokenizer,
        ChatTemplate::from_jinja(template_text("deepseek-v3"), "deepseek-v3", ChatFormat::Deepseek3, kBos, kEos), go);
    ApiServerOptions so;
    so.model_name = "tiny";
    testing::start_server(server_, thread_, port_, *generator_, so);
  }
  static void TearDownTestSuite() {
    testing::stop_server(server_, thread_);
    generator_.reset();
    served_.reset();
    fs::remove(model_path_);
  }
  void SetUp() override { ASSERT_TRUE(server_->running()); }

  static testing::TestResponse post(const std::string& path, const json& body) {
    return testing::http_request(port_, "POST", path, body.dump());
  }
  static json chat(const std::string& user, uint64_t seed, bool stream) {
    return {{"messages", {{{"role", "user"}, {"content", user}}}},
            {"max_tokens", kMaxTokens},
            {"temperature", 1.0},
            {"top_k", 0},
            {"seed", seed},
            {"stream", stream}};
  }

  static inline std::string model_path_;
  static inline std::unique_ptr<LoadedModel> served_;
  static inline std::unique_ptr<Generator> generator_;
  static inline std::unique_ptr<ApiServer> server_;
  static inline int port_ = 0;
  static inline std::thread thread_;
};

TEST_F(StructuredOutputTest, JsonSchemaRepliesAlwaysValidate) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    json body = chat("Describe a person", seed, false);
    body["response_format"] = {{"type", "json_schema"}, {"json_schema", {{"name", "person"}, {"strict", true}, {"schema", kSchema}}}};
    auto r = post("/v1/chat/completions", body);
    ASSERT_EQ(r.status, 200) << r.body;
    const json j = json::parse(r.body);
    expect_valid(j["choices"][0]["message"]["content"].get<std::string>());
    EXPECT_EQ(j["choices"][0]["finish_reason"], "stop") << r.body;
    EXPECT_LE(j["usage"]["completion_tokens"].get<int>(), kMaxTokens);

    body["stream"] = true;
    r = post("/v1/chat/completions", body);
    ASSERT_EQ(r.status, 200);
    std::string text;
    for (const auto& c : sse(r.body))
      if (!c["choices"].empty() && c["choices"][0]["delta"].contains("content"))
        text += c["choices"][0]["delta"]["content"].get<std::string>();
    expect_valid(text);
  }
}

TEST_F(StructuredOutputTest, JsonObjectAndOllamaFormat) {
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    json body = chat("Anything", seed, false);
    body["response_format"] = {{"type", "json_object"}};
    auto r = post("/v1/chat/completions", body);
    ASSERT_EQ(r.status, 200) << r.body;
    json doc;
    const std::string content = json::parse(r.body)["choices"][0]["message"]["content"];
    ASSERT_NO_THROW(doc = json::parse(content)) << content;
    EXPECT_TRUE(doc.is_object()) << content;

    const json options = {{"temperature", 1.0}, {"top_k", 0}, {"seed", seed}, {"num_predict", kMaxTokens}};
    json ollama = {{"model", "tiny"}, {"messages", {{{"role", "user"}, {"content", "x"}}}}, {"stream", false},
                   {"format", kSchema}, {"options", options}};
    r = post("/api/chat", ollama);
    ASSERT_EQ(r.status, 200) << r.body;
    expect_valid(json::parse(r.body)["message"]["content"].get<std::string>());

    ollama["format"] = "json";
    ollama["stream"] = true;
    r = post("/api/chat", ollama);
    ASSERT_EQ(r.status, 200) << r.body;
    std::string text;
    for (const auto& c : ndjson(r.body)) text += c["message"]["content"].get<std::string>();
    ASSERT_NO_THROW(doc = json::parse(text)) << text;
    EXPECT_TRUE(doc.is_object());
  }
}

TEST_F(StructuredOutputTest, UnsupportedSchemaKeywordsAre400NamingThem) {
  json body = chat("x", 1, false);
  body["response_format"] = {{"type", "json_schema"},
                             {"json_schema", {{"name", "n"}, {"schema", {{"type", "string"}, {"pattern", "^a"}}}}}};
  auto r = post("/v1/chat/completions", body);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("'pattern'"), std::string::npos) << r.body;
  json forced = chat("x", 1, false);
  forced["tools"] = json::parse(R"([{"type":"function","function":{"name":"f","parameters":{"type":"object",
      "properties":{"n":{"type":"number","minimum":0}}}}}])");
  forced["tool_choice"] = "required";
  r = post("/v1/chat/completions", forced);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("'minimum'"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("tools[0].function.parameters"), std::string::npos) << r.body;
}

TEST_F(StructuredOutputTest, ForcedToolCallsNameAFunctionWithValidArguments) {
  for (uint64_t seed = 1; seed <= 2; ++seed) {
    json body = chat("What is the weather in Oslo?", seed, false);
    body["max_tokens"] = kMaxCallTokens;
    body["tools"] = kTools;
    body["tool_choice"] = seed % 2 ? json("required") : json{{"type", "function"}, {"function", {{"name", "get_weather"}}}};
    const std::string only = seed % 2 ? "" : "get_weather";
    auto r = post("/v1/chat/completions", body);
    ASSERT_EQ(r.status, 200) << r.body;
    const json j = json::parse(r.body);
    const json& m = j["choices"][0]["message"];
    EXPECT_EQ(j["choices"][0]["finish_reason"], "tool_calls") << r.body;
    ASSERT_TRUE(m["tool_calls"].is_array() && m["tool_calls"].size() == 1) << r.body;
    EXPECT_TRUE(m["content"].is_null()) << r.body;
    const json& call = m["tool_calls"][0];
    EXPECT_EQ(call["type"], "function");
    EXPECT_TRUE(call["id"].get<std::string>().starts_with("call_"));
    expect_valid_call(call["function"]["name"], call["function"]["arguments"], only);

    // Streamed: the call comes as delta.tool_calls, and no markup leaks into content.
    body["stream"] = true;
    r = post("/v1/chat/completions", body);
    ASSERT_EQ(r.status, 200);
    std::string name, args, content, finish;
    for (const auto& c : sse(r.body)) {
      if (c["choices"].empty()) continue;
      const json& d = c["choices"][0]["delta"];
      if (d.contains("content")) content += d["content"].get<std::string>();
      if (d.contains("tool_calls"))
        for (const auto& t : d["tool_calls"]) {
          EXPECT_EQ(t["index"], 0);
          if (t["function"].contains("name")) name += t["function"]["name"].get<std::string>();
          if (t["function"].contains("arguments")) args += t["function"]["arguments"].get<std::string>();
        }
      if (!c["choices"][0]["finish_reason"].is_null()) finish = c["choices"][0]["finish_reason"];
    }
    EXPECT_EQ(content.find("<｜tool"), std::string::npos) << content;
    EXPECT_EQ(finish, "tool_calls");
    expect_valid_call(name, args, only);
  }
}

TEST_F(StructuredOutputTest, OllamaToolsAndToolHistoryAreAccepted) {
  const json body = {{"model", "tiny"},
                     {"messages", json::parse(R"([{"role":"user","content":"weather?"},
                        {"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Oslo"}}}]},
                        {"role":"tool","tool_name":"get_weather","content":"sunny"}])")},
                     {"tools", kTools},
                     {"stream", false},
                     {"options", {{"temperature", 0}, {"num_predict", 4}}}};
  const auto r = post("/api/chat", body);
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  EXPECT_TRUE(j["done"].get<bool>());
  // The history reached the prompt in the template's own call format.
  CompletionRequest req = parse_chat_completion_request(json{{"messages", body["messages"]}, {"tools", kTools}}.dump());
  const PreparedPrompt p = generator_->prepare(req);
  EXPECT_NE(p.text.find("<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\":\"Oslo\"}\n```"),
            std::string::npos)
      << p.text;
  EXPECT_NE(p.text.find("<｜tool▁output▁begin｜>sunny<｜tool▁output▁end｜>"), std::string::npos) << p.text;
}

// tool_choice none hides the tools; auto shows them (DeepSeek V3's template does not render
// tools, so a system message lists them).
TEST_F(StructuredOutputTest, ToolChoiceNoneHidesTheTools) {
  json body = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"tools", kTools}};
  const PreparedPrompt shown = generator_->prepare(parse_chat_completion_request(body.dump()));
  EXPECT_NE(shown.text.find("### get_weather"), std::string::npos) << shown.text;
  EXPECT_EQ(shown.tool_format, ToolCallFormat::DeepseekV3);
  body["tool_choice"] = "none";
  const PreparedPrompt hidden = generator_->prepare(parse_chat_completion_request(body.dump()));
  EXPECT_EQ(hidden.text.find("get_weather"), std::string::npos) << hidden.text;
  EXPECT_EQ(hidden.tool_format, ToolCallFormat::None);
  EXPECT_FALSE(hidden.grammar);
}

// Every family's format, through the Generator on the same model: the forced reply parses back
// into one valid call.
TEST_F(StructuredOutputTest, ForcedCallsInEveryFamilyFormat) {
  struct Family {
    const char* file;
    ChatFormat format;
    std::string bos, eos;
    ToolCallFormat tools;
  };
  const Family families[] = {
      {"deepseek-r1", ChatFormat::DeepseekR1, kBos, kEos, ToolCallFormat::DeepseekV3},
      {"deepseek-v3.1", ChatFormat::Deepseek3, kBos, kEos, ToolCallFormat::DeepseekV31},
      {"qwen2.5", ChatFormat::Chatml, "", "<|im_end|>", ToolCallFormat::Qwen},
      {"qwen3", ChatFormat::Chatml, "", "<|im_end|>", ToolCallFormat::Qwen},
      {"llama3", ChatFormat::Llama3, "<|begin_of_text|>", "<|eot_id|>", ToolCallFormat::Llama3},
  };
  testing::stop_server(server_, thread_);  // the model is used directly below
  GeneratorOptions go;
  go.context_limit = 2048;
  for (const auto& f : families) {
    Generator g(*served_->lm, *served_->tokenizer,
                ChatTemplate::from_jinja(template_text(f.file), f.file, f.format, f.bos, f.eos), go);
    for (uint64_t seed = 3; seed <= 3; ++seed) {
      json body = chat("weather?", seed, false);
      body["max_tokens"] = kMaxCallTokens;
      body["tools"] = kTools;
      body["tool_choice"] = "required";
      const CompletionRequest req = parse_chat_completion_request(body.dump());
      const PreparedPrompt p = g.prepare(req);
      ASSERT_EQ(p.tool_format, f.tools) << f.file;
      ASSERT_TRUE(p.grammar);
      const GenerationOutcome o = g.generate(p, req, {});
      ToolCallParser parser(p.tool_format);
      auto piece = parser.push(o.text);
      auto tail = parser.finish();
      piece.content += tail.content;
      for (auto& c : tail.calls) piece.calls.push_back(c);
      ASSERT_EQ(piece.calls.size(), 1u) << f.file << ": " << o.text;
      EXPECT_TRUE(piece.content.empty()) << f.file << ": " << piece.content;
      expect_valid_call(piece.calls[0].name, piece.calls[0].arguments);
    }
  }
  ApiServerOptions so;
  so.model_name = "tiny";
  testing::start_server(server_, thread_, port_, *generator_, so);
}

}  // namespace
}  // namespace tandem::server
