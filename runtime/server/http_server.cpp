#include "runtime/server/http_server.h"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <set>

#include "runtime/core/error.h"

namespace tandem::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string status_line(int status) {
  const auto reason = http::obsolete_reason(http::status(unsigned(status)));
  return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason.data(), reason.size()) + "\r\n";
}

bool has_header(const std::vector<std::pair<std::string, std::string>>& headers, const std::string& lower_name) {
  return std::any_of(headers.begin(), headers.end(), [&](const auto& h) { return lower(h.first) == lower_name; });
}

class Connection;

}  // namespace

struct HttpServer::Impl {
  Impl(HttpServerOptions o, HttpHandler h) : options(std::move(o)), handler(std::move(h)), acceptor(io) {}

  HttpServerOptions options;
  HttpHandler handler;
  // Before io: handlers the loop still holds own connections, whose destructors use these.
  mutable std::mutex connections_mutex;
  std::set<Connection*> connections;  // open ones, for stop()
  std::atomic<bool> running{false};
  std::atomic<bool> stopping{false};
  asio::io_context io{1};
  tcp::acceptor acceptor;

  void accept();
  HttpResponse error_response(int status, const std::string& message) const {
    if (options.error_response) return options.error_response(status, message);
    HttpResponse r;
    r.status = status;
    r.set_header("Content-Type", "text/plain");
    r.body = message + "\n";
    return r;
  }
};

namespace {

// One client connection. Everything touching the socket runs on the event loop; other threads
// reach it through ResponseWriter, which posts there (and, for streams, waits for the write).
class Connection : public ResponseWriter, public std::enable_shared_from_this<Connection> {
 public:
  Connection(HttpServer::Impl& server, tcp::socket socket) : server_(server), stream_(std::move(socket)) {
    error_code ec;
    stream_.socket().set_option(tcp::no_delay(true), ec);
    const auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string();
  }
  ~Connection() override {
    std::lock_guard lock(server_.connections_mutex);
    server_.connections.erase(this);
  }

  void start() {
    {
      std::lock_guard lock(server_.connections_mutex);
      server_.connections.insert(this);
    }
    await_request();
  }

  // From stop(), on the event loop: drop the connection whatever it is doing.
  void abort() { close(); }
  // From stop(), any thread: writers waiting for a write give up (the loop may be gone).
  void abort_waiters() {
    gone_ = true;
    std::lock_guard lock(wait_mutex_);
    aborted_ = true;
    wait_cv_.notify_all();
  }

  // ResponseWriter
  void respond(HttpResponse r) override {
    std::string bytes = status_line(r.status);
    for (const auto& [k, v] : r.headers) bytes += k + ": " + v + "\r\n";
    if (!has_header(r.headers, "content-length")) bytes += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
    bytes += keep_alive_ ? (version_ == 10 ? "Connection: keep-alive\r\n" : "") : "Connection: close\r\n";
    bytes += "\r\n";
    bytes += r.body;
    asio::post(stream_.get_executor(), [self = shared_from_this(), bytes = std::move(bytes)]() mutable {
      self->write_then(std::move(bytes), [self](bool ok) { self->response_done(ok); });
    });
  }

  bool begin_stream(int status, std::vector<std::pair<std::string, std::string>> headers) override {
    chunked_ = version_ >= 11;
    if (!chunked_) keep_alive_ = false;  // HTTP/1.0: the body ends with the connection
    std::string bytes = status_line(status);
    for (const auto& [k, v] : headers) bytes += k + ": " + v + "\r\n";
    bytes += chunked_ ? "Transfer-Encoding: chunked\r\n" : "";
    bytes += keep_alive_ ? "" : "Connection: close\r\n";
    bytes += "\r\n";
    return send_and_wait(std::move(bytes));
  }

  bool write(std::string_view data) override {
    if (data.empty()) return !client_gone();
    if (!chunked_) return send_and_wait(std::string(data));
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    std::string bytes = size;
    bytes.append(data);
    bytes += "\r\n";
    return send_and_wait(std::move(bytes));
  }

  void end_stream() override {
    std::string last = chunked_ ? "0\r\n\r\n" : "";
    asio::post(stream_.get_executor(), [self = shared_from_this(), last = std::move(last)]() mutable {
      if (last.empty()) return self->response_done(true);
      self->write_then(std::move(last), [self](bool ok) { self->response_done(ok); });
    });
  }

  bool client_gone() const override { return gone_.load(); }

