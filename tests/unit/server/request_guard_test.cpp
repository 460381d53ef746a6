#include "runtime/server/request_guard.h"

#include <gtest/gtest.h>

namespace tandem::server {
namespace {

HttpRequest request(std::string method, std::string path, std::vector<std::pair<std::string, std::string>> headers) {
  HttpRequest r;
  r.method = std::move(method);
  r.path = path;
  r.target = path;
  for (auto& [k, v] : headers) r.headers.emplace(k, v);
  return r;
}

TEST(RequestGuard, HostMustNameTheServer) {
  RequestGuard g({}, "127.0.0.1");
  EXPECT_TRUE(g.host_allowed("127.0.0.1:8080"));
  EXPECT_TRUE(g.host_allowed("localhost:8080"));
  EXPECT_TRUE(g.host_allowed("LOCALHOST"));
  EXPECT_TRUE(g.host_allowed("[::1]:8080"));
  EXPECT_FALSE(g.host_allowed("evil.example:8080"));
  EXPECT_FALSE(g.host_allowed(""));
  auto r = g.check(request("GET", "/v1/models", {{"host", "evil.example"}}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  RequestGuard extra({.allowed_hosts = {"box.lan"}}, "127.0.0.1");
  EXPECT_TRUE(extra.host_allowed("box.lan:80"));
  RequestGuard named({}, "box.example");
  EXPECT_TRUE(named.host_allowed("box.example:1234"));
}

TEST(RequestGuard, LoopbackOriginsAllowedOthersRefused) {
  RequestGuard g({.cors_origins = {"https://app.example/"}}, "127.0.0.1");
  EXPECT_TRUE(g.origin_allowed("http://localhost:3000"));
  EXPECT_TRUE(g.origin_allowed("http://127.0.0.1:5173"));
  EXPECT_TRUE(g.origin_allowed("https://app.example"));
  EXPECT_FALSE(g.origin_allowed("http://localhost.evil.example"));
  EXPECT_FALSE(g.origin_allowed("http://localhost:3000.evil.example"));
  EXPECT_FALSE(g.origin_allowed("https://evil.example"));
  EXPECT_FALSE(g.origin_allowed("null"));

  auto pre = g.check(request("OPTIONS", "/v1/chat/completions",
                             {{"host", "127.0.0.1:8080"}, {"origin", "https://app.example"},
                              {"access-control-request-headers", "authorization, content-type"}}));
  ASSERT_TRUE(pre);
  EXPECT_EQ(pre->status, 204);
  auto has = [&](const char* name, const char* value) {
    for (const auto& [k, v] : pre->headers)
      if (k == name) return v == value;
    return false;
  };
  EXPECT_TRUE(has("Access-Control-Allow-Origin", "https://app.example"));
  EXPECT_TRUE(has("Access-Control-Allow-Headers", "authorization, content-type"));
  auto refused = g.check(request("OPTIONS", "/v1/chat/completions", {{"host", "127.0.0.1"}, {"origin", "https://evil.example"}}));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 403);
  for (const auto& [k, v] : refused->headers) EXPECT_NE(k, "Access-Control-Allow-Origin");
}

TEST(RequestGuard, ApiKeyByBearerOrHeaderAndNeverEchoed) {
  RequestGuard g({.api_key = "s3cret-key"}, "127.0.0.1");
  const auto h = std::pair<std::string, std::string>{"host", "127.0.0.1"};
  EXPECT_FALSE(g.check(request("GET", "/v1/models", {h, {"authorization", "Bearer s3cret-key"}})));
  EXPECT_FALSE(g.check(request("GET", "/v1/models", {h, {"x-api-key", "s3cret-key"}})));
  EXPECT_FALSE(g.check(request("GET", "/health", {h})));
  for (const char* wrong : {"Bearer s3cret-ke", "Bearer s3cret-key2", "Basic s3cret-key", ""}) {
    auto r = g.check(request("GET", "/v1/models", {h, {"authorization", wrong}}));
    ASSERT_TRUE(r) << wrong;
    EXPECT_EQ(r->status, 401);
    EXPECT_EQ(r->body.find("s3cret"), std::string::npos) << r->body;
  }
}

TEST(RequestGuard, PostBodiesMustBeJson) {
  RequestGuard g({}, "127.0.0.1");
  const auto h = std::pair<std::string, std::string>{"host", "127.0.0.1"};
  EXPECT_FALSE(g.check(request("POST", "/v1/completions", {h, {"content-type", "application/json; charset=utf-8"}})));
  for (const char* t : {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"}) {
    auto r = g.check(request("POST", "/v1/completions", {h, {"content-type", t}}));
    ASSERT_TRUE(r) << t;
    EXPECT_EQ(r->status, 415);
  }
}

TEST(RequestGuard, LoopbackHosts) {
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_TRUE(is_loopback_host("127.0.0.2"));
  EXPECT_FALSE(is_loopback_host("0.0.0.0"));
  EXPECT_FALSE(is_loopback_host("::"));
  EXPECT_FALSE(is_loopback_host("10.1.2.3"));
}

}  // namespace
}  // namespace tandem::server
