#include "runtime/server/server_metrics.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace tandem::server {
namespace {

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// Label values escape backslash, quote and newline.
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void family(std::string& out, const char* name, const char* type, const char* help) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

void ServerMetrics::count_request(const std::string& endpoint, int status) {
  std::lock_guard lock(mutex_);
  ++requests_[{endpoint, status}];
}

void ServerMetrics::add_generation(int64_t prompt_tokens, int64_t generated_tokens, double generation_seconds) {
  std::lock_guard lock(mutex_);
  prompt_tokens_ += prompt_tokens;
  generated_tokens_ += generated_tokens;
  generation_seconds_sum_ += generation_seconds;
  ++generation_count_;
}

void ServerMetrics::add_time_to_first_token(double seconds) {
  std::lock_guard lock(mutex_);
  ttft_sum_ += seconds;
  ++ttft_count_;
}

double ServerMetrics::mean_generation_seconds() const {
  std::lock_guard lock(mutex_);
  return generation_count_ ? generation_seconds_sum_ / double(generation_count_) : 0.0;
}

std::string ServerMetrics::render(size_t queue_depth, size_t running, const EngineGauges* engine) const {
  std::lock_guard lock(mutex_);
  std::string out;
  family(out, "tandem_requests_total", "counter", "HTTP requests answered, by endpoint and status (499: client left)");
  for (const auto& [key, n] : requests_)
    out += "tandem_requests_total{endpoint=\"" + label(key.first) + "\",status=\"" + std::to_string(key.second) +
           "\"} " + std::to_string(n) + "\n";
  family(out, "tandem_queue_depth", "gauge", "completion requests waiting for the generator");
  out += "tandem_queue_depth " + std::to_string(queue_depth) + "\n";
  family(out, "tandem_running_requests", "gauge", "completion requests generating now");
  out += "tandem_running_requests " + std::to_string(running) + "\n";
  if (engine) {
    const EngineGauges& e = *engine;
    family(out, "tandem_parallel_slots", "gauge", "sequences that may generate together (tandem serve --parallel)");
    out += "tandem_parallel_slots " + std::to_string(e.slots) + "\n";
    family(out, "tandem_running_sequences", "gauge", "sequences in the batch now (prefilling or decoding)");
    out += "tandem_running_sequences " + std::to_string(e.running_sequences) + "\n";
    family(out, "tandem_kv_cache_tokens", "gauge", "tokens held in the KV caches of all slots");
    out += "tandem_kv_cache_tokens " + std::to_string(e.kv_tokens) + "\n";
    family(out, "tandem_kv_cache_capacity_tokens", "gauge", "KV cache rows of all slots (slots x context)");
    out += "tandem_kv_cache_capacity_tokens " + std::to_string(e.kv_capacity) + "\n";
    family(out, "tandem_prompt_tokens_reused_total", "counter", "prompt tokens taken from the prefix cache, not fed");
    out += "tandem_prompt_tokens_reused_total " + std::to_string(e.reused_prompt_tokens) + "\n";
    family(out, "tandem_batch_steps_total", "counter", "model passes of the batch scheduler");
    out += "tandem_batch_steps_total " + std::to_string(e.steps) + "\n";
    family(out, "tandem_batch_max_sequences", "gauge", "the most sequences one model pass carried");
    out += "tandem_batch_max_sequences " + std::to_string(e.max_sequences_in_step) + "\n";
  }
  family(out, "tandem_prompt_tokens_total", "counter", "prompt tokens of finished generations");
  out += "tandem_prompt_tokens_total " + std::to_string(prompt_tokens_) + "\n";
  family(out, "tandem_generated_tokens_total", "counter", "tokens generated");
  out += "tandem_generated_tokens_total " + std::to_string(generated_tokens_) + "\n";
  family(out, "tandem_time_to_first_token_seconds", "summary", "request arrival to its first generated token");
  out += "tandem_time_to_first_token_seconds_sum " + number(ttft_sum_) + "\n";
  out += "tandem_time_to_first_token_seconds_count " + std::to_string(ttft_count_) + "\n";
  family(out, "tandem_generation_seconds", "summary", "time a generation held the model (prefill and decode)");
  out += "tandem_generation_seconds_sum " + number(generation_seconds_sum_) + "\n";
  out += "tandem_generation_seconds_count " + std::to_string(generation_count_) + "\n";
  family(out, "process_resident_memory_bytes", "gauge", "resident memory of the server process");
  out += "process_resident_memory_bytes " + std::to_string(process_resident_bytes()) + "\n";
  return out;
}

int64_t process_resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * int64_t(sysconf(_SC_PAGESIZE));
}

}  // namespace tandem::server
