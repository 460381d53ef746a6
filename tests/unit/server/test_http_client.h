// A small blocking HTTP/1.1 client for the server tests, over plain loopback sockets: one
// request per connection ("Connection: close"), the reply read to its end (chunked bodies
// decoded), every wait bounded by a timeout.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace tandem::server::testing {

// Sanitizer builds run several times slower: latency bounds scale with them.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr double kSlowdown = 3.0;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr double kSlowdown = 3.0;
#else
inline constexpr double kSlowdown = 1.0;
#endif
#else
inline constexpr double kSlowdown = 1.0;
#endif

struct TestResponse {
  bool complete = false;  // a whole response arrived (false: timeout, reset, or the caller stopped)
  int status = 0;
  std::multimap<std::string, std::string> headers;  // names lower-cased
  std::string body;                                 // chunked encoding removed
  std::string raw;

  explicit operator bool() const { return complete; }
  std::string header(const std::string& lower_name) const {
    const auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
  bool has_header(const std::string& lower_name) const { return headers.count(lower_name) > 0; }
};

inline int connect_loopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline bool send_all(int fd, const std::string& s) {
  for (size_t at = 0; at < s.size();) {
    const ssize_t n = ::send(fd, s.data() + at, s.size() - at, MSG_NOSIGNAL);
    if (n <= 0) return false;
    at += size_t(n);
  }
  return true;
}

// Splits raw bytes into status, headers and body; complete when the body is whole.
inline void parse_response(TestResponse& r, bool eof) {
  const size_t head_end = r.raw.find("\r\n\r\n");
  if (head_end == std::string::npos) return;
  const std::string head = r.raw.substr(0, head_end);
  if (!head.starts_with("HTTP/1.")) return;
  r.status = std::atoi(head.c_str() + 9);
  r.headers.clear();
  for (size_t at = head.find("\r\n"); at != std::string::npos && at < head.size();) {
    const size_t end = std::min(head.find("\r\n", at + 2), head.size());
    const std::string line = head.substr(at + 2, end - at - 2);
    const size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      for (char& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
      size_t v = colon + 1;
      while (v < line.size() && line[v] == ' ') ++v;
      r.headers.emplace(name, line.substr(v));
    }
    at = end < head.size() ? end : std::string::npos;
  }
  const std::string rest = r.raw.substr(head_end + 4);
  if (r.header("transfer-encoding") == "chunked") {
    r.body.clear();
    for (size_t at = 0;;) {
      const size_t line_end = rest.find("\r\n", at);
      if (line_end == std::string::npos) return;
      const size_t n = std::stoul(rest.substr(at, line_end - at), nullptr, 16);
      if (n == 0) {
        r.complete = rest.find("\r\n", line_end + 2) != std::string::npos;
        return;
      }
      if (rest.size() < line_end + 2 + n + 2) return;
      r.body += rest.substr(line_end + 2, n);
      at = line_end + 2 + n + 2;
    }
  }
  if (r.has_header("content-length")) {
    const size_t n = std::stoul(r.header("content-length"));
    r.body = rest.substr(0, n);
    r.complete = rest.size() >= n;
    return;
  }
  r.body = rest;
  r.complete = eof || r.status == 204 || r.status == 304;
}

// One request. on_data (may be empty) sees the raw bytes after each read; false closes the
// connection there. extra_headers replace the defaults of the same name (Host, Content-Type).
inline TestResponse http_request(int port, const std::string& method, const std::string& path,
                                 const std::string& body = "",
                                 std::vector<std::pair<std::string, std::string>> extra_headers = {},
                                 std::chrono::milliseconds timeout = std::chrono::milliseconds(120000),
                                 const std::function<bool(const std::string&)>& on_data = {}) {
  TestResponse r;
  const int fd = connect_loopback(port);
  if (fd < 0) return r;
  auto given = [&](const char* lower_name) {
    for (const auto& [k, v] : extra_headers) {
      std::string l = k;
      for (char& c : l) c = char(std::tolower(static_cast<unsigned char>(c)));
      if (l == lower_name) return true;
    }
    return false;
  };
  std::string req = method + " " + path + " HTTP/1.1\r\n";
  if (!given("host")) req += "Host: 127.0.0.1:" + std::to_string(port) + "\r\n";
  if (!body.empty() && !given("content-type")) req += "Content-Type: application/json\r\n";
  for (const auto& [k, v] : extra_headers) req += k + ": " + v + "\r\n";
  if (!body.empty() || method == "POST") req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "Connection: close\r\n\r\n" + body;
  if (!send_all(fd, req)) {
    ::close(fd);
    return r;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[16384];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, int(left.count())) <= 0) break;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      parse_response(r, n == 0);
      break;
    }
    r.raw.append(buf, size_t(n));
    if (on_data && !on_data(r.raw)) break;
    parse_response(r, false);
    if (r.complete) break;
  }
  ::close(fd);
  if (!r.complete) r.complete = false;
  return r;
}

}  // namespace tandem::server::testing
