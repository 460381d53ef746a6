// The checks every request passes before an endpoint sees it, in this order:
//  1. Host: the Host header must name this server (localhost, 127.0.0.1, [::1], the bound host,
//     the machine's addresses when bound to a wildcard, --allowed-host). Stops DNS rebinding,
//     where a page on evil.example re-points its name at 127.0.0.1: its requests then carry
//     "Host: evil.example". 403.
//  2. Origin (CORS): a request from a browser page names its origin. Loopback origins
//     (http://localhost:*, http://127.0.0.1:*, http://[::1]:*) and --cors-origin ones are
//     allowed and their preflight (OPTIONS) is answered 204; any other origin gets 403 and no
//     CORS headers, so its page can neither read answers nor cause work.
//  3. API key, when one is set: "Authorization: Bearer KEY" or "x-api-key: KEY"; 401 otherwise.
//     GET /health and preflights need none. Error messages never repeat what was sent.
//  4. POST bodies must be application/json (415): a cross-site "simple" request (text/plain,
//     form data) needs no preflight, so this is what keeps other pages from making it generate.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/server/http_types.h"

namespace tandem::server {

struct RequestGuardOptions {
  std::string api_key;                     // empty: no key needed
  std::vector<std::string> cors_origins;   // allowed besides loopback; "*": any origin
  std::vector<std::string> allowed_hosts;  // Host names besides the built-in ones; "*": any
};

class RequestGuard {
 public:
  // bound_host: the --host value the server listens on.
  RequestGuard(RequestGuardOptions options, const std::string& bound_host);

  // nullopt when the request may go on, else the answer to send now (a preflight's 204, or an
  // error: 401, 403, 415), CORS headers included.
  std::optional<HttpResponse> check(const HttpRequest& request) const;
  // Headers that let the request's origin read the answer (empty for no Origin or a refused one).
  std::vector<std::pair<std::string, std::string>> cors_headers(const HttpRequest& request) const;

  bool origin_allowed(const std::string& origin) const;
  bool host_allowed(const std::string& host_header) const;

 private:
  RequestGuardOptions options_;
  std::vector<std::string> hosts_;  // lower-case names and addresses, IPv6 without brackets
  bool any_host_ = false;
};

// True when every address `host` resolves to is a loopback one ("localhost", 127.x, ::1).
bool is_loopback_host(const std::string& host);

// An error answer in the OpenAI shape {"error": {...}}.
HttpResponse json_error_response(int status, const std::string& message, const std::string& type,
                                 const std::string& code);

}  // namespace tandem::server
