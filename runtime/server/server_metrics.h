// What GET /metrics reports, in the Prometheus text exposition format (version 0.0.4):
// requests by endpoint and status, queue depth and running requests (read live), prompt and
// generated token totals, the engine's sequences, KV cache use and prefix reuse, time-to-first-token and generation-time summaries (sum and count),
// and the process's resident memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace tandem::server {

// The engine's side, read live: sequences generating, KV cache use, prefix-cache reuse.
struct EngineGauges {
  int slots = 1;
  int running_sequences = 0;
  int64_t kv_tokens = 0;
  int64_t kv_capacity = 0;
  uint64_t reused_prompt_tokens = 0;
  uint64_t steps = 0;
  int max_sequences_in_step = 0;
};

class ServerMetrics {
 public:
  // One answered request; status 499 for a client that left before its answer.
  void count_request(const std::string& endpoint, int status);
  void add_generation(int64_t prompt_tokens, int64_t generated_tokens, double generation_seconds);
  void add_time_to_first_token(double seconds);
  // Mean generation seconds so far (0 before the first): sizes Retry-After.
  double mean_generation_seconds() const;

  std::string render(size_t queue_depth, size_t running, const EngineGauges* engine = nullptr) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  int64_t prompt_tokens_ = 0;
  int64_t generated_tokens_ = 0;
  double generation_seconds_sum_ = 0;
  uint64_t generation_count_ = 0;
  double ttft_sum_ = 0;
  uint64_t ttft_count_ = 0;
};

// Resident set size of this process in bytes (0 when /proc cannot tell).
int64_t process_resident_bytes();

}  // namespace tandem::server
