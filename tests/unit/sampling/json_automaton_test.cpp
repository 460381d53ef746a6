#include "runtime/sampling/json_automaton.h"

#include <gtest/gtest.h>

#include <random>

#include "runtime/sampling/json_grammar.h"

namespace tandem {
namespace {

using nlohmann::json;

bool accepts(const std::shared_ptr<const JsonGrammar>& g, std::string_view text) {
  JsonAutomaton a(g);
  return a.feed(text);
}

bool complete(const std::shared_ptr<const JsonGrammar>& g, std::string_view text) {
  JsonAutomaton a(g);
  return a.feed(text) && a.complete();
}

std::shared_ptr<const JsonGrammar> schema(const char* text) { return compile_json_schema(json::parse(text)); }

TEST(JsonAutomaton, AnyObjectTakesValidJsonObjectsOnly) {
  const auto g = json_object_grammar();
  for (const char* ok : {"{}", R"({"a":1})", R"({"a": [1, 2.5e-3, "x\n\u00e9"], "b": {"c": null}})",
                         R"({ "k" : true , "l":false })", "{\"\xc3\xa9\":\"\xe2\x82\xac\"}"})
    EXPECT_TRUE(complete(g, ok)) << ok;
  for (const char* prefix : {"{", R"({"a)", R"({"a":)", R"({"a":-)", R"({"a":1.)", R"({"a":"\u00)"})
    EXPECT_TRUE(accepts(g, prefix) && !complete(g, prefix)) << prefix;
  for (const char* bad : {"{\"\xe0\x80\x80\":1}", "{\"\xed\xa0\x80\":1}", "{\"a\":\"\xf4\x90\x80\x80\"}", "[]", "1", R"({a:1})", R"({"a":01})", R"({"a":1,})", R"({"a" 1})", R"({"a":tru})",
                          R"({"a":"\x"})", "{\"a\":\"\x01\"}", R"({"a":1}})", R"( {})", "{\"\xff\":1}",
                          R"({"a":.5})", R"({"a":1e})"})
    EXPECT_FALSE(complete(g, bad)) << bad;
  EXPECT_FALSE(accepts(g, R"({"a":1}})"));
  EXPECT_FALSE(accepts(g, R"({"a":01)"));
}

TEST(JsonAutomaton, SchemaPropertiesRequiredAndAdditional) {
  const auto g = schema(R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},
                             "required":["name"],"additionalProperties":false})");
  EXPECT_TRUE(complete(g, R"({"name":"x"})"));
  EXPECT_TRUE(complete(g, R"({"age":3,"name":"x"})"));
  EXPECT_FALSE(complete(g, R"({"age":3})"));          // name is required
  EXPECT_FALSE(accepts(g, R"({"nam":1)"));            // not a property
  EXPECT_FALSE(accepts(g, R"({"other")"));            // no additional properties
  EXPECT_FALSE(accepts(g, R"({"age":3.5)"));          // integer
  EXPECT_FALSE(accepts(g, R"({"name":"x","name")"));  // duplicate key
  EXPECT_FALSE(accepts(g, R"({"name":"x","age":1,)")); // no property left to add
  EXPECT_FALSE(accepts(g, R"({})"));
}

TEST(JsonAutomaton, EnumConstArraysAndAnyOf) {
  const auto g = schema(R"({"type":"object","properties":{
      "color":{"enum":["red","green",3]},
      "v":{"const":{"k":[1,2]}},
      "tags":{"type":"array","items":{"type":"string"},"minItems":1,"maxItems":2},
      "x":{"anyOf":[{"type":"null"},{"type":"boolean"},{"type":"number"}]}},
      "required":["color","v","tags","x"],"additionalProperties":false})");
  EXPECT_TRUE(complete(g, R"({"color":"red","v":{"k":[1,2]},"tags":["a"],"x":null})"));
  EXPECT_TRUE(complete(g, R"({"x":-2.5,"tags":["a","b"],"v":{"k":[1,2]},"color":3})"));
  EXPECT_FALSE(accepts(g, R"({"color":"blue")"));
  EXPECT_FALSE(accepts(g, R"({"v":{"k":[1,3])"));
  EXPECT_FALSE(accepts(g, R"({"tags":[])"));
  EXPECT_FALSE(accepts(g, R"({"tags":["a","b",)"));
  EXPECT_FALSE(accepts(g, R"({"x":"s")"));
  EXPECT_TRUE(accepts(g, R"({"x":tr)"));
}

TEST(JsonAutomaton, TypeArraysAndTopLevelScalars) {
  const auto g = schema(R"({"type":["integer","null"]})");
  EXPECT_TRUE(complete(g, "12"));
  EXPECT_TRUE(complete(g, "null"));
  EXPECT_FALSE(accepts(g, "1.5"));
  EXPECT_FALSE(accepts(g, "1234567890123456"));  // more integer digits than the limit
  JsonAutomaton a(g);
  ASSERT_TRUE(a.feed("1"));
  EXPECT_TRUE(a.complete());
  EXPECT_TRUE(a.feed("2"));  // a complete number may go on
}

TEST(JsonGrammar, RejectsUnsupportedKeywordsByName) {
  for (const char* s : {R"({"type":"string","pattern":"a+"})", R"({"$ref":"#/x"})", R"({"type":"number","minimum":1})",
                        R"({"type":"string","format":"date"})", R"({"allOf":[{}]})"}) {
    try {
      compile_json_schema(json::parse(s));
      ADD_FAILURE() << "accepted " << s;
    } catch (const SchemaError& e) {
      const std::string key = json::parse(s).items().begin().key() == "type" ? std::next(json::parse(s).items().begin()).key()
                                                                             : json::parse(s).items().begin().key();
      EXPECT_NE(std::string(e.what()).find("'" + key + "'"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(compile_json_schema(json::parse(R"({"type":"object","required":["a"]})")), SchemaError);
  EXPECT_THROW(compile_json_schema(json::parse(R"({"type":"strin"})")), SchemaError);
  EXPECT_THROW(compile_json_schema(json::parse(R"({"type":"array","minItems":3,"maxItems":2})")), SchemaError);
  EXPECT_THROW(compile_json_schema(json::parse("false")), SchemaError);
}

TEST(JsonGrammar, LimitsNestingAndSize) {
  std::string deep = R"({"type":"string"})";
  for (int i = 0; i < kMaxSchemaDepth + 2; ++i) deep = R"({"type":"array","items":)" + deep + "}";
  EXPECT_THROW(compile_json_schema(json::parse(deep)), SchemaError);
  json many = {{"type", "object"}, {"properties", json::object()}};
  for (size_t i = 0; i <= kMaxProperties; ++i) many["properties"]["p" + std::to_string(i)] = {{"type", "null"}};
  EXPECT_THROW(compile_json_schema(many), SchemaError);
}

// Random walks: pick any accepted byte; once the budget nears the distance, only bytes that
// bring the document closer. Every walk must end complete, and the text must parse and match.
TEST(JsonAutomaton, RandomWalksAlwaysCloseIntoValidDocuments) {
  const json sch = json::parse(R"({"type":"object","properties":{
      "id":{"type":"integer"},"name":{"type":"string"},"ok":{"type":"boolean"},
      "kind":{"enum":["a","b"]},"list":{"type":"array","items":{"type":"number"},"maxItems":3},
      "sub":{"type":"object","properties":{"z":{"type":"null"}},"required":["z"],"additionalProperties":false}},
      "required":["id","name","kind","sub"],"additionalProperties":false})");
  const auto g = compile_json_schema(sch);
  std::mt19937 rng(7);
  for (int walk = 0; walk < 200; ++walk) {
    JsonAutomaton a(g);
    std::string text;
    const size_t budget = 60 + walk % 80;
    while (!(a.complete() && a.distance() == 0 && (rng() % 4 == 0 || text.size() >= budget))) {
      std::vector<uint8_t> ok;
      size_t best = SIZE_MAX;
      std::vector<std::pair<uint8_t, size_t>> all;
      for (int b = 1; b < 256; ++b) {
        JsonAutomaton t = a;
        if (t.feed(uint8_t(b))) {
          all.emplace_back(uint8_t(b), t.distance());
          best = std::min(best, t.distance());
        }
      }
      if (all.empty()) {
        ASSERT_TRUE(a.complete()) << "dead end after " << text;
        break;
      }
      const bool closing = text.size() + a.distance() + 4 >= budget;
      for (auto [b, d] : all)
        if (!closing || d == best) ok.push_back(b);
      const uint8_t b = ok[rng() % ok.size()];
      ASSERT_TRUE(a.feed(b));
      text += char(b);
      ASSERT_LT(text.size(), budget + 200) << text;
    }
    json doc;
    ASSERT_NO_THROW(doc = json::parse(text)) << text;
    ASSERT_TRUE(doc.is_object());
    for (const char* k : {"id", "name", "kind", "sub"}) EXPECT_TRUE(doc.contains(k)) << text;
    EXPECT_TRUE(doc["id"].is_number_integer()) << text;
    EXPECT_TRUE(doc["kind"] == "a" || doc["kind"] == "b") << text;
    EXPECT_EQ(doc["sub"], json::parse(R"({"z":null})")) << text;
    if (doc.contains("list")) {
      EXPECT_LE(doc["list"].size(), 3u) << text;
    }
    for (const auto& [k, v] : doc.items())
      EXPECT_TRUE(sch["properties"].contains(k)) << k << " in " << text;
  }
}

}  // namespace
}  // namespace tandem
