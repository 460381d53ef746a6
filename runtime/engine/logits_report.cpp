#include "runtime/engine/logits_report.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/core/error.h"
#include "runtime/model/causal_lm.h"
#include "runtime/tokenizer/tokenizer.h"

namespace tandem {

std::vector<std::pair<int32_t, float>> top_logits(const float* logits, int64_t n, int k) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[size_t(i)] = int32_t(i);
  const int64_t kk = std::min<int64_t>(k, n);
  auto better = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(ids.begin(), ids.begin() + kk, ids.end(), better);
  std::vector<std::pair<int32_t, float>> out;
  for (int64_t i = 0; i < kk; ++i) out.emplace_back(ids[size_t(i)], logits[ids[size_t(i)]]);
  return out;
}

LogitsReport compute_logits_report(CausalLm& lm, const Tokenizer& tok, const std::vector<std::string>& prompts,
                                   int top_k, int greedy_steps) {
  LogitsReport report;
  report.n_vocab = lm.n_vocab();
  const int64_t nv = lm.n_vocab();
  for (const std::string& prompt : prompts) {
    LogitsCase c;
    c.prompt = prompt;
    const auto ids = tok.encode(prompt, /*add_special=*/true, /*parse_special=*/false);
    c.tokens.assign(ids.begin(), ids.end());
    if (c.tokens.empty()) fail("prompt '", prompt, "' encodes to no tokens");
    lm.reset();
    std::vector<float> logits;
    lm.forward(c.tokens, logits);
    for (size_t p = 0; p < c.tokens.size(); ++p) c.top.push_back(top_logits(logits.data() + p * size_t(nv), nv, top_k));
    c.last_logits.assign(logits.end() - nv, logits.end());
    std::vector<float> step(c.last_logits);
    for (int g = 0; g < greedy_steps; ++g) {
      const int32_t next = top_logits(step.data(), nv, 1)[0].first;
      c.greedy.push_back(next);
      if (g + 1 < greedy_steps) {
        const int32_t one[1] = {next};
        lm.forward(one, step);
      }
    }
    report.cases.push_back(std::move(c));
  }
  return report;
}

void write_logits_report(const LogitsReport& r, const std::string& model_name, const std::string& prefix) {
  namespace fs = std::filesystem;
  const fs::path json_path = prefix + ".json";
  if (json_path.has_parent_path()) fs::create_directories(json_path.parent_path());
  nlohmann::json doc;
  doc["model"] = model_name;
  doc["n_vocab"] = r.n_vocab;
  doc["cases"] = nlohmann::json::array();
  for (size_t i = 0; i < r.cases.size(); ++i) {
    const LogitsCase& c = r.cases[i];
    const std::string bin = prefix + ".case" + std::to_string(i) + ".last.f32";
    std::ofstream out(bin, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(c.last_logits.data()), std::streamsize(c.last_logits.size() * 4));
    if (!out) fail(bin, ": cannot write");
    nlohmann::json jc;
    jc["prompt"] = c.prompt;
    jc["tokens"] = c.tokens;
    nlohmann::json top = nlohmann::json::array();
    for (const auto& pos : c.top) {
      nlohmann::json row = nlohmann::json::array();
      for (const auto& [id, v] : pos) row.push_back({id, v});
      top.push_back(std::move(row));
    }
    jc["top"] = std::move(top);
    jc["last_logits_file"] = fs::path(bin).filename().string();
    jc["greedy"] = c.greedy;
    doc["cases"].push_back(std::move(jc));
  }
  std::ofstream f(json_path);
  if (!f) fail(json_path.string(), ": cannot write");
  f << doc.dump() << "\n";
}

std::vector<std::string> read_prompts_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) fail(path, ": cannot open prompts file");
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": not valid JSON: ", e.what());
  }
  if (!doc.is_array()) fail(path, ": expected a JSON array of prompt strings");
  std::vector<std::string> prompts;
  for (size_t i = 0; i < doc.size(); ++i) {
    if (!doc[i].is_string()) fail(path, ": element ", i, " is not a string");
    prompts.push_back(doc[i].get<std::string>());
  }
  return prompts;
}

}  // namespace tandem
