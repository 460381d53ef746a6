// An ApiServer for the tests: bound to 127.0.0.1 on a free port and run on its own thread.
#pragma once

#include <chrono>
#include <memory>
#include <thread>

#include "runtime/server/api_server.h"
#include "runtime/server/completion_engine.h"

namespace tandem::server::testing {

// Starts the server and waits (at most 5 s) until it accepts.
inline void start_server(std::unique_ptr<ApiServer>& server, std::thread& thread, int& port, CompletionEngine& generator,
                         ApiServerOptions options) {
  server = std::make_unique<ApiServer>(generator, std::move(options));
  port = server->bind("127.0.0.1", 0);
  ApiServer* s = server.get();
  thread = std::thread([s] { s->run(); });
  for (int i = 0; i < 500 && !server->running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

// Stops the server and joins its thread; nothing to do when it never started.
inline void stop_server(std::unique_ptr<ApiServer>& server, std::thread& thread) {
  if (!server) return;
  server->stop();
  if (thread.joinable()) thread.join();
  server.reset();
}

}  // namespace tandem::server::testing
