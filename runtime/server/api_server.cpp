#include "runtime/server/api_server.h"

#include <httplib.h>
#include <signal.h>

#include <chrono>
#include <ctime>
#include <memory>

#include "runtime/core/error.h"
#include "runtime/server/completion_request.h"
#include "runtime/server/connection_probe.h"
#include "runtime/server/generator.h"
#include "runtime/server/openai_response.h"
#include "runtime/server/request_error.h"

namespace tandem::server {
namespace {

using nlohmann::json;

int64_t unix_now() { return int64_t(std::time(nullptr)); }

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(to_text(body), "application/json");
}

void send_error(httplib::Response& res, const RequestError& e) { send_json(res, e.status(), e.to_json()); }

// Everything one completion request carries from the handler into the (streaming) provider.
struct CompletionJob {
  CompletionRequest request;
  PreparedPrompt prompt;
  ResponseMeta meta;
  std::unique_ptr<ConnectionProbe> probe;
  std::chrono::steady_clock::time_point start;
};

}  // namespace

struct ApiServer::Impl {
  Impl(Generator& g, ApiServerOptions o) : generator(g), options(std::move(o)), started(unix_now()) {}

  Generator& generator;
  ApiServerOptions options;
  int64_t started;
  httplib::Server http;

  void log(const std::string& line) const {
    if (options.log) options.log(line);
  }

