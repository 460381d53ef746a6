// Times TokenConstraint::allowed (the token mask of constrained sampling) on a real vocabulary:
//   constraint_bench VOCAB.gguf [TOKENS]
// Generates TOKENS tokens (default 400) per grammar by drawing uniformly from the allowed tokens
// (a worst case for the mask: every kind of state is visited, strings go on long), with a budget
// so documents close, and prints the mask time per token (mean, median, p99, max) overall and
// inside strings, plus the vocabulary build time.
#include <algorithm>
#include <cstdlib>
#include <memory>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "runtime/chat/tool_calls.h"
#include "runtime/gguf/gguf_file.h"
#include "runtime/sampling/json_grammar.h"
#include "runtime/sampling/token_constraint.h"
#include "runtime/tokenizer/tokenizer.h"

using namespace tandem;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

void report(const char* what, std::vector<double> v) {
  if (v.empty()) return;
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  std::printf("  %-22s n=%5zu  mean %.3f ms  median %.3f ms  p99 %.3f ms  max %.3f ms\n", what, v.size(), sum / double(v.size()),
              v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 99 / 100)], v.back());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s VOCAB.gguf [TOKENS]\n", argv[0]);
    return 2;
  }
  const int tokens = argc > 2 ? std::atoi(argv[2]) : 400;
  const std::unique_ptr<GgufFile> file = GgufFile::open(argv[1]);
  const Tokenizer tok = Tokenizer::from_gguf(*file);
  const BpeVocab& v = tok.vocab();
  auto t0 = Clock::now();
  std::vector<std::string> bytes(v.size());
  std::vector<uint8_t> added(v.size(), 0), excluded(v.size(), 0);
  const TokenId eos = v.eos();
  for (size_t i = 0; i < v.size(); ++i) {
    const TokenType t = v.type(TokenId(i));
    if (t == TokenType::Unused || TokenId(i) == eos) {
      excluded[i] = 1;
      continue;
    }
    added[i] = t == TokenType::Control || t == TokenType::UserDefined || t == TokenType::Unknown;
    bytes[i] = tok.piece(TokenId(i), true);
  }
  const auto vocab = std::make_shared<const ConstraintVocab>(std::move(bytes), std::move(added), std::move(excluded));
  std::printf("%s: %zu tokens (%zu plain, %zu added); vocabulary and tries built in %.1f ms\n", argv[1], v.size(),
              vocab->plain().size(), vocab->added().size(), ms_since(t0));

  const nlohmann::json schema = nlohmann::json::parse(R"({"type":"object","properties":{
      "name":{"type":"string"},"age":{"type":"integer"},"color":{"enum":["red","green","blue"]},
      "tags":{"type":"array","items":{"type":"string"}},"ok":{"type":"boolean"}},
      "required":["name","age","color","tags"],"additionalProperties":false})");
  const std::vector<ToolFunction> tools = {
      {"get_weather", "", nlohmann::json::parse(R"({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]})")}};
  struct Case {
    const char* name;
    std::shared_ptr<const JsonGrammar> g;
  };
  const Case cases[] = {{"json_object", json_object_grammar()},
                        {"json_schema", compile_json_schema(schema)},
                        {"forced call (deepseek-v3)", tool_call_grammar(ToolCallFormat::DeepseekV3, tools)}};
  std::mt19937 rng(1);
  const std::vector<int32_t> stops = {eos};
  for (const auto& c : cases) {
    std::vector<double> all, in_string;
    std::vector<uint8_t> mask;
    for (int doc = 0; (int)all.size() < tokens; ++doc) {
      TokenConstraint tc(vocab, c.g);
      const int budget = 200;
      for (int n = 0; n < budget; ++n) {
        const bool str = tc.automaton().in_plain_string();
        const auto t = Clock::now();
        const size_t count = tc.allowed(stops, budget - n, mask);
        const double ms = ms_since(t);
        all.push_back(ms);
        if (str) in_string.push_back(ms);
        if (count == 0) break;
        std::vector<int32_t> ok;
        for (size_t i = 0; i < mask.size(); ++i)
          if (mask[i]) ok.push_back(int32_t(i));
        const int32_t id = ok[rng() % ok.size()];
        if (id == eos || !tc.accept(id) || tc.closed()) break;
      }
    }
    std::printf(" %s:\n", c.name);
    report("every token", all);
    report("inside strings", in_string);
  }
  return 0;
}
