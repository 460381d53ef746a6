// Request-body parsing: valid bodies give the typed request; every malformed or unsupported
// field is a 400 invalid_request_error whose param names it and whose message says so.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "runtime/server/completion_request.h"
#include "runtime/sampling/json_automaton.h"
#include "runtime/server/request_error.h"

namespace tandem::server {
namespace {

TEST(ChatRequestTest, MinimalBodyTakesDefaults) {
  const CompletionRequest r = parse_chat_completion_request(R"({"messages":[{"role":"user","content":"hi"}]})");
  EXPECT_EQ(r.kind, RequestKind::Chat);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].role, "user");
  EXPECT_EQ(r.messages[0].content, "hi");
  EXPECT_EQ(r.model, "");
  EXPECT_FALSE(r.max_tokens);
  EXPECT_TRUE(r.stop.empty());
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.include_usage);
  EXPECT_FALSE(r.sampling.temperature);
  EXPECT_FALSE(r.sampling.top_p);
  EXPECT_FALSE(r.sampling.top_k);
  EXPECT_FALSE(r.sampling.min_p);
  EXPECT_FALSE(r.sampling.seed);
}

TEST(ChatRequestTest, EveryFieldIsRead) {
  const CompletionRequest r = parse_chat_completion_request(R"({
    "model": "deepseek", "max_tokens": 5, "max_completion_tokens": 7, "temperature": 0.5, "top_p": 0.9,
    "top_k": 20, "min_p": 0.1, "seed": 18446744073709551615, "stop": ["\n\n", "END"], "stream": true,
    "stream_options": {"include_usage": true}, "n": 1, "presence_penalty": 0.25, "frequency_penalty": -1.5,
    "repeat_penalty": 1.1, "tools": [], "tool_choice": "none", "response_format": {"type": "text"},
    "logprobs": false, "top_logprobs": null, "logit_bias": {}, "user": "u1", "metadata": {"a": 1},
    "cache_prompt": true,
    "messages": [
      {"role": "developer", "content": "Be brief."},
      {"role": "user", "name": "ann", "content": [{"type": "text", "text": "Hello, "}, {"type": "text", "text": "you"}]},
      {"role": "assistant", "content": null, "tool_calls": []},
      {"role": "assistant", "content": "Hi"},
      {"role": "user", "content": ""}
    ]})");
  EXPECT_EQ(r.model, "deepseek");
  EXPECT_EQ(r.max_tokens, 7);  // max_completion_tokens wins
  EXPECT_FLOAT_EQ(*r.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(*r.sampling.top_p, 0.9f);
  EXPECT_EQ(*r.sampling.top_k, 20);
  EXPECT_FLOAT_EQ(*r.sampling.min_p, 0.1f);
  EXPECT_EQ(*r.sampling.seed, 18446744073709551615ull);
  EXPECT_FLOAT_EQ(*r.sampling.presence_penalty, 0.25f);
  EXPECT_FLOAT_EQ(*r.sampling.frequency_penalty, -1.5f);
  EXPECT_FLOAT_EQ(*r.sampling.repeat_penalty, 1.1f);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"\n\n", "END"}));
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  ASSERT_EQ(r.messages.size(), 5u);
  EXPECT_EQ(r.messages[0].role, "system");  // developer is the newer name for system
  EXPECT_EQ(r.messages[1].content, "Hello, you");
  EXPECT_EQ(r.messages[2].role, "assistant");
  EXPECT_EQ(r.messages[2].content, "");
  EXPECT_EQ(r.messages[3].content, "Hi");
}

