// The library-independent face of the HTTP layer: what a handler sees of a request and how it
// answers. A handler gets the request (body complete, within the size limit) and a
// ResponseWriter, which it may keep and use later from any thread other than the server's
// event loop: either respond() once with a whole response, or begin_stream() then write()
// pieces and end_stream(). The HTTP library (http_server.cpp) stays out of this header, so
// endpoints (OpenAI, Ollama, ...) are written against these types only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tandem::server {

struct HttpRequest {
  std::string method;   // "GET", "POST", "OPTIONS", ...
  std::string target;   // as sent: path and query
  std::string path;     // target without the query
  int version = 11;     // 10: HTTP/1.0, 11: HTTP/1.1
  std::multimap<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string remote_address;

  // The first value of a header (name in lower case), or nullopt.
  std::optional<std::string> header(const std::string& lower_name) const {
    const auto it = headers.find(lower_name);
    if (it == headers.end()) return std::nullopt;
    return it->second;
  }
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // Content-Length is added by the layer
  std::string body;

  void set_header(std::string name, std::string value) { headers.emplace_back(std::move(name), std::move(value)); }
};

// The way back to one client. Methods return false once the client is gone (a failed or
// timed-out write, a closed connection); the handler then stops producing.
class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;
  // The whole response (any thread).
  virtual void respond(HttpResponse response) = 0;
  // A streamed response: status and headers now, the body in pieces. HTTP/1.1 clients get a
  // chunked body; HTTP/1.0 ones a body that ends when the connection closes. Not from the
  // event loop's thread (write waits for the client to take the bytes).
  virtual bool begin_stream(int status, std::vector<std::pair<std::string, std::string>> headers) = 0;
  virtual bool write(std::string_view data) = 0;
  virtual void end_stream() = 0;
  // True once the peer closed or reset the connection; cheap, never blocks, any thread.
  virtual bool client_gone() const = 0;
};

using HttpHandler = std::function<void(const HttpRequest&, std::shared_ptr<ResponseWriter>)>;

}  // namespace tandem::server
