// Fuzzes RequestGuard (runtime/server/request_guard): the Host, Origin, Authorization,
// x-api-key and Content-Type headers a client sends before any endpoint sees the request.
// Input layout: byte 0 picks the method (bits 0-1) and path (bit 2); the rest is split on '\n'
// into Host, Origin, Authorization, x-api-key, Content-Type, Access-Control-Request-Headers.
// Checked: no crash; every answer is 204 or an error with a JSON body that never holds the API
// key; a request let through had the right key; refused origins get no CORS headers.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "runtime/server/request_guard.h"

using namespace tandem::server;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

const std::string kKey = "fuzz-key-0123456789";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const RequestGuard guard({.api_key = kKey, .cors_origins = {"https://app.example"}, .allowed_hosts = {"box.lan"}},
                                  "127.0.0.1");
  HttpRequest r;
  const char* methods[] = {"GET", "POST", "OPTIONS", "PUT"};
  r.method = methods[data[0] & 3];
  r.path = (data[0] & 4) ? "/health" : "/v1/chat/completions";
  r.target = r.path;
  const std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const char* names[] = {"host", "origin", "authorization", "x-api-key", "content-type", "access-control-request-headers"};
  size_t at = 0;
  for (const char* name : names) {
    if (at > rest.size()) break;
    const size_t end = std::min(rest.find('\n', at), rest.size());
    r.headers.emplace(name, rest.substr(at, end - at));
    at = end + 1;
  }
  const auto answer = guard.check(r);
  const auto origin = r.header("origin");
  if (answer) {
    check(answer->status == 204 || answer->status == 401 || answer->status == 403 || answer->status == 415);
    check(answer->body.find(kKey) == std::string::npos);
    if (origin && !guard.origin_allowed(*origin))
      for (const auto& h : answer->headers) check(h.first != "Access-Control-Allow-Origin");
  } else {
    check(r.method != "OPTIONS");
    check(guard.host_allowed(r.header("host").value_or("")));
    if (r.path != "/health") {
      const std::string auth = r.header("authorization").value_or("");
      const std::string x = r.header("x-api-key").value_or("");
      check(auth.find(kKey) != std::string::npos || x.find(kKey) != std::string::npos);
    }
  }
  (void)guard.cors_headers(r);
  return 0;
}
