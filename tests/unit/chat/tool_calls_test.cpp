// Tool calls per family: the real templates render tools, calls and results as each template
// says (expected texts worked out from the template source by hand); the parsers take calls out
// of replies whole and cut at every point; forced-call grammars accept exactly well-formed calls
// of the given functions, and what they generate parses back.
#include "runtime/chat/tool_calls.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "runtime/chat/chat_template.h"
#include "runtime/core/error.h"
#include "runtime/sampling/json_automaton.h"

namespace tandem {
namespace {

using nlohmann::json;
using ojson = nlohmann::ordered_json;

const std::string kBos = "<｜begin▁of▁sentence｜>";
const std::string kEos = "<｜end▁of▁sentence｜>";

ChatTemplate real(const std::string& name, ChatFormat f, const std::string& bos, const std::string& eos) {
  std::ifstream in(std::string(TANDEM_CHAT_TEMPLATES_DIR) + "/" + name + ".jinja", std::ios::binary);
  EXPECT_TRUE(in) << name;
  std::ostringstream s;
  s << in.rdbuf();
  return ChatTemplate::from_jinja(s.str(), name, f, bos, eos);
}

std::vector<ChatMessage> weather_conversation() {
  ChatMessage user{"user", "weather?"};
  ChatMessage call{"assistant", ""};
  call.tool_calls.push_back({"c1", "get", R"({"city":"Oslo"})"});
  ChatMessage result{"tool", "sunny"};
  result.tool_call_id = "c1";
  return {user, call, result};
}

TEST(ToolCallTemplates, FormatsAreReadOffTheTemplates) {
  EXPECT_EQ(real("deepseek-v3", ChatFormat::Deepseek3, kBos, kEos).tool_call_format(), ToolCallFormat::DeepseekV3);
  EXPECT_EQ(real("deepseek-r1", ChatFormat::DeepseekR1, kBos, kEos).tool_call_format(), ToolCallFormat::DeepseekV3);
  EXPECT_EQ(real("deepseek-v3.1", ChatFormat::Deepseek3, kBos, kEos).tool_call_format(), ToolCallFormat::DeepseekV31);
  EXPECT_EQ(real("qwen2.5", ChatFormat::Chatml, "", "<|im_end|>").tool_call_format(), ToolCallFormat::Qwen);
  EXPECT_EQ(real("qwen3", ChatFormat::Chatml, "", "<|im_end|>").tool_call_format(), ToolCallFormat::Qwen);
  EXPECT_EQ(real("llama3", ChatFormat::Llama3, "<|begin_of_text|>", "<|eot_id|>").tool_call_format(),
            ToolCallFormat::Llama3);
  EXPECT_TRUE(real("qwen2.5", ChatFormat::Chatml, "", "<|im_end|>").renders_tools());
  EXPECT_FALSE(real("deepseek-v3", ChatFormat::Deepseek3, kBos, kEos).renders_tools());
  EXPECT_FALSE(real("llama3", ChatFormat::Llama3, "<|begin_of_text|>", "<|eot_id|>").renders_tools());
}

TEST(ToolCallTemplates, DeepseekV3RendersCallsAndResults) {
  const ChatTemplate t = real("deepseek-v3", ChatFormat::Deepseek3, kBos, kEos);
  EXPECT_EQ(t.render_json(t.messages_json(weather_conversation()), true),
            kBos + "<｜User｜>weather?<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get\n"
                   "```json\n{\"city\":\"Oslo\"}\n```<｜tool▁call▁end｜><｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>"
                   "sunny<｜tool▁output▁end｜><｜tool▁outputs▁end｜>");
}

// The hand-written DeepSeek format renders calls and results as the V3 template does where the
// template has no quirk (two calls, a run of results closed by the reply that follows).
TEST(ToolCallTemplates, HandWrittenDeepseekMatchesTheTemplate) {
  ChatMessage call{"assistant", ""};
  call.tool_calls = {{"c1", "get", R"({"city":"Oslo"})"}, {"c2", "time", "{}"}};
  const std::vector<std::vector<ChatMessage>> convs = {
      {{"user", "q"}, call, {"tool", "r1"}, {"tool", "r2"}, {"assistant", "It is sunny"}, {"user", "thanks"}},
      {{"system", "S"}, {"user", "q"}, call, {"tool", "r1"}},
  };
  const ChatTemplate jinja = real("deepseek-v3", ChatFormat::Deepseek3, kBos, kEos);
  const ChatTemplate hand(ChatFormat::Deepseek3, kBos, kEos);
  for (const auto& c : convs) {
    EXPECT_EQ(hand.render(c, true), jinja.render_json(jinja.messages_json(c), true));
    EXPECT_EQ(hand.render_json(hand.messages_json(c), true), jinja.render_json(jinja.messages_json(c), true));
  }
  // Other hand-written formats refuse tool messages with a reason.
  const ChatTemplate chatml(ChatFormat::Chatml, "", "<|im_end|>");
  EXPECT_THROW(chatml.render(convs[1], true), Error);
}

TEST(ToolCallTemplates, DeepseekV31RendersCallsResultsAndTheThinkingSwitch) {
  const ChatTemplate t = real("deepseek-v3.1", ChatFormat::Deepseek3, kBos, kEos);
  EXPECT_EQ(t.render_json(t.messages_json(weather_conversation()), true),
            kBos + "<｜User｜>weather?<｜Assistant｜></think><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get<｜tool▁sep｜>"
                   "{\"city\":\"Oslo\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>" + kEos +
                   "<｜tool▁output▁begin｜>sunny<｜tool▁output▁end｜>");
  const std::vector<ChatMessage> hi = {{"user", "Hi"}};
  EXPECT_EQ(t.render_json(t.messages_json(hi), true, ojson{{"thinking", true}}), kBos + "<｜User｜>Hi<｜Assistant｜><think>");
  EXPECT_EQ(t.render_json(t.messages_json(hi), true, ojson{{"thinking", false}}),
            kBos + "<｜User｜>Hi<｜Assistant｜></think>");
  EXPECT_EQ(t.render(hi, true), kBos + "<｜User｜>Hi<｜Assistant｜></think>");  // off unless asked
  // An earlier reply loses its reasoning.
  const std::vector<ChatMessage> two = {{"system", "S"}, {"user", "a"}, {"assistant", "<think>x</think>B"}, {"user", "c"}};
  EXPECT_EQ(t.render(two, true), kBos + "S<｜User｜>a<｜Assistant｜></think>B" + kEos + "<｜User｜>c<｜Assistant｜></think>");
}

TEST(ToolCallTemplates, QwenRendersToolsCallsAndResults) {
  for (const char* name : {"qwen2.5", "qwen3"}) {
    const ChatTemplate t = real(name, ChatFormat::Chatml, "", "<|im_end|>");
    const ojson vars = ojson::parse(R"({"tools":[{"type":"function","function":{"name":"get","description":"Weather",
        "parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]})");
    const std::string r = t.render_json(t.messages_json(weather_conversation()), true, vars);
    EXPECT_NE(r.find("<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get\", \"description\": \"Weather\", "
                     "\"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}}}}\n</tools>"),
              std::string::npos)
        << name << ": " << r;
    // Arguments go in as an object (tojson writes Python's separators).
    EXPECT_NE(r.find("<|im_start|>assistant\n<tool_call>\n{\"name\": \"get\", \"arguments\": {\"city\": \"Oslo\"}}\n"
                     "</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\nsunny\n</tool_response><|im_end|>\n"
                     "<|im_start|>assistant\n"),
              std::string::npos)
        << name << ": " << r;
  }
}

// Feeds text to a parser cut at the given points; returns all content and calls.
ToolCallParser::Piece parse(ToolCallFormat f, const std::string& text, const std::vector<size_t>& cuts) {
  ToolCallParser p(f);
  ToolCallParser::Piece all;
  auto add = [&](ToolCallParser::Piece x) {
    all.content += x.content;
    for (auto& c : x.calls) all.calls.push_back(std::move(c));
  };
  size_t at = 0;
  for (size_t c : cuts) {
    add(p.push(text.substr(at, c - at)));
    at = c;
  }
  add(p.push(text.substr(at)));
  add(p.finish());
  return all;
}

struct ParseCase {
  ToolCallFormat format;
  std::string text;
  std::string content;
  std::vector<std::pair<std::string, std::string>> calls;  // name, arguments
};

TEST(ToolCallParser, EachFamilyWholeAndCutAnywhere) {
  const std::vector<ParseCase> cases = {
      {ToolCallFormat::DeepseekV3,
       "Let me look.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get\n```json\n{\"city\": \"Oslo\"}\n```"
       "<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>time\n```json\n{}\n```<｜tool▁call▁end｜>"
       "<｜tool▁calls▁end｜>",
       "Let me look.",
       {{"get", R"({"city":"Oslo"})"}, {"time", "{}"}}},
      {ToolCallFormat::DeepseekV31,
       "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get<｜tool▁sep｜>{\"city\":\"Oslo\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
       "",
       {{"get", R"({"city":"Oslo"})"}}},
      {ToolCallFormat::Qwen,
       "<tool_call>\n{\"name\": \"get\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>\n<tool_call>\n"
       "{\"name\": \"time\", \"arguments\": {}}\n</tool_call>",
       "",
       {{"get", R"({"city":"Oslo"})"}, {"time", "{}"}}},
      {ToolCallFormat::Qwen, "No tools needed: 2 < 3 and <tool is not a call.", "No tools needed: 2 < 3 and <tool is not a call.", {}},
      {ToolCallFormat::Qwen, "<tool_call>not json</tool_call>", "<tool_call>not json</tool_call>", {}},
      {ToolCallFormat::Llama3, "{\"name\": \"get\", \"parameters\": {\"city\": \"Oslo\"}}", "", {{"get", R"({"city":"Oslo"})"}}},
      {ToolCallFormat::Llama3, "<|python_tag|>{\"name\": \"time\", \"parameters\": {}}", "", {{"time", "{}"}}},
      {ToolCallFormat::Llama3, "  Just text {not a call}", "  Just text {not a call}", {}},
      {ToolCallFormat::Llama3, "{\"answer\": 4}", "{\"answer\": 4}", {}},
      {ToolCallFormat::DeepseekV3, "Unfinished <｜tool▁call▁begin｜>function<｜tool▁sep｜>get",
       "Unfinished <｜tool▁call▁begin｜>function<｜tool▁sep｜>get", {}},
  };
  std::mt19937 rng(5);
  for (const auto& c : cases) {
    for (int trial = 0; trial < 60; ++trial) {
      std::vector<size_t> cuts;
      if (trial > 0)
        for (size_t i = 1; i < c.text.size(); ++i)
          if (rng() % (trial < 30 ? 3 : 9) == 0) cuts.push_back(i);
      const auto got = parse(c.format, c.text, cuts);
      ASSERT_EQ(got.content, c.content) << c.text << " trial " << trial;
      ASSERT_EQ(got.calls.size(), c.calls.size()) << c.text << " trial " << trial;
      for (size_t k = 0; k < c.calls.size(); ++k) {
        EXPECT_EQ(got.calls[k].name, c.calls[k].first) << c.text;
        EXPECT_EQ(got.calls[k].arguments, c.calls[k].second) << c.text;
      }
    }
  }
}

std::vector<ToolFunction> weather_tools() {
  return {{"get", "Weather",
           json::parse(R"({"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}},
                           "required":["city"],"additionalProperties":false})")},
          {"time", "", nullptr}};
}

