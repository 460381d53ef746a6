#include "runtime/server/request_guard.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

#include "runtime/server/openai_response.h"
#include "runtime/server/request_error.h"

namespace tandem::server {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

// "name:port", "[v6]:port", "name", "[v6]" -> the name / address, lower case, no brackets.
std::string host_without_port(const std::string& h) {
  std::string s = lower(trim(h));
  if (s.starts_with("[")) {
    const size_t close = s.find(']');
    return close == std::string::npos ? s : s.substr(1, close - 1);
  }
  const size_t colon = s.find(':');
  if (colon != std::string::npos && s.find(':', colon + 1) == std::string::npos) s.resize(colon);
  if (s.ends_with(".")) s.pop_back();  // "localhost." is the same name
  return s;
}

bool is_wildcard(const std::string& host) { return host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]"; }

// The machine's own addresses and name: what clients use to reach a server bound to a wildcard.
void add_local_names(std::vector<std::string>& out) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) == 0) {
    for (const ifaddrs* a = list; a; a = a->ifa_next) {
      if (!a->ifa_addr) continue;
      char buf[INET6_ADDRSTRLEN] = {};
      if (a->ifa_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr, buf, sizeof buf);
      else if (a->ifa_addr->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(a->ifa_addr)->sin6_addr, buf, sizeof buf);
      else
        continue;
      std::string addr = buf;
      if (const size_t pct = addr.find('%'); pct != std::string::npos) addr.resize(pct);
      out.push_back(lower(addr));
    }
    freeifaddrs(list);
  }
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) == 0 && name[0]) out.push_back(lower(name));
}

// Constant time in the key's length: the time to refuse a key tells nothing of its prefix.
bool same_secret(const std::string& given, const std::string& key) {
  unsigned char diff = given.size() == key.size() ? 0 : 1;
  for (size_t i = 0; i < key.size(); ++i) diff |= uint8_t(key[i]) ^ uint8_t(i < given.size() ? given[i] : 0);
  return diff == 0;
}

bool loopback_origin(const std::string& origin) {
  for (const char* prefix : {"http://localhost", "http://127.0.0.1", "http://[::1]", "https://localhost",
                             "https://127.0.0.1", "https://[::1]"}) {
    const std::string p = prefix;
    if (origin == p) return true;
    if (origin.starts_with(p + ":")) {
      const std::string port = origin.substr(p.size() + 1);
      if (!port.empty() && port.size() <= 5 && std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return true;
    }
  }
  return false;
}

}  // namespace

HttpResponse json_error_response(int status, const std::string& message, const std::string& type,
                                 const std::string& code) {
  HttpResponse r;
  r.status = status;
  r.set_header("Content-Type", "application/json");
  r.body = to_text(error_json(message, type, "", code));
  return r;
}

bool is_loopback_host(const std::string& host) {
  if (host.empty()) return false;
  const std::string h = host_without_port(host);
  if (h == "localhost") return true;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_flags = AI_NUMERICHOST;
  addrinfo* res = nullptr;
  if (getaddrinfo(h.c_str(), nullptr, &hints, &res) != 0) {
    hints.ai_flags = 0;
    if (getaddrinfo(h.c_str(), nullptr, &hints, &res) != 0) return false;
  }
  bool all = res != nullptr;
  for (const addrinfo* a = res; a; a = a->ai_next) {
    if (a->ai_family == AF_INET) {
      const uint32_t ip = ntohl(reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr.s_addr);
      all = all && (ip >> 24) == 127;
    } else if (a->ai_family == AF_INET6) {
      all = all && IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(a->ai_addr)->sin6_addr);
    } else {
      all = false;
    }
  }
  freeaddrinfo(res);
  return all;
}