 private:
  // Waits (idle timeout) for the first byte of the next request, then reads its header.
  void await_request() {
    if (buffer_.size() > 0) return read_header();  // pipelined: already here
    stream_.expires_after(server_.options.idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](error_code ec, size_t n) {
      if (ec) return self->close();
      self->buffer_.commit(n);
      self->read_header();
    });
  }

  void read_header() {
    parser_.emplace();
    parser_->header_limit(std::uint32_t(server_.options.max_header_bytes));
    parser_->body_limit(server_.options.max_body_bytes);
    stream_.expires_after(server_.options.header_timeout);
    http::async_read_header(stream_, buffer_, *parser_, [self = shared_from_this()](error_code ec, size_t) {
      if (ec) return self->read_failed(ec);
      self->header_read();
    });
  }

  void header_read() {
    const auto& req = parser_->get();
    version_ = int(req.version());
    keep_alive_ = req.keep_alive();
    if (parser_->is_done()) return dispatch();
    auto read_body = [self = shared_from_this()] {
      self->stream_.expires_after(self->server_.options.body_timeout);
      http::async_read(self->stream_, self->buffer_, *self->parser_, [self](error_code ec, size_t) {
        if (ec) return self->read_failed(ec);
        self->dispatch();
      });
    };
    if (lower(std::string(req[http::field::expect])) == "100-continue" && version_ >= 11) {
      auto cont = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
      stream_.expires_after(server_.options.write_timeout);
      asio::async_write(stream_, asio::buffer(*cont), [self = shared_from_this(), cont, read_body](error_code ec, size_t) {
        if (ec) return self->close();
        read_body();
      });
      return;
    }
    read_body();
  }

  void read_failed(error_code ec) {
    if (ec == http::error::body_limit)
      return fail_request(413, "the request body is larger than " + std::to_string(server_.options.max_body_bytes) +
                                   " bytes");
    if (ec == http::error::header_limit) return fail_request(431, "the request header is too large");
    if (ec == beast::error::timeout) return fail_request(408, "the request took too long to arrive");
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted || ec == http::error::partial_message)
      return close();
    fail_request(400, "malformed HTTP request: " + ec.message());
  }

  // An error the layer answers itself; the connection closes after it (the rest of the request
  // is not read).
  void fail_request(int status, const std::string& message) {
    keep_alive_ = false;
    in_request_ = true;
    respond(server_.error_response(status, message));
  }

  void dispatch() {
    stream_.expires_never();
    auto req = parser_->release();
    parser_.reset();
    HttpRequest r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.path = r.target.substr(0, r.target.find('?'));
    r.version = int(req.version());
    for (const auto& f : req) r.headers.emplace(lower(std::string(f.name_string())), std::string(f.value()));
    r.body = std::move(req.body());
    r.remote_address = remote_;
    in_request_ = true;
    watch_for_hangup();
    server_.handler(r, shared_from_this());
  }

  // While a request is handled nothing is read: a readable socket that has no data is a client
  // that hung up, which client_gone() reports.
  void watch_for_hangup() {
    stream_.socket().async_wait(tcp::socket::wait_read, [self = shared_from_this()](error_code ec) {
      if (ec || !self->in_request_) return;
      char byte;
      const ssize_t n = ::recv(self->stream_.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        self->gone_ = true;
        self->wake_writers();
      }
      // n > 0: a pipelined request waits in the socket; it is read after this response.
    });
  }

  template <class Then>
  void write_then(std::string bytes, Then then) {
    if (closed_) return then(false);
    auto owned = std::make_shared<std::string>(std::move(bytes));
    stream_.expires_after(server_.options.write_timeout);
    asio::async_write(stream_, asio::buffer(*owned), [self = shared_from_this(), owned, then](error_code ec, size_t) {
      self->stream_.expires_never();
      if (ec) self->gone_ = true;
      then(!ec);
    });
  }

  // Blocking write for streams: posts the write to the event loop and waits for it.
  bool send_and_wait(std::string bytes) {
    struct Pending {
      bool done = false, ok = false;
    };
    auto pending = std::make_shared<Pending>();
    {
      std::lock_guard lock(wait_mutex_);
      if (aborted_) return false;
    }
    asio::post(stream_.get_executor(), [self = shared_from_this(), pending, bytes = std::move(bytes)]() mutable {
      self->write_then(std::move(bytes), [self, pending](bool ok) {
        std::lock_guard lock(self->wait_mutex_);
        pending->done = true;
        pending->ok = ok;
        self->wait_cv_.notify_all();
      });
    });
    std::unique_lock lock(wait_mutex_);
    wait_cv_.wait(lock, [&] { return pending->done || aborted_; });
    return pending->done && pending->ok && !gone_;
  }

  void wake_writers() {
    std::lock_guard lock(wait_mutex_);
    wait_cv_.notify_all();
  }

  void response_done(bool ok) {
    in_request_ = false;
    if (!ok || !keep_alive_ || gone_ || server_.stopping) return close();
    await_request();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    gone_ = true;
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
    {
      std::lock_guard lock(wait_mutex_);
      aborted_ = true;
      wait_cv_.notify_all();
    }
  }

  HttpServer::Impl& server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string remote_;
  int version_ = 11;
  bool keep_alive_ = true;  // event loop and the handler's thread, never at once
  bool chunked_ = false;
  bool in_request_ = false;  // event loop only
  bool closed_ = false;      // event loop only
  std::atomic<bool> gone_{false};
  std::mutex wait_mutex_;
  std::condition_variable wait_cv_;
  bool aborted_ = false;  // under wait_mutex_
};

}  // namespace