TEST(ToolCallGrammar, AcceptsExactlyWellFormedCallsOfTheGivenFunctions) {
  const auto tools = weather_tools();
  struct Case {
    ToolCallFormat f;
    std::string good, bad_name, bad_args;
  };
  const std::vector<Case> cases = {
      {ToolCallFormat::DeepseekV3,
       "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get\n```json\n{\"city\":\"Oslo\",\"days\":2}\n```"
       "<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
       "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>gets", 
       "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get\n```json\n{\"days\":2}"},
      {ToolCallFormat::DeepseekV31,
       "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>time<｜tool▁sep｜>{}<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
       "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>tim<｜tool▁sep｜>",
       "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get<｜tool▁sep｜>{\"city\":1"},
      {ToolCallFormat::Qwen, "<tool_call>\n{\"name\": \"get\", \"arguments\": {\"city\":\"x\"}}\n</tool_call>",
       "<tool_call>\n{\"name\": \"other\"", "<tool_call>\n{\"name\": \"get\", \"arguments\": {\"town\""},
      {ToolCallFormat::Llama3, "{\"name\": \"time\", \"parameters\": {\"any\": [1]}}", "{\"name\": \"x",
       "{\"name\": \"get\", \"parameters\": []"},
  };
  for (const auto& c : cases) {
    const auto g = tool_call_grammar(c.f, tools);
    JsonAutomaton ok(g);
    EXPECT_TRUE(ok.feed(c.good) && ok.complete()) << c.good;
    JsonAutomaton n(g);
    EXPECT_FALSE(n.feed(c.bad_name)) << c.bad_name;
    JsonAutomaton a(g);
    EXPECT_FALSE(a.feed(c.bad_args)) << c.bad_args;
    // And the parser reads the good call back.
    const auto got = parse(c.f, c.good, {});
    ASSERT_EQ(got.calls.size(), 1u) << c.good;
    EXPECT_TRUE(got.content.empty()) << got.content;
  }
  // Named: only that function.
  const auto only = tool_call_grammar(ToolCallFormat::Qwen, tools, "time");
  JsonAutomaton a(only);
  EXPECT_FALSE(a.feed("<tool_call>\n{\"name\": \"get\""));
  EXPECT_THROW(tool_call_grammar(ToolCallFormat::Qwen, tools, "nope"), SchemaError);
  // Unsupported parameter keywords are refused, naming the tool.
  std::vector<ToolFunction> bad = {{"f", "", json::parse(R"({"type":"object","properties":{"x":{"type":"string","format":"email"}}})")}};
  try {
    tool_call_grammar(ToolCallFormat::Qwen, bad);
    ADD_FAILURE() << "accepted format";
  } catch (const SchemaError& e) {
    EXPECT_NE(std::string(e.what()).find("tools[0].function.parameters.properties.x"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'format'"), std::string::npos) << e.what();
  }
}

// Random byte walks through each forced-call grammar always parse back into a call of a given
// function whose arguments validate.
TEST(ToolCallGrammar, RandomCallsParseBackValid) {
  const auto tools = weather_tools();
  std::mt19937 rng(9);
  for (ToolCallFormat f : {ToolCallFormat::DeepseekV3, ToolCallFormat::DeepseekV31, ToolCallFormat::Qwen,
                           ToolCallFormat::Llama3}) {
    const auto g = tool_call_grammar(f, tools);
    for (int walk = 0; walk < 40; ++walk) {
      JsonAutomaton a(g);
      std::string text;
      for (int steps = 0; steps < 2000; ++steps) {
        std::vector<std::pair<uint8_t, size_t>> next;
        size_t best = SIZE_MAX;
        for (int b = 1; b < 256; ++b) {
          JsonAutomaton t = a;
          if (t.feed(uint8_t(b))) {
            next.emplace_back(uint8_t(b), t.distance());
            best = std::min(best, t.distance());
          }
        }
        if (next.empty()) break;
        std::vector<uint8_t> pick;
        for (auto [b, d] : next)
          if (text.size() < 150 || d == best) pick.push_back(b);
        const uint8_t b = pick[rng() % pick.size()];
        a.feed(b);
        text += char(b);
      }
      ASSERT_TRUE(a.complete()) << text;
      const auto got = parse(f, text, {});
      ASSERT_EQ(got.calls.size(), 1u) << text;
      const auto& call = got.calls[0];
      ASSERT_TRUE(call.name == "get" || call.name == "time") << text;
      const json args = json::parse(call.arguments);
      ASSERT_TRUE(args.is_object()) << text;
      if (call.name == "get") {
        EXPECT_TRUE(args["city"].is_string()) << text;
        for (const auto& [k, v] : args.items()) EXPECT_TRUE(k == "city" || (k == "days" && v.is_number_integer())) << text;
      }
    }
  }
}

TEST(ToolCallTemplates, SystemTextShowsTheFormat) {
  const auto t = tools_system_text(ToolCallFormat::DeepseekV3, weather_tools());
  EXPECT_NE(t.find("### get\nDescription: Weather\nParameters: {"), std::string::npos) << t;
  EXPECT_NE(t.find("<｜tool▁call▁begin｜>function<｜tool▁sep｜>FUNCTION_NAME\n```json\n"), std::string::npos) << t;
}

}  // namespace
}  // namespace tandem