TEST(ChatRequestTest, NullsAreDefaultsAndSingleStopStringsAndRandomSeed) {
  const CompletionRequest r = parse_chat_completion_request(
      R"({"messages":[{"role":"user","content":"x"}],"temperature":null,"stop":"###","seed":-1,"max_tokens":null,"n":null})");
  EXPECT_FALSE(r.sampling.temperature);
  EXPECT_EQ(r.stop, std::vector<std::string>{"###"});
  EXPECT_FALSE(r.sampling.seed);
  EXPECT_FALSE(r.max_tokens);
}

TEST(TextRequestTest, PromptForms) {
  auto prompt_of = [](const std::string& body) { return parse_text_completion_request(body).prompt; };
  EXPECT_EQ(std::get<std::string>(prompt_of(R"({"prompt":"Once upon"})")), "Once upon");
  EXPECT_EQ(std::get<std::string>(prompt_of(R"({"prompt":["Once"]})")), "Once");
  EXPECT_EQ(std::get<std::vector<int64_t>>(prompt_of(R"({"prompt":[1,2,3]})")), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(std::get<std::vector<int64_t>>(prompt_of(R"({"prompt":[[4,5]]})")), (std::vector<int64_t>{4, 5}));
  const CompletionRequest r = parse_text_completion_request(
      R"({"prompt":"a","max_tokens":3,"echo":false,"best_of":1,"suffix":"","logprobs":null,"stream":false})");
  EXPECT_EQ(r.kind, RequestKind::Text);
  EXPECT_EQ(r.max_tokens, 3);
}

struct BadBody {
  const char* body;
  const char* param;   // the field the error must name ("" : the body as a whole)
  const char* phrase;  // a piece of the message
};

void expect_rejected(bool chat, const BadBody& b) {
  SCOPED_TRACE(b.body);
  try {
    if (chat)
      parse_chat_completion_request(b.body);
    else
      parse_text_completion_request(b.body);
    ADD_FAILURE() << "accepted";
  } catch (const RequestError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.type(), "invalid_request_error");
    EXPECT_EQ(e.param(), b.param);
    const std::string msg = e.what();
    EXPECT_NE(msg.find(b.phrase), std::string::npos) << msg;
    if (*b.param) {
      EXPECT_NE(msg.find(b.param), std::string::npos) << "the message must name the field: " << msg;
    }
    const auto j = e.to_json();
    EXPECT_EQ(j["error"]["message"], msg);
    EXPECT_EQ(j["error"]["type"], "invalid_request_error");
    if (*b.param) {
      EXPECT_EQ(j["error"]["param"], b.param);
    } else {
      EXPECT_TRUE(j["error"]["param"].is_null());
    }
  }
}

#define USER R"("messages":[{"role":"user","content":"x"}])"

const BadBody kBadChat[] = {
    {"", "", "not valid JSON"},
    {"{", "", "not valid JSON"},
    {R"({"messages": [}])", "", "not valid JSON"},
    {"[]", "", "must be a JSON object"},
    {"42", "", "must be a JSON object"},
    {"\"text\"", "", "must be a JSON object"},
    {"{}", "messages", "is required"},
    {R"({"messages":"hi"})", "messages", "must be an array"},
    {R"({"messages":[]})", "messages", "must not be empty"},
    {R"({"messages":[1]})", "messages[0]", "must be an object"},
    {R"({"messages":[{"content":"x"}]})", "messages[0].role", "is required"},
    {R"({"messages":[{"role":7,"content":"x"}]})", "messages[0].role", "must be a string"},
    {R"({"messages":[{"role":"tool","content":"x","tool_call_id":5}]})", "messages[0].tool_call_id", "must be a string"},
    {R"({"messages":[{"role":"function","content":"x"}]})", "messages[0].role", "not supported"},
    {R"({"messages":[{"role":"robot","content":"x"}]})", "messages[0].role", "must be one of"},
    {R"({"messages":[{"role":"user"}]})", "messages[0].content", "is required"},
    {R"({"messages":[{"role":"user","content":null}]})", "messages[0].content", "is required"},
    {R"({"messages":[{"role":"user","content":5}]})", "messages[0].content", "must be a string or an array"},
    {R"({"messages":[{"role":"user","content":["x"]}]})", "messages[0].content[0]", "must be an object"},
    {R"({"messages":[{"role":"user","content":[{"text":"x"}]}]})", "messages[0].content[0].type", "is required"},
    {R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"u"}}]}]})",
     "messages[0].content[0].type", "text only"},
    {R"({"messages":[{"role":"user","content":[{"type":"text"}]}]})", "messages[0].content[0].text", "is required"},
    {R"({"messages":[{"role":"user","content":[{"type":"text","text":1}]}]})", "messages[0].content[0].text",
     "must be a string"},
    {R"({"messages":[{"role":"user","name":5,"content":"x"}]})", "messages[0].name", "must be a string"},
    {R"({"messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[{"id":"1"}]}]})",
     "messages[1].tool_calls[0].function", "must be an object"},
    {R"({"messages":[{"role":"user","content":"x","tool_calls":[{"function":{"name":"f"}}]}]})",
     "messages[0].tool_calls", "only assistant"},
    {R"({"messages":[{"role":"assistant","content":null,"tool_calls":[{"function":{"name":"f","arguments":3}}]}]})",
     "messages[0].tool_calls[0].function.arguments", "string of JSON"},
    {R"({"messages":[{"role":"assistant","content":"x","function_call":{"name":"f"}}]})",
     "messages[0].function_call", "not supported"},
    {"{" USER R"(,"model":3})", "model", "must be a string"},
    {"{" USER R"(,"max_tokens":0})", "max_tokens", "at least 1"},
    {"{" USER R"(,"max_tokens":-5})", "max_tokens", "at least 1"},
    {"{" USER R"(,"max_tokens":"10"})", "max_tokens", "must be an integer"},
    {"{" USER R"(,"max_tokens":1.5})", "max_tokens", "must be an integer"},
    {"{" USER R"(,"max_tokens":99999999999999999999})", "max_tokens", "must be an integer"},
    {"{" USER R"(,"max_completion_tokens":0})", "max_completion_tokens", "at least 1"},
    {"{" USER R"(,"temperature":-0.1})", "temperature", "must be in [0, 2]"},
    {"{" USER R"(,"temperature":2.5})", "temperature", "must be in [0, 2]"},
    {"{" USER R"(,"temperature":"hot"})", "temperature", "must be a number"},
    {"{" USER R"(,"top_p":0})", "top_p", "must be in (0, 1]"},
    {"{" USER R"(,"top_p":1.5})", "top_p", "must be in (0, 1]"},
    {"{" USER R"(,"top_k":-1})", "top_k", "must be >= 0"},
    {"{" USER R"(,"top_k":1.5})", "top_k", "must be an integer"},
    {"{" USER R"(,"min_p":1})", "min_p", "must be in [0, 1)"},
    {"{" USER R"(,"min_p":-0.1})", "min_p", "must be in [0, 1)"},
    {"{" USER R"(,"presence_penalty":3})", "presence_penalty", "must be in [-2, 2]"},
    {"{" USER R"(,"frequency_penalty":-2.5})", "frequency_penalty", "must be in [-2, 2]"},
    {"{" USER R"(,"repeat_penalty":0})", "repeat_penalty", "must be in (0, 10]"},
    {"{" USER R"(,"seed":-2})", "seed", "non-negative"},
    {"{" USER R"(,"seed":1.5})", "seed", "must be an integer"},
    {"{" USER R"(,"seed":"7"})", "seed", "must be an integer"},
    {"{" USER R"(,"stop":5})", "stop", "a string or an array of strings"},
    {"{" USER R"(,"stop":""})", "stop", "must not be empty"},
    {"{" USER R"(,"stop":["a",""]})", "stop[1]", "must not be empty"},
    {"{" USER R"(,"stop":[1]})", "stop[0]", "must be a string"},
    {"{" USER R"(,"stop":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17"]})", "stop",
     "at most 16"},
    {"{" USER R"(,"stream":"yes"})", "stream", "must be a boolean"},
    {"{" USER R"(,"stream":1})", "stream", "must be a boolean"},
    {"{" USER R"(,"stream_options":1})", "stream_options", "must be an object"},
    {"{" USER R"(,"stream_options":{"include_usage":1}})", "stream_options.include_usage", "must be a boolean"},
    {"{" USER R"(,"n":2})", "n", "must be 1"},
    {"{" USER R"(,"n":0})", "n", "must be 1"},
    {"{" USER R"(,"n":"1"})", "n", "must be an integer"},
    {"{" USER R"(,"logprobs":true})", "logprobs", "not supported"},
    {"{" USER R"(,"logprobs":1})", "logprobs", "must be a boolean"},
    {"{" USER R"(,"top_logprobs":3})", "top_logprobs", "not supported"},
    {"{" USER R"(,"tools":[{"type":"function"}]})", "tools[0].function", "must be an object"},
    {"{" USER R"(,"tools":[{"type":"function","function":{"name":"a b"}}]})", "tools[0].function.name", "must be 1 to 64"},
    {"{" USER R"(,"tools":[{"type":"function","function":{"name":"f"}},{"type":"function","function":{"name":"f"}}]})",
     "tools[1].function.name", "two tools"},
    {"{" USER R"(,"tools":[{"type":"function","function":{"name":"f","parameters":[]}}]})",
     "tools[0].function.parameters", "JSON Schema object"},
    {"{" USER R"(,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}})",
     "tool_choice.function.name", "not in tools"},
    {"{" USER R"(,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"sometimes"})", "tool_choice",
     "must be none, auto"},
    {"{" USER R"(,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"required","response_format":{"type":"json_object"}})",
     "response_format", "both shape"},
    {"{" USER R"(,"tools":{}})", "tools", "must be an array"},
    {"{" USER R"(,"functions":[{"name":"f"}]})", "functions", "not supported"},
    {"{" USER R"(,"tool_choice":"required"})", "tool_choice", "tools is empty"},
    {"{" USER R"(,"function_call":"auto"})", "function_call", "not supported"},
    {"{" USER R"(,"response_format":{"type":"xml"}})", "response_format.type", "must be text, json_object"},
    {"{" USER R"(,"response_format":{"type":"json_schema"}})", "response_format.json_schema", "must be an object"},
    {"{" USER R"(,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"string","pattern":"a"}}}})",
     "response_format.json_schema.schema", "'pattern'"},
    {"{" USER R"(,"response_format":{"type":"json_schema","json_schema":{"schema":{"properties":{"a":{"$ref":"#"}}}}}})",
     "response_format.json_schema.schema.properties.a", "'$ref'"},
    {"{" USER R"(,"response_format":"json"})", "response_format", "must be an object"},
    {"{" USER R"(,"response_format":{}})", "response_format.type", "is required"},
    {"{" USER R"(,"logit_bias":{"1":5}})", "logit_bias", "not supported"},
    {"{" USER R"(,"logit_bias":[1]})", "logit_bias", "must be an object"},
    {"{" USER R"(,"audio":{"voice":"x"}})", "audio", "not supported"},
    {"{" USER R"(,"modalities":["text","audio"]})", "modalities", "not supported"},
};