RequestGuard::RequestGuard(RequestGuardOptions options, const std::string& bound_host) : options_(std::move(options)) {
  hosts_ = {"localhost", "127.0.0.1", "::1"};
  if (is_wildcard(bound_host))
    add_local_names(hosts_);
  else
    hosts_.push_back(host_without_port(bound_host));
  for (const auto& h : options_.allowed_hosts) {
    if (h == "*") any_host_ = true;
    hosts_.push_back(host_without_port(h));
  }
  for (auto& o : options_.cors_origins) {
    while (o.ends_with("/")) o.pop_back();  // "http://a.example/" is the origin http://a.example
    o = lower(o);
  }
}

bool RequestGuard::host_allowed(const std::string& host_header) const {
  if (any_host_) return true;
  const std::string h = host_without_port(host_header);
  return std::find(hosts_.begin(), hosts_.end(), h) != hosts_.end();
}

bool RequestGuard::origin_allowed(const std::string& origin) const {
  const std::string o = lower(trim(origin));
  if (loopback_origin(o)) return true;
  return std::any_of(options_.cors_origins.begin(), options_.cors_origins.end(),
                     [&](const std::string& allowed) { return allowed == "*" || allowed == o; });
}

std::vector<std::pair<std::string, std::string>> RequestGuard::cors_headers(const HttpRequest& r) const {
  const auto origin = r.header("origin");
  if (!origin || !origin_allowed(*origin)) return {};
  return {{"Access-Control-Allow-Origin", *origin}, {"Vary", "Origin"}};
}

std::optional<HttpResponse> RequestGuard::check(const HttpRequest& r) const {
  // HTTP/1.1 requires Host; an HTTP/1.0 client (never a browser) may leave it out.
  const auto host = r.header("host");
  if ((host || r.version >= 11) && !host_allowed(host.value_or("")))
    return json_error_response(403, "the Host header does not name this server (tandem serve --allowed-host)",
                               "permission_error", "host_not_allowed");

  const auto origin = r.header("origin");
  if (origin && !origin_allowed(*origin))
    return json_error_response(403, "requests from this origin are not allowed (tandem serve --cors-origin)",
                               "permission_error", "origin_not_allowed");
  if (r.method == "OPTIONS") {
    HttpResponse pre;
    pre.status = 204;
    for (auto& h : cors_headers(r)) pre.set_header(h.first, h.second);
    pre.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    // The origin is trusted: let it send whatever headers its client library adds.
    const auto asked = r.header("access-control-request-headers");
    pre.set_header("Access-Control-Allow-Headers", asked && !asked->empty() ? *asked : "Authorization, Content-Type, X-Api-Key");
    pre.set_header("Access-Control-Max-Age", "600");
    return pre;
  }

  auto with_cors = [&](HttpResponse res) {
    for (auto& h : cors_headers(r)) res.set_header(h.first, h.second);
    return res;
  };
  if (!options_.api_key.empty() && r.path != "/health") {
    std::string given;
    if (const auto auth = r.header("authorization")) {
      const std::string a = trim(*auth);
      if (lower(a.substr(0, 7)) == "bearer ") given = trim(a.substr(7));
    }
    if (given.empty())
      if (const auto k = r.header("x-api-key")) given = trim(*k);
    if (!same_secret(given, options_.api_key)) {
      HttpResponse res = json_error_response(
          401, given.empty() ? "an API key is needed: send \"Authorization: Bearer KEY\" or \"x-api-key: KEY\""
                             : "the API key is not valid",
          "invalid_request_error", "invalid_api_key");
      res.set_header("WWW-Authenticate", "Bearer");
      return with_cors(std::move(res));
    }
  }

  if (r.method == "POST") {
    const auto type = r.header("content-type");
    // No Content-Type at all comes from scripts, never from a page (browsers always send one).
    if (type) {
      const std::string media = lower(trim(type->substr(0, type->find(';'))));
      if (media != "application/json")
        return with_cors(json_error_response(
            415, "the request body must be JSON with \"Content-Type: application/json\"", "invalid_request_error",
            "unsupported_media_type"));
    }
  }
  return std::nullopt;
}

}  // namespace tandem::server
