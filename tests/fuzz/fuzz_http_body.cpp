// Fuzzes the request-body parser of the OpenAI-compatible server (runtime/server) and the
// response pieces a parsed request flows into. Input layout: byte 0 bit 0 picks the endpoint
// (0: /v1/chat/completions, 1: /v1/completions); the rest is the body.
// Checked: a body is either accepted with every field within its documented range, or refused
// with a 400 whose message names the field; SSE events are single lines; stop strings cut the
// text right before a stop string and never let one through.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "runtime/server/completion_request.h"
#include "runtime/server/openai_response.h"
#include "runtime/server/request_error.h"
#include "runtime/server/stop_string_matcher.h"

using namespace tandem;
using namespace tandem::server;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void check_accepted(const CompletionRequest& r) {
  if (r.kind == RequestKind::Chat) {
    check(!r.messages.empty());
    for (const auto& m : r.messages) check(m.role == "system" || m.role == "user" || m.role == "assistant" || m.role == "tool");
  } else if (const auto* ids = std::get_if<std::vector<int64_t>>(&r.prompt)) {
    check(!ids->empty());
    for (int64_t id : *ids) check(id >= 0);
  }
  if (r.max_tokens) check(*r.max_tokens >= 1);
  check(r.stop.size() <= kMaxStopStrings);
  for (const auto& s : r.stop) check(!s.empty());
  const SamplingFields& s = r.sampling;
  if (s.temperature) check(*s.temperature >= 0.0f && *s.temperature <= 2.0f);
  if (s.top_p) check(*s.top_p > 0.0f && *s.top_p <= 1.0f);
  if (s.top_k) check(*s.top_k >= 0);
  if (s.min_p) check(*s.min_p >= 0.0f && *s.min_p < 1.0f);
  if (s.presence_penalty) check(*s.presence_penalty >= -2.0f && *s.presence_penalty <= 2.0f);
  if (s.frequency_penalty) check(*s.frequency_penalty >= -2.0f && *s.frequency_penalty <= 2.0f);
  if (s.repeat_penalty) check(*s.repeat_penalty > 0.0f);

  // The text a reply could be: what the client sent, which may be any bytes.
  std::string text;
  if (r.kind == RequestKind::Chat)
    text = r.messages.back().content;
  else if (const auto* p = std::get_if<std::string>(&r.prompt))
    text = *p;

  // One SSE event is one line, whatever bytes the text holds.
  const ResponseMeta meta{new_response_id(true), 0, r.model};
  const std::string event = sse_event(chat_chunk_json(meta, {{"content", text}}));
  check(event.starts_with("data: ") && event.find('\n') == event.size() - 2);
  check(!to_text(text_completion_json(meta, text, FinishReason::Stop, Usage{1, 2})).empty());

  // Stop strings over the text fed in 3-byte pieces: the output is a prefix of the text holding
  // no stop string; it ends right before one exactly when the matcher stopped.
  StopStringMatcher m(r.stop);
  std::string out;
  for (size_t at = 0; at < text.size(); at += 3) out += m.push(std::string_view(text).substr(at, 3));
  out += m.finish();
  check(text.starts_with(out));
  bool stop_follows = false;
  for (const auto& s : r.stop) {
    check(out.find(s) == std::string::npos);
    stop_follows |= text.compare(out.size(), s.size(), s) == 0;
  }
  check(m.stopped() == stop_follows);
  if (!m.stopped()) check(out == text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool text_endpoint = data[0] & 1;
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    const CompletionRequest r =
        text_endpoint ? parse_text_completion_request(body) : parse_chat_completion_request(body);
    check_accepted(r);
  } catch (const RequestError& e) {
    check(e.status() == 400);
    check(e.type() == "invalid_request_error");
    const std::string msg = e.what();
    check(!msg.empty());
    if (!e.param().empty()) check(msg.find(e.param()) != std::string::npos);  // the message names the field
    check(!to_text(e.to_json()).empty());
  }
  return 0;
}
