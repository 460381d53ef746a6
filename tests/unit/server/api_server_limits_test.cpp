// The server under load and at its edges, end to end on a generated tiny model: a bounded queue
// (503 + Retry-After), a queued client that leaves costs no prefill, /health and /metrics answer
// while a generation runs, the API key / CORS / Host / media-type checks, and graceful shutdown.
// Each test starts its own server on an ephemeral loopback port.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/core/error.h"
#include "runtime/engine/model_loader.h"
#include "runtime/server/api_server.h"
#include "runtime/server/generator.h"
#include "tests/unit/server/test_http_client.h"
#include "tools/modelgen/deepseek2_generator.h"

namespace tandem::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using testing::kSlowdown;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

std::string long_chat(bool stream) {
  return json{{"messages", json::array({{{"role", "user"}, {"content", "Go on forever"}}})},
              {"max_tokens", 1900},
              {"temperature", 1.0},
              {"seed", 3},
              {"stream", stream}}
      .dump();
}

class ApiServerLimitsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_path_ =
        (fs::temp_directory_path() / ("tandem_api_limits_test_" + std::to_string(getpid()) + ".gguf")).string();
    modelgen::Deepseek2Options o = modelgen::deepseek2_preset("tiny-v3");
    o.types.set_all(GgmlType::Q8_0);
    o.block_pool = 0;
    o.seed = 11;
    modelgen::generate_deepseek2(o, model_path_);
    ModelLoadOptions lo;
    lo.path = ComputePath::Cpu;
    lo.threads = 1;
    served_ = std::make_unique<LoadedModel>(load_model(model_path_, lo));
    std::string warning;
    GeneratorOptions go;
    go.context_limit = 2048;
    generator_ = std::make_unique<Generator>(*served_->lm, *served_->tokenizer,
                                             ChatTemplate::for_model(*served_->file, *served_->tokenizer, "", &warning), go);
  }
  static void TearDownTestSuite() {
    generator_.reset();
    served_.reset();
    fs::remove(model_path_);
  }
  void TearDown() override { stop(); }

  void start(ApiServerOptions o = {}) {
    o.log = [this](const std::string& line) {
      std::lock_guard lock(log_mutex_);
      log_.push_back(line);
    };
    server_ = std::make_unique<ApiServer>(*generator_, o);
    port_ = server_->bind("127.0.0.1", 0);
    thread_ = std::thread([this] { server_->run(); });
    for (int i = 0; i < 500 && !server_->running(); ++i) std::this_thread::sleep_for(milliseconds(2));
    ASSERT_TRUE(server_->running());
  }
  void stop() {
    if (!server_) return;
    server_->stop();
    if (thread_.joinable()) thread_.join();
    for (auto& t : clients_) t.join();
    clients_.clear();
    server_.reset();
  }
  bool logged(const std::string& what) {
    std::lock_guard lock(log_mutex_);
    for (const auto& l : log_)
      if (l.find(what) != std::string::npos) return true;
    return false;
  }
  // A long streamed generation on its own thread; running() once its first content arrived.
  struct LongStream {
    std::atomic<bool> first{false}, quit{false}, done{false};
    testing::TestResponse response;
  };
  std::shared_ptr<LongStream> long_stream(std::vector<std::pair<std::string, std::string>> headers = {}) {
    auto s = std::make_shared<LongStream>();
    const int port = port_;
    clients_.emplace_back([s, port, headers] {
      s->response = testing::http_request(port, "POST", "/v1/chat/completions", long_chat(true), headers,
                                          milliseconds(60000), [s](const std::string& raw) {
                                            if (raw.find("\"content\":\"", raw.find("\"role\"")) != std::string::npos)
                                              s->first = true;
                                            return !s->quit.load();
                                          });
      s->done = true;
    });
    for (int i = 0; i < 3000 && !s->first && !s->done; ++i) std::this_thread::sleep_for(milliseconds(2));
    return s;
  }

  static inline std::string model_path_;
  static inline std::unique_ptr<LoadedModel> served_;
  static inline std::unique_ptr<Generator> generator_;
  std::unique_ptr<ApiServer> server_;
  int port_ = 0;
  std::thread thread_;
  std::vector<std::thread> clients_;
  std::mutex log_mutex_;
  std::vector<std::string> log_;
};