void HttpServer::Impl::accept() {
  acceptor.async_accept([this](error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      return accept();  // EMFILE and the like: keep serving the open connections
    }
    size_t open;
    {
      std::lock_guard lock(connections_mutex);
      open = connections.size();
    }
    if (open >= options.max_connections || stopping) {
      error_code ignored;
      socket.close(ignored);
    } else {
      std::make_shared<Connection>(*this, std::move(socket))->start();
    }
    accept();
  });
}

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

HttpServer::~HttpServer() {
  stop();
  // Handlers still queued in the loop hold connections; destroying them here, before the
  // connection set, keeps their destructors safe.
  impl_->io.restart();
  impl_->io.poll();
}

int HttpServer::bind(const std::string& host, int port) {
  if (port < 0 || port > 65535) fail("--port ", port, ": must be in 0..65535");
  error_code ec;
  tcp::resolver resolver(impl_->io);
  const auto results = resolver.resolve(host, std::to_string(port), tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) fail("cannot listen on ", host, ":", port, ": unknown address (", ec.message(), ")");
  const tcp::endpoint ep = results.begin()->endpoint();
  tcp::acceptor& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (ec) fail("cannot listen on ", host, ":", port, ": ", ec.message());
  // SO_REUSEADDR only lets a restart bind over connections in TIME_WAIT; on Linux it never
  // lets two sockets listen on one port (SO_REUSEPORT, never set here, would).
  a.set_option(asio::socket_base::reuse_address(true), ec);
  a.bind(ep, ec);
  if (ec) {
    a.close();
    fail("cannot listen on ", host, ":", port, ": ", ec.message(),
         ec == asio::error::address_in_use ? " (another server on that port?)" : "");
  }
  a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) fail("cannot listen on ", host, ":", port, ": ", ec.message());
  return int(a.local_endpoint().port());
}

void HttpServer::run() {
  if (!impl_->acceptor.is_open()) fail("HttpServer::run before bind");
  impl_->accept();
  auto guard = asio::make_work_guard(impl_->io);
  impl_->running = true;
  impl_->io.run();
  impl_->running = false;
}

void HttpServer::stop_accepting() {
  asio::post(impl_->io, [impl = impl_.get()] {
    error_code ec;
    impl->acceptor.close(ec);
  });
}

void HttpServer::stop() {
  Impl* impl = impl_.get();
  impl->stopping = true;
  {
    std::lock_guard lock(impl->connections_mutex);
    for (Connection* c : impl->connections)
      if (auto s = c->weak_from_this().lock()) s->abort_waiters();
  }
  asio::post(impl->io, [impl] {
    error_code ec;
    impl->acceptor.close(ec);
    std::vector<std::shared_ptr<Connection>> open;
    {
      std::lock_guard lock(impl->connections_mutex);
      for (Connection* c : impl->connections)
        if (auto s = c->weak_from_this().lock()) open.push_back(std::move(s));
    }
    for (auto& c : open) c->abort();
    impl->io.stop();
  });
  if (!impl->running) {
    // No loop to run the post: run it here so connections still get closed.
    impl->io.restart();
    impl->io.poll();
  }
}

bool HttpServer::running() const { return impl_->running; }

size_t HttpServer::open_connections() const {
  std::lock_guard lock(impl_->connections_mutex);
  return impl_->connections.size();
}

}  // namespace tandem::server