  void log_outcome(const std::string& method, const std::string& path, const CompletionJob& job,
                   const GenerationOutcome& o) const {
    if (!options.log) return;
    const double secs = seconds_since(job.start);
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s %s: prompt %lld tokens (%lld cached), %lld generated in %.2f s, %s%s",
                  method.c_str(), path.c_str(), (long long)o.usage.prompt_tokens, (long long)o.reused_tokens,
                  (long long)o.usage.completion_tokens, secs, std::string(finish_reason_name(o.finish)).c_str(),
                  o.cancelled ? " (client gone: stopped)" : "");
    log(buf);
  }

  void routes() {
    http.set_payload_max_length(options.max_body_bytes);

    http.Get("/health", [](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, json{{"status", "ok"}});
    });
    auto models = [this](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, model_list_json(options.model_name, started));
    };
    http.Get("/v1/models", models);
    http.Get("/models", models);

    for (const char* path : {"/v1/chat/completions", "/chat/completions"}) {
      http.Post(path, [this](const httplib::Request& req, httplib::Response& res) { complete(req, res, true); });
      http.Get(path, method_not_allowed);
    }
    for (const char* path : {"/v1/completions", "/completions"}) {
      http.Post(path, [this](const httplib::Request& req, httplib::Response& res) { complete(req, res, false); });
      http.Get(path, method_not_allowed);
    }

    // Unknown paths, oversized bodies, ...: httplib sets the status, we give it a JSON body.
    http.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                       httplib::Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // already ours
      const int status = res.status;
      if (status == 404) {
        send_json(res, 404, error_json("unknown endpoint: " + req.method + " " + req.path, "not_found_error", "",
                                       "not_found"));
      } else if (status == 413) {
        send_json(res, 413, error_json("the request body is larger than " + std::to_string(options.max_body_bytes) +
                                           " bytes",
                                       "invalid_request_error", "", "payload_too_large"));
      } else {
        send_json(res, status, error_json("HTTP " + std::to_string(status), "invalid_request_error", "", ""));
      }
      log(req.method + " " + req.path + ": " + std::to_string(status));
      return httplib::Server::HandlerResponse::Handled;
    }));
    http.set_exception_handler([this](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "unknown error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      send_json(res, 500, error_json(what, "server_error", "", ""));
      log(req.method + " " + req.path + ": 500 " + what);
    });
  }

  static void method_not_allowed(const httplib::Request& req, httplib::Response& res) {
    send_json(res, 405, error_json(req.path + " takes POST, not " + req.method, "invalid_request_error", "",
                                   "method_not_allowed"));
  }

  void complete(const httplib::Request& req, httplib::Response& res, bool chat) {
    auto job = std::make_shared<CompletionJob>();
    job->start = std::chrono::steady_clock::now();
    try {
      job->request = chat ? parse_chat_completion_request(req.body) : parse_text_completion_request(req.body);
      job->prompt = generator.prepare(job->request);
    } catch (const RequestError& e) {
      log(req.method + " " + req.path + ": " + std::to_string(e.status()) + " " + e.what());
      send_error(res, e);
      return;
    }
    job->meta = {new_response_id(chat), unix_now(), options.model_name};
    job->probe = std::make_unique<ConnectionProbe>(req.remote_addr, req.remote_port, req.local_port);
    if (job->request.stream)
      stream(req, res, job, chat);
    else
      respond(req, res, *job, chat);
  }

  void respond(const httplib::Request& req, httplib::Response& res, CompletionJob& job, bool chat) {
    const ConnectionProbe& probe = *job.probe;
    const GenerationOutcome o = generator.generate(job.prompt, job.request, {}, [&probe] { return probe.closed(); });
    log_outcome(req.method, req.path, job, o);
    if (chat)
      send_json(res, 200, chat_completion_json(job.meta, o.text, o.finish, o.usage));
    else
      send_json(res, 200, text_completion_json(job.meta, o.text, o.finish, o.usage));
  }

  void stream(const httplib::Request& req, httplib::Response& res, std::shared_ptr<CompletionJob> job, bool chat) {
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");  // proxies: pass events on as they come
    const std::string method = req.method, path = req.path;
    res.set_chunked_content_provider(
        "text/event-stream", [this, job, chat, method, path](size_t, httplib::DataSink& sink) {
          auto write = [&sink](const std::string& s) { return sink.write(s.data(), s.size()); };
          const ResponseMeta& meta = job->meta;
          if (chat && !write(sse_event(chat_chunk_json(meta, json{{"role", "assistant"}, {"content", ""}})))) return false;
          GenerationOutcome o;
          try {
            o = generator.generate(
                job->prompt, job->request,
                [&](std::string_view text) {
                  const json chunk = chat ? chat_chunk_json(meta, json{{"content", std::string(text)}})
                                          : text_chunk_json(meta, text);
                  return write(sse_event(chunk));
                },
                [&job] { return job->probe->closed(); });
          } catch (const std::exception& e) {
            // The status line is long gone: report the error as an event and end the stream.
            write(sse_event(error_json(e.what(), "server_error", "", "")));
            write(sse_done());
            sink.done();
            log(method + " " + path + ": error while streaming: " + e.what());
            return true;
          }
          log_outcome(method, path, *job, o);
          if (o.cancelled) return false;  // drop the connection
          const json last = chat ? chat_chunk_json(meta, json::object(), o.finish, o.usage)
                                 : text_chunk_json(meta, "", o.finish, o.usage);
          if (!write(sse_event(last))) return false;
          if (job->request.include_usage && !write(sse_event(usage_chunk_json(meta, chat, o.usage)))) return false;
          if (!write(sse_done())) return false;
          sink.done();
          return true;
        });
  }
};

ApiServer::ApiServer(Generator& generator, ApiServerOptions options)
    : impl_(std::make_unique<Impl>(generator, std::move(options))) {
  impl_->routes();
}

ApiServer::~ApiServer() { stop(); }

int ApiServer::bind(const std::string& host, int port) {
  if (port < 0 || port > 65535) fail("--port ", port, ": must be in 0..65535");
  // cpp-httplib writes without MSG_NOSIGNAL: a client that hangs up mid-stream must not kill
  // the process with SIGPIPE (the failed write ends that one generation instead).
  ::signal(SIGPIPE, SIG_IGN);
  int bound = -1;
  if (port == 0) {
    bound = impl_->http.bind_to_any_port(host);
  } else if (impl_->http.bind_to_port(host, port)) {
    bound = port;
  }
  if (bound <= 0) fail("cannot listen on ", host, ":", port, " (address in use, or not a local address?)");
  return bound;
}

void ApiServer::run() { impl_->http.listen_after_bind(); }

void ApiServer::stop() {
  if (impl_->http.is_running()) impl_->http.stop();
}

bool ApiServer::running() const { return impl_->http.is_running(); }

}  // namespace tandem::server
