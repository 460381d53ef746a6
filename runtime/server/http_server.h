// The HTTP/1.x server under tandem serve, over Boost.Beast and Boost.Asio (header-only, Debian's
// libboost-dev). Why not cpp-httplib (what tandem used first): its blocking thread-per-connection
// pool lets 8 slow or idle clients starve every other one, it has no header timeout and does not
// limit chunked bodies. Here one event loop thread owns every socket, so idle and slow clients
// cost a few KiB each and never block another; Beast's parser enforces the body limit on every
// transfer encoding (a Content-Length over it, or a chunk that would pass it, ends the request with
// 413 before more is buffered). Sockets get TCP_NODELAY (Nagle would hold small replies on keep-
// alive connections for ~40 ms). The listening socket is bound exclusively: no SO_REUSEPORT, so a
// busy port is an error naming it.
//
// The handler runs on the event loop's thread and must return quickly: slow work goes to
// another thread, which answers through the ResponseWriter (http_types.h).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "runtime/server/http_types.h"

namespace tandem::server {

struct HttpServerOptions {
  size_t max_body_bytes = size_t(16) << 20;  // larger bodies get 413, whatever their encoding
  size_t max_header_bytes = size_t(64) << 10;
  std::chrono::milliseconds idle_timeout{30000};    // a connection waiting for its next request
  std::chrono::milliseconds header_timeout{10000};  // a request's first byte to its last header byte
  std::chrono::milliseconds body_timeout{60000};    // the whole body
  std::chrono::milliseconds write_timeout{60000};   // one write a client does not take
  size_t max_connections = 4096;                    // more are closed at once
  // The response for errors the layer answers itself (400, 408, 413, 431); empty: plain text.
  std::function<HttpResponse(int status, const std::string& message)> error_response;
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds host:port (0: a free port) exclusively and returns the port; fails naming both.
  int bind(const std::string& host, int port);
  // The event loop, on the calling thread, until stop().
  void run();
  // Closes the listening socket; open connections go on. Any thread.
  void stop_accepting();
  // Closes every connection and makes run() return. Any thread.
  void stop();
  bool running() const;
  size_t open_connections() const;

  struct Impl;  // public only so http_server.cpp's connections can name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tandem::server