TEST(ChatRequestTest, ToolsToolChoiceAndToolMessages) {
  const CompletionRequest r = parse_chat_completion_request(R"({"messages":[
      {"role":"user","content":"weather?"},
      {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",
        "function":{"name":"get","arguments":"{\"city\":\"Oslo\"}"}}]},
      {"role":"tool","tool_call_id":"c1","content":"sunny"}],
    "tools":[{"type":"function","function":{"name":"get","description":"d",
      "parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
    "tool_choice":{"type":"function","function":{"name":"get"}}})");
  ASSERT_EQ(r.tools.size(), 1u);
  EXPECT_EQ(r.tools[0].name, "get");
  EXPECT_EQ(r.tools[0].description, "d");
  EXPECT_EQ(r.tool_choice, ToolChoice::Named);
  EXPECT_EQ(r.tool_choice_name, "get");
  ASSERT_EQ(r.messages.size(), 3u);
  ASSERT_EQ(r.messages[1].tool_calls.size(), 1u);
  EXPECT_EQ(r.messages[1].tool_calls[0].arguments, R"({"city":"Oslo"})");
  EXPECT_EQ(r.messages[2].role, "tool");
  EXPECT_EQ(r.messages[2].tool_call_id, "c1");
  EXPECT_TRUE(r.tools_active());
  const CompletionRequest none = parse_chat_completion_request(
      R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none"})");
  EXPECT_FALSE(none.tools_active());
}

