// Fuzzes the request-body parsers of the Ollama endpoints (runtime/server/ollama_request.h).
// Input layout: byte 0 picks the endpoint (0: /api/chat, 1: /api/generate, 2: /api/show); the
// rest is the body. Checked: a body is either accepted with a model name and every sampling
// field within its range, or refused with a 400 whose message names the field.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "runtime/server/ollama_request.h"
#include "runtime/server/request_error.h"

using namespace tandem::server;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void check_accepted(const OllamaRequest& o) {
  check(!o.model.empty());
  if (o.load_only) return;
  const CompletionRequest& r = o.request;
  if (r.kind == RequestKind::Chat) check(!r.messages.empty());
  if (r.max_tokens) check(*r.max_tokens >= 1);
  check(r.stop.size() <= kMaxStopStrings);
  for (const auto& s : r.stop) check(!s.empty());
  const SamplingFields& s = r.sampling;
  if (s.temperature) check(*s.temperature >= 0.0f && *s.temperature <= 2.0f);
  if (s.top_p) check(*s.top_p > 0.0f && *s.top_p <= 1.0f);
  if (s.top_k) check(*s.top_k >= 0);
  if (s.min_p) check(*s.min_p >= 0.0f && *s.min_p < 1.0f);
  if (s.repeat_penalty) check(*s.repeat_penalty > 0.0f);
  if (o.think) check(r.enable_thinking == o.think);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int endpoint = data[0] % 3;
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    if (endpoint == 2)
      check(!parse_ollama_show_request(body).empty());
    else
      check_accepted(endpoint == 0 ? parse_ollama_chat_request(body) : parse_ollama_generate_request(body));
  } catch (const RequestError& e) {
    check(e.status() == 400);
    const std::string msg = e.what();
    check(!msg.empty());
    if (!e.param().empty()) check(msg.find(e.param()) != std::string::npos);
  }
  return 0;
}
