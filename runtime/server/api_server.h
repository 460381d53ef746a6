// The OpenAI- and Ollama-compatible HTTP server over one CompletionEngine (Generator, or
// BatchGenerator for --parallel N):
//   POST /v1/chat/completions, POST /v1/completions (also without the /v1 prefix),
//   GET /v1/models, GET /v1/models/{id}, GET /health, GET /metrics (Prometheus text);
//   Ollama: GET|HEAD /, GET /api/version, GET|HEAD /api/tags, POST /api/show, GET /api/ps,
//   POST /api/chat, POST /api/generate (ollama_api.h, ollama_request.h).
// OpenAI streams are Server-Sent Events ("data: {chunk}\n\n" ... "data: [DONE]\n\n"), Ollama
// streams NDJSON. OpenAI errors are OpenAI-style error objects, Ollama's {"error": "message"}.
// A chat reply's DeepSeek-R1 style <think>...</think> goes to reasoning_content (Ollama:
// message.thinking), split as it streams (ReasoningSplitter); a request that offers tools has
// the calls taken out of the reply in the model family's format (ToolCallParser) and sent as
// tool_calls (streamed: delta.tool_calls).
//
// The HTTP layer is HttpServer (Boost.Beast, one event-loop thread). /health, /metrics, the
// model list and every refusal are answered on the loop at once, whatever generation is doing.
// A completion request takes a place in a bounded first-come-first-served line (--queue; when
// it is full: 503 with Retry-After), is parsed on its own thread, and generates when its turn
// comes (the engine's parallel() run at once); a client that leaves while waiting is dropped
// before any prefill, one that leaves while generating stops its generation. RequestGuard checks Host, Origin (CORS), the API key
// and the body's media type first.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "runtime/server/ollama_api.h"
#include "runtime/server/request_guard.h"

namespace tandem::server {

class CompletionEngine;

struct ApiServerOptions {
  std::string model_name = "tandem";           // the id /v1/models lists and responses carry
  // The model as the Ollama endpoints describe it; an empty name: ollama_model_named(model_name).
  OllamaModel ollama_model;
  size_t max_body_bytes = size_t(16) << 20;    // larger bodies get 413, whatever their encoding
  size_t queue = 16;                           // completion requests that may wait while the running ones run
  RequestGuardOptions guard;                   // API key, CORS origins, extra Host names
  bool insecure_no_api_key = false;            // allow a non-loopback host without an API key
  // A chat reply's <think>...</think> goes to reasoning_content / message.thinking (false:
  // --reasoning-format none, it stays inline); a request's reasoning_format overrides it.
  bool split_reasoning = true;
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds idle_timeout{30000};
  std::function<void(const std::string&)> log;  // one line per request; empty: quiet
};

class ApiServer {
 public:
  ApiServer(CompletionEngine& generator, ApiServerOptions options);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds host:port (port 0: any free port) exclusively and returns the port. Error when it
  // cannot (naming the port), and for a host reachable from other machines without an API key
  // (unless insecure_no_api_key).
  int bind(const std::string& host, int port);
  // Serves until stop() or the end of shutdown(); call after bind(), typically on its own thread.
  void run();
  // Graceful stop, returns at once (any thread): no new connections or requests (503), waiting
  // requests get 503, the running one may finish within `grace`, then it is cut; run() returns
  // when all is done.
  void shutdown(std::chrono::milliseconds grace);
  // Stops at once: the running generation is cut, every connection closed. Any thread.
  void stop();
  bool running() const;

  size_t queue_depth() const;  // waiting completion requests (tests, /metrics)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tandem::server