TEST(ChatRequestTest, ResponseFormatCompilesTheSchema) {
  const CompletionRequest r = parse_chat_completion_request(
      R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"n",
         "strict":true,"schema":{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"],
         "additionalProperties":false}}}})");
  ASSERT_TRUE(r.grammar);
  JsonAutomaton a(r.grammar);
  EXPECT_TRUE(a.feed(R"({"a":12})") && a.complete());
  JsonAutomaton b(r.grammar);
  EXPECT_FALSE(b.feed(R"({"b")"));
  EXPECT_TRUE(parse_chat_completion_request(
                  R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}})")
                  .grammar);
  EXPECT_FALSE(parse_chat_completion_request(
                   R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"text"}})")
                   .grammar);
}

TEST(ChatRequestTest, EveryMalformedOrUnsupportedFieldIsA400NamingIt) {
  for (const auto& b : kBadChat) expect_rejected(true, b);
}

TEST(ChatRequestTest, DeepNestingIsRefused) {
  const std::string deep = R"({"messages":[{"role":"user","content":"x"}],"metadata":)" + std::string(100, '[') +
                           std::string(100, ']') + "}";
  expect_rejected(true, {deep.c_str(), "", "nests deeper"});
}

const BadBody kBadText[] = {
    {"{}", "prompt", "is required"},
    {R"({"prompt":5})", "prompt", "must be a string"},
    {R"({"prompt":[]})", "prompt", "must not be an empty array"},
    {R"({"prompt":["a","b"]})", "prompt", "one per request"},
    {R"({"prompt":[[1],[2]]})", "prompt", "one per request"},
    {R"({"prompt":[[]]})", "prompt[0]", "must not be empty"},
    {R"({"prompt":[-1]})", "prompt[0]", "token id"},
    {R"({"prompt":[1,"a"]})", "prompt[1]", "token id"},
    {R"({"prompt":[1,2.5]})", "prompt[1]", "token id"},
    {R"({"prompt":"a","echo":true})", "echo", "not supported"},
    {R"({"prompt":"a","best_of":2})", "best_of", "must be 1"},
    {R"({"prompt":"a","suffix":"z"})", "suffix", "not supported"},
    {R"({"prompt":"a","logprobs":1})", "logprobs", "not supported"},
    {R"({"prompt":"a","n":3})", "n", "must be 1"},
    {R"({"prompt":"a","max_tokens":0})", "max_tokens", "at least 1"},
    {R"({"prompt":"a","stop":[null]})", "stop[0]", "must be a string"},
    {R"({"prompt":"a","temperature":3})", "temperature", "must be in [0, 2]"},
    {R"({"prompt":"a",})", "", "not valid JSON"},
};

TEST(TextRequestTest, EveryMalformedOrUnsupportedFieldIsA400NamingIt) {
  for (const auto& b : kBadText) expect_rejected(false, b);
}

}  // namespace
}  // namespace tandem::server