TEST_F(ApiServerLimitsTest, FullQueueIs503WithRetryAfterAndLeaversCostNoPrefill) {
  ApiServerOptions o;
  o.queue = 1;
  start(o);
  auto a = long_stream();
  ASSERT_TRUE(a->first && !a->done) << "the long generation ended early";

  // While it generates, /health and /metrics answer at once.
  for (const char* path : {"/health", "/metrics"}) {
    const auto t0 = Clock::now();
    const auto r = testing::http_request(port_, "GET", path, "", {}, milliseconds(5000));
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r.status, 200);
    EXPECT_LT(ms_since(t0), 100.0 * kSlowdown) << path;
  }

  // B waits in the line (one place), then leaves; C arrives while B waits: 503.
  const uint64_t prefills = generator_->prefills();
  std::atomic<bool> b_done{false};
  clients_.emplace_back([&, port = port_] {
    testing::http_request(port, "POST", "/v1/chat/completions", long_chat(false), {}, milliseconds(1500));
    b_done = true;
  });
  for (int i = 0; i < 1000 && server_->queue_depth() < 1; ++i) std::this_thread::sleep_for(milliseconds(2));
  ASSERT_EQ(server_->queue_depth(), 1u);
  const auto c = testing::http_request(port_, "POST", "/v1/completions", R"({"prompt":"x","max_tokens":2})", {},
                                       milliseconds(5000));
  ASSERT_TRUE(c);
  EXPECT_EQ(c.status, 503);
  EXPECT_FALSE(c.header("retry-after").empty());
  EXPECT_EQ(json::parse(c.body)["error"]["code"], "queue_full");

  for (int i = 0; i < 3000 && !b_done; ++i) std::this_thread::sleep_for(milliseconds(2));
  for (int i = 0; i < 500 && server_->queue_depth() > 0; ++i) std::this_thread::sleep_for(milliseconds(2));
  EXPECT_EQ(server_->queue_depth(), 0u);
  EXPECT_FALSE(a->done) << "A should still be generating for this test to mean anything";
  a->quit = true;
  for (int i = 0; i < 3000 && !logged("client gone: stopped"); ++i) std::this_thread::sleep_for(milliseconds(2));
  std::this_thread::sleep_for(milliseconds(100));  // B's turn would have come by now
  EXPECT_EQ(generator_->prefills(), prefills) << "the queued client that left was prefilled";
  EXPECT_TRUE(logged("client gone while queued"));

  const auto m = testing::http_request(port_, "GET", "/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(m.header("content-type"), "text/plain; version=0.0.4");
  EXPECT_NE(m.body.find("tandem_requests_total{endpoint=\"/v1/completions\",status=\"503\"} 1\n"), std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("tandem_requests_total{endpoint=\"/v1/chat/completions\",status=\"499\"} 1\n"),
            std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("tandem_generated_tokens_total "), std::string::npos);
  EXPECT_NE(m.body.find("tandem_time_to_first_token_seconds_count 1\n"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("process_resident_memory_bytes "), std::string::npos);
}

TEST_F(ApiServerLimitsTest, ApiKeyCorsHostAndMediaType) {
  ApiServerOptions o;
  o.guard.api_key = "k-123456";
  o.guard.cors_origins = {"https://app.example"};
  start(o);
  const std::string body = R"({"prompt":"Hi","max_tokens":2})";
  auto none = testing::http_request(port_, "POST", "/v1/completions", body);
  ASSERT_TRUE(none);
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(json::parse(none.body)["error"]["code"], "invalid_api_key");
  auto wrong = testing::http_request(port_, "POST", "/v1/completions", body, {{"Authorization", "Bearer guess-me"}});
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(wrong.body.find("guess-me"), std::string::npos);
  auto bearer = testing::http_request(port_, "POST", "/v1/completions", body, {{"Authorization", "Bearer k-123456"}});
  EXPECT_EQ(bearer.status, 200) << bearer.body;
  auto header = testing::http_request(port_, "GET", "/v1/models", "", {{"x-api-key", "k-123456"}});
  EXPECT_EQ(header.status, 200);
  EXPECT_EQ(testing::http_request(port_, "GET", "/health").status, 200);  // probes need no key

  // CORS: the allowed origin's preflight and its answers carry the headers; others are refused.
  auto pre = testing::http_request(port_, "OPTIONS", "/v1/chat/completions", "",
                                   {{"Origin", "https://app.example"},
                                    {"Access-Control-Request-Method", "POST"},
                                    {"Access-Control-Request-Headers", "authorization,content-type"}});
  ASSERT_TRUE(pre);
  EXPECT_EQ(pre.status, 204);
  EXPECT_EQ(pre.header("access-control-allow-origin"), "https://app.example");
  EXPECT_NE(pre.header("access-control-allow-methods").find("POST"), std::string::npos);
  EXPECT_EQ(pre.header("access-control-allow-headers"), "authorization,content-type");
  auto local = testing::http_request(port_, "OPTIONS", "/v1/models", "", {{"Origin", "http://localhost:3000"}});
  EXPECT_EQ(local.status, 204);
  EXPECT_EQ(local.header("access-control-allow-origin"), "http://localhost:3000");
  auto read = testing::http_request(port_, "GET", "/v1/models", "",
                                    {{"Origin", "https://app.example"}, {"x-api-key", "k-123456"}});
  EXPECT_EQ(read.status, 200);
  EXPECT_EQ(read.header("access-control-allow-origin"), "https://app.example");
  auto evil = testing::http_request(port_, "OPTIONS", "/v1/chat/completions", "", {{"Origin", "https://evil.example"}});
  EXPECT_EQ(evil.status, 403);
  EXPECT_FALSE(evil.has_header("access-control-allow-origin"));
  auto evil_post = testing::http_request(port_, "POST", "/v1/completions", body,
                                         {{"Origin", "https://evil.example"}, {"x-api-key", "k-123456"}});
  EXPECT_EQ(evil_post.status, 403);
  EXPECT_FALSE(evil_post.has_header("access-control-allow-origin"));

  // A text/plain POST (no preflight in browsers) does no work.
  const uint64_t prefills = generator_->prefills();
  auto plain = testing::http_request(port_, "POST", "/v1/completions", body,
                                     {{"Content-Type", "text/plain"}, {"x-api-key", "k-123456"}});
  EXPECT_EQ(plain.status, 415);
  EXPECT_EQ(generator_->prefills(), prefills);

  // DNS rebinding: a foreign Host header is refused.
  auto rebound = testing::http_request(port_, "GET", "/v1/models", "", {{"Host", "evil.example:8080"}, {"x-api-key", "k-123456"}});
  EXPECT_EQ(rebound.status, 403);
  EXPECT_EQ(json::parse(rebound.body)["error"]["code"], "host_not_allowed");
}

TEST_F(ApiServerLimitsTest, KeepAliveRepliesComeAtOnce) {
  start();
  const int fd = testing::connect_loopback(port_);
  ASSERT_GE(fd, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::vector<double> ms;
  for (int i = 0; i < 40; ++i) {
    const auto t0 = Clock::now();
    ASSERT_TRUE(testing::send_all(fd, std::string("GET ") + (i % 2 ? "/v1/models" : "/health") +
                                          " HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    testing::TestResponse r;
    char buf[4096];
    for (ssize_t n; !r.complete && (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) {
      r.raw.append(buf, size_t(n));
      testing::parse_response(r, false);
    }
    ASSERT_EQ(r.status, 200) << r.raw;
    ms.push_back(ms_since(t0));
  }
  ::close(fd);
  std::sort(ms.begin(), ms.end());
  EXPECT_LT(ms[ms.size() / 2], 5.0 * kSlowdown);  // Nagle would make each ~40 ms
}

TEST_F(ApiServerLimitsTest, OversizedBodiesAre413InTheOpenAiShape) {
  ApiServerOptions o;
  o.max_body_bytes = 4096;
  start(o);
  const std::string big = R"({"prompt":")" + std::string(8000, 'a') + R"("})";
  const auto r = testing::http_request(port_, "POST", "/v1/completions", big);
  ASSERT_TRUE(r);
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "payload_too_large");
  // Chunked: the same limit.
  const int fd = testing::connect_loopback(port_);
  ASSERT_GE(fd, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string req = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 4; ++i) req += "800\r\n" + std::string(0x800, 'a') + "\r\n";
  testing::send_all(fd, req);
  testing::TestResponse c;
  char buf[4096];
  for (ssize_t n; !c.complete && (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) {
    c.raw.append(buf, size_t(n));
    testing::parse_response(c, false);
  }
  ::close(fd);
  EXPECT_EQ(c.status, 413) << c.raw;
}

TEST_F(ApiServerLimitsTest, NetworkHostNeedsAKeyAndBusyPortIsNamed) {
  {
    ApiServer open(*generator_, ApiServerOptions{});
    try {
      open.bind("0.0.0.0", 0);
      FAIL() << "bound 0.0.0.0 without an API key";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--insecure-no-api-key"), std::string::npos) << e.what();
    }
  }
  start();
  ApiServer second(*generator_, ApiServerOptions{});
  try {
    second.bind("127.0.0.1", port_);
    FAIL() << "a second server bound the busy port";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(port_)), std::string::npos) << e.what();
  }
}

TEST_F(ApiServerLimitsTest, ShutdownLetsTheRunningRequestFinishWithinTheGrace) {
  start();
  std::atomic<bool> done{false}, started{false};
  testing::TestResponse r;
  clients_.emplace_back([&, port = port_] {
    r = testing::http_request(port, "POST", "/v1/completions", R"({"prompt":"Once","max_tokens":40,"stream":true})",
                              {}, milliseconds(60000), [&](const std::string&) {
                                started = true;
                                return true;
                              });
    done = true;
  });
  for (int i = 0; i < 5000 && !started; ++i) std::this_thread::sleep_for(milliseconds(1));
  ASSERT_TRUE(started);
  const auto t0 = Clock::now();
  server_->shutdown(milliseconds(10000));
  thread_.join();  // run() returns once the request is done
  EXPECT_LT(ms_since(t0), 5000.0 * kSlowdown);
  clients_.back().join();
  clients_.pop_back();
  ASSERT_TRUE(done);
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("data: [DONE]"), std::string::npos) << r.body.substr(0, 300);
  EXPECT_LT(testing::connect_loopback(port_), 0) << "still accepting after shutdown";
}

TEST_F(ApiServerLimitsTest, ShutdownCutsALongRequestAtTheTimeout) {
  start();
  auto a = long_stream();
  ASSERT_TRUE(a->first && !a->done);
  const auto t0 = Clock::now();
  server_->shutdown(milliseconds(300));
  // New requests on a kept connection or a new one are not served.
  thread_.join();
  const double ms = ms_since(t0);
  EXPECT_GE(ms, 250.0);
  EXPECT_LT(ms, 3000.0 * kSlowdown);
  for (int i = 0; i < 2000 && !a->done; ++i) std::this_thread::sleep_for(milliseconds(2));
  EXPECT_TRUE(a->done);
  EXPECT_TRUE(logged("shutting down: cut"));
}

}  // namespace
}  // namespace tandem::server
