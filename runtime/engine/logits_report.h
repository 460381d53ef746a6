// What `tandem logits` computes: for each prompt, its tokens, the top logits at every prompt
// position, the full last-position logits, and a greedy continuation. The JSON layout is the one
// ../shared/golden/compare.py reads.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tandem {

class CausalLm;
class Tokenizer;

struct LogitsCase {
  std::string prompt;
  std::vector<int32_t> tokens;
  std::vector<std::vector<std::pair<int32_t, float>>> top;  // per prompt position, best first
  std::vector<float> last_logits;                           // n_vocab values
  std::vector<int32_t> greedy;
};

struct LogitsReport {
  int64_t n_vocab = 0;
  std::vector<LogitsCase> cases;
};

LogitsReport compute_logits_report(CausalLm& lm, const Tokenizer& tok, const std::vector<std::string>& prompts,
                                   int top_k, int greedy_steps);
// The k largest of n logits, ties broken by the smaller id.
std::vector<std::pair<int32_t, float>> top_logits(const float* logits, int64_t n, int k);

// Writes PREFIX.json and PREFIX.caseN.last.f32 (raw little-endian float32) beside it.
void write_logits_report(const LogitsReport& r, const std::string& model_name, const std::string& prefix);
// Reads a JSON array of prompt strings; errors name the file.
std::vector<std::string> read_prompts_file(const std::string& path);

}  // namespace tandem
