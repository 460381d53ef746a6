// The OpenAI-compatible HTTP server over one Generator:
//   POST /v1/chat/completions, POST /v1/completions (also without the /v1 prefix),
//   GET /v1/models, GET /health.
// Streaming responses are Server-Sent Events ("data: {chunk}\n\n" ... "data: [DONE]\n\n").
// Every error is an OpenAI-style JSON error object. Requests are served on a thread pool but
// generate one at a time (the Generator's mutex); a client that disconnects stops its
// generation. cpp-httplib stays out of this header.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace tandem::server {

class Generator;

struct ApiServerOptions {
  std::string model_name = "tandem";           // the id /v1/models lists and responses carry
  size_t max_body_bytes = size_t(16) << 20;    // larger bodies get 413
  std::function<void(const std::string&)> log;  // one line per request; empty: quiet
};

class ApiServer {
 public:
  ApiServer(Generator& generator, ApiServerOptions options);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds host:port (port 0: any free port) and returns the port. Error when it cannot.
  // Sets SIGPIPE to ignored for the process (cpp-httplib's writes would raise it).
  int bind(const std::string& host, int port);
  // Serves until stop(); call after bind(), typically on its own thread.
  void run();
  // Makes run() return; safe from any thread (and from a signal-watching thread).
  void stop();
  bool running() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tandem::server
