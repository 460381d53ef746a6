// The HTTP layer alone (no model): an in-process server on an ephemeral loopback port with a
// trivial handler, driven over raw sockets so the tests see exactly what goes over the wire.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/server/http_server.h"
#include "tests/unit/server/test_http_client.h"

namespace tandem::server {
namespace {

using Clock = std::chrono::steady_clock;
using testing::kSlowdown;

int connect_to(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

bool send_all(int fd, const std::string& s) {
  size_t at = 0;
  while (at < s.size()) {
    const ssize_t n = ::send(fd, s.data() + at, s.size() - at, MSG_NOSIGNAL);
    if (n <= 0) return false;
    at += size_t(n);
  }
  return true;
}

// Reads one response with a Content-Length body (what the test handler sends).
std::string read_response(int fd) {
  std::string got;
  char buf[4096];
  for (;;) {
    const size_t head_end = got.find("\r\n\r\n");
    if (head_end != std::string::npos) {
      const size_t cl = got.find("Content-Length: ");
      if (cl != std::string::npos && cl < head_end) {
        const size_t len = std::stoul(got.substr(cl + 16));
        if (got.size() >= head_end + 4 + len) return got;
      }
    }
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return got;
    got.append(buf, size_t(n));
  }
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpServerOptions o;
    o.max_body_bytes = size_t(1) << 20;
    o.header_timeout = std::chrono::milliseconds(2000);
    server_ = std::make_unique<HttpServer>(o, [this](const HttpRequest& r, std::shared_ptr<ResponseWriter> w) {
      if (r.path == "/stream") {
        std::lock_guard lock(streams_mutex_);
        streams_.emplace_back([w] {
          if (w->begin_stream(200, {{"Content-Type", "text/event-stream"}}) && w->write("ab") && w->write("cde"))
            w->end_stream();
        });
        return;
      }
      HttpResponse res;
      res.set_header("Content-Type", "text/plain");
      res.body = r.method + " " + r.path + " " + std::to_string(r.body.size());
      w->respond(std::move(res));
    });
    port_ = server_->bind("127.0.0.1", 0);
    thread_ = std::thread([this] { server_->run(); });
    for (int i = 0; i < 500 && !server_->running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  void TearDown() override {
    for (auto& t : streams_) t.join();  // they hold connections: done before the server goes
    server_->stop();
    thread_.join();
    server_.reset();
  }
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex streams_mutex_;
  std::vector<std::thread> streams_;
};

TEST_F(HttpServerTest, KeepAliveRepliesComeWithoutNagleDelay) {
  const int fd = connect_to(port_);
  ASSERT_GE(fd, 0);
  std::vector<double> ms;
  for (int i = 0; i < 50; ++i) {
    const auto t0 = Clock::now();
    ASSERT_TRUE(send_all(fd, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    const std::string r = read_response(fd);
    ASSERT_TRUE(r.starts_with("HTTP/1.1 200")) << r;
    ASSERT_NE(r.find("GET /health 0"), std::string::npos) << r;
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  close(fd);
  std::sort(ms.begin(), ms.end());
  // Nagle + delayed ACK would make every reply ~40 ms.
  EXPECT_LT(ms[ms.size() / 2], 5.0 * kSlowdown);
  // A scheduling hiccup on a loaded CI machine may delay one reply; Nagle delays every one.
  EXPECT_LT(ms[ms.size() * 9 / 10], 35.0 * kSlowdown);
}

TEST_F(HttpServerTest, ChunkedBodyOverTheLimitIs413AndStopsReading) {
  const int fd = connect_to(port_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"));
  const std::string chunk(64 << 10, 'a');
  char size[16];
  std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
  // 50 MB offered; the server must answer 413 and close long before that.
  for (int i = 0; i < 800; ++i)
    if (!send_all(fd, std::string(size) + chunk + "\r\n")) break;
  const std::string r = read_response(fd);
  EXPECT_TRUE(r.starts_with("HTTP/1.1 413")) << r.substr(0, 200);
  close(fd);
}

TEST_F(HttpServerTest, ContentLengthOverTheLimitIs413) {
  const int fd = connect_to(port_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999\r\n\r\n"));
  const std::string r = read_response(fd);
  EXPECT_TRUE(r.starts_with("HTTP/1.1 413")) << r;
  close(fd);
}

TEST_F(HttpServerTest, IdleAndSlowClientsDoNotStarveOthers) {
  std::vector<int> idle;
  for (int i = 0; i < 200; ++i) {
    const int fd = connect_to(port_);
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  std::vector<int> slow;
  for (int i = 0; i < 8; ++i) {
    const int fd = connect_to(port_);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd, "GET /slow HTTP/1.1\r\nHo"));  // and never the rest
    slow.push_back(fd);
  }
  double worst_ms = 0;
  for (int i = 0; i < 20; ++i) {
    const auto t0 = Clock::now();
    const int fd = connect_to(port_);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
    const std::string r = read_response(fd);
    close(fd);
    ASSERT_TRUE(r.starts_with("HTTP/1.1 200")) << r;
    worst_ms = std::max(worst_ms, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  EXPECT_LT(worst_ms, 100.0 * kSlowdown);
  for (int fd : idle) close(fd);
  for (int fd : slow) close(fd);
}

TEST_F(HttpServerTest, Http10GetsAWholeResponseAndClose) {
  const int fd = connect_to(port_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "GET /old HTTP/1.0\r\n\r\n"));
  const std::string r = read_response(fd);
  EXPECT_NE(r.find("Connection: close"), std::string::npos) << r;
  EXPECT_EQ(r.find("chunked"), std::string::npos) << r;
  EXPECT_NE(r.find("GET /old 0"), std::string::npos) << r;
  close(fd);
}

TEST_F(HttpServerTest, StreamsAreChunkedForHttp11AndPlainForHttp10) {
  for (const char* version : {"1.1", "1.0"}) {
    const int fd = connect_to(port_);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd, std::string("GET /stream HTTP/") + version + "\r\nConnection: close\r\n\r\n"));
    std::string got;
    char buf[4096];
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) got.append(buf, size_t(n));
    close(fd);
    const std::string body = got.substr(got.find("\r\n\r\n") + 4);
    if (std::string(version) == "1.1")
      EXPECT_EQ(body, "2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n") << got;
    else
      EXPECT_EQ(body, "abcde") << got;
  }
}

TEST_F(HttpServerTest, BusyPortIsAnErrorNamingIt) {
  HttpServer other(HttpServerOptions{}, [](const HttpRequest&, std::shared_ptr<ResponseWriter>) {});
  try {
    other.bind("127.0.0.1", port_);
    FAIL() << "a second server bound the busy port " << port_;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(port_)), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tandem::server
