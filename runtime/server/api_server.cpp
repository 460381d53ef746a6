#include "runtime/server/api_server.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "runtime/core/error.h"
#include "runtime/server/admission_queue.h"
#include "runtime/server/completion_request.h"
#include "runtime/server/completion_engine.h"
#include "runtime/server/http_server.h"
#include "runtime/server/ollama_request.h"
#include "runtime/server/openai_response.h"
#include "runtime/chat/reasoning_splitter.h"
#include "runtime/chat/tool_calls.h"
#include "runtime/server/request_error.h"
#include "runtime/server/server_metrics.h"

namespace tandem::server {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

int64_t unix_now() { return int64_t(std::time(nullptr)); }

double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

HttpResponse json_response(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  r.set_header("Content-Type", "application/json");
  r.body = to_text(body);
  return r;
}

// The metrics label of a path: the served endpoints by their canonical name, anything else
// "other" (a scanner's paths must not grow the label set).
std::string endpoint_of(const std::string& path) {
  for (const char* e : {"/v1/chat/completions", "/v1/completions", "/v1/models"})
    if (path == e || path == std::string(e).substr(3)) return e;
  if (path.starts_with("/v1/models/") || path.starts_with("/models/")) return "/v1/models/{id}";
  for (const char* e : {"/health", "/metrics", "/", "/api/version", "/api/tags", "/api/show", "/api/ps", "/api/chat",
                        "/api/generate"})
    if (path == e) return e;
  return "other";
}

// Which API a completion speaks: its request body, its answer and its errors.
enum class Api { OpenAIChat, OpenAIText, OllamaChat, OllamaGenerate };

bool is_ollama(Api a) { return a == Api::OllamaChat || a == Api::OllamaGenerate; }

// Ollama clients show error.message only when error is a string: rewrite an OpenAI-style error
// body (from the guard, the HTTP layer, the queue) into {"error": "message"}.
void to_ollama_error(HttpResponse& res) {
  if (res.status < 400) return;
  try {
    const json j = json::parse(res.body);
    if (j.contains("error") && j["error"].is_object() && j["error"].contains("message"))
      res.body = to_text(ollama_error_json(j["error"]["message"].get<std::string>()));
  } catch (const std::exception&) {
    res.body = to_text(ollama_error_json("HTTP " + std::to_string(res.status)));
  }
}

int64_t nanoseconds(Clock::duration d) {
  return std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
}

// Everything one completion request carries from the event loop into its thread.
struct CompletionJob {
  HttpRequest http;
  std::shared_ptr<ResponseWriter> writer;
  std::string endpoint;
  Api api = Api::OpenAIChat;
  bool chat = true;  // messages through the chat template (OpenAI chat, Ollama chat and generate)
  OllamaRequest ollama;
  uint64_t ticket = 0;
  Clock::time_point arrival;
  std::vector<std::pair<std::string, std::string>> cors;
  CompletionRequest request;
  PreparedPrompt prompt;
  ResponseMeta meta;
};

// A reply's text as the client sees it: the reasoning split out (ReasoningSplitter), the tool
// calls taken out (ToolCallParser, when the request offers tools), each call given an id.
struct ReplyPieces {
  std::string reasoning, content;
  std::vector<ToolCall> calls;
  bool empty() const { return reasoning.empty() && content.empty() && calls.empty(); }
};

class ReplyPipeline {
 public:
  ReplyPipeline(std::string_view prompt_text, bool split_reasoning, ToolCallFormat tools) {
    if (split_reasoning) {
      ReasoningSplitOptions o;
      o.starts_in_reasoning = ReasoningSplitter::prompt_opens_reasoning(prompt_text);
      o.keep_leading_space = true;
      splitter_.emplace(o);
    }
    if (tools != ToolCallFormat::None) parser_.emplace(tools);
  }

  ReplyPieces push(std::string_view text) {
    return through(splitter_ ? splitter_->push(text) : ReasoningPiece{"", std::string(text)}, false);
  }
  ReplyPieces finish() { return through(splitter_ ? splitter_->finish() : ReasoningPiece{}, true); }
  size_t calls() const { return calls_; }

 private:
  ReplyPieces through(ReasoningPiece p, bool last) {
    ReplyPieces out;
    out.reasoning = std::move(p.reasoning);
    if (!parser_) {
      out.content = std::move(p.content);
      return out;
    }
    auto take = [&](ToolCallParser::Piece piece) {
      out.content += piece.content;
      for (auto& c : piece.calls) {
        c.id = new_tool_call_id();
        out.calls.push_back(std::move(c));
        ++calls_;
      }
    };
    take(parser_->push(p.content));
    if (last) take(parser_->finish());
    return out;
  }

  std::optional<ReasoningSplitter> splitter_;
  std::optional<ToolCallParser> parser_;
  size_t calls_ = 0;
};

// Ollama's message.tool_calls: arguments as an object.
json ollama_tool_calls_json(const std::vector<ToolCall>& calls) {
  json a = json::array();
  for (const auto& c : calls) {
    json args;
    try {
      args = json::parse(c.arguments);
    } catch (const json::exception&) {
      args = c.arguments;
    }
    a.push_back({{"function", {{"name", c.name}, {"arguments", std::move(args)}}}});
  }
  return a;
}

}  // namespace

struct ApiServer::Impl {
  Impl(CompletionEngine& g, ApiServerOptions o)
      : generator(g), options(std::move(o)), started(unix_now()),
        ollama_model(options.ollama_model.name.empty() ? ollama_model_named(options.model_name) : options.ollama_model),
        queue(options.queue, size_t(g.parallel())),
        http(http_options(), [this](const HttpRequest& r, std::shared_ptr<ResponseWriter> w) { handle(r, std::move(w)); }) {}

  CompletionEngine& generator;
  ApiServerOptions options;
  int64_t started;
  OllamaModel ollama_model;
  ServerMetrics metrics;
  AdmissionQueue queue;
  std::optional<RequestGuard> guard;  // set by bind(): it knows the bound host
  std::atomic<bool> draining{false};  // no new completions
  std::atomic<bool> cut{false};       // running generations stop now
  std::mutex workers_mutex;
  std::condition_variable workers_done;
  int workers = 0;  // completion threads alive
  std::mutex shutdown_mutex;
  std::thread shutdown_thread;
  HttpServer http;  // last: its loop calls into the members above

  HttpServerOptions http_options() const {
    HttpServerOptions h;
    h.max_body_bytes = options.max_body_bytes;
    h.header_timeout = options.header_timeout;
    h.idle_timeout = options.idle_timeout;
    h.error_response = [](int status, const std::string& message) {
      const char* code = status == 413   ? "payload_too_large"
                         : status == 408 ? "request_timeout"
                         : status == 431 ? "header_too_large"
                                         : "bad_request";
      return json_error_response(status, message, "invalid_request_error", code);
    };
    return h;
  }

  void log(const std::string& line) const {
    if (options.log) options.log(line);
  }

  void log_outcome(const CompletionJob& job, const GenerationOutcome& o) const {
    if (!options.log) return;
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s %s: prompt %lld tokens (%lld cached), %lld generated in %.2f s, %s%s",
                  job.http.method.c_str(), job.http.path.c_str(), (long long)o.usage.prompt_tokens,
                  (long long)o.reused_tokens, (long long)o.usage.completion_tokens,
                  seconds_between(job.arrival, Clock::now()), std::string(finish_reason_name(o.finish)).c_str(),
                  o.cancelled ? (cut ? " (shutting down: cut)" : " (client gone: stopped)") : "");
    log(buf);
  }

  // Sends a whole response with the request's CORS headers and counts it.
  void send(const HttpRequest& r, ResponseWriter& w, HttpResponse res,
            const std::vector<std::pair<std::string, std::string>>* cors = nullptr) {
    if (cors) {
      for (const auto& h : *cors) res.set_header(h.first, h.second);
    } else if (guard) {
      for (auto& h : guard->cors_headers(r)) res.set_header(h.first, h.second);
    }
    if (r.path == "/" || r.path.starts_with("/api/")) to_ollama_error(res);
    metrics.count_request(endpoint_of(r.path), res.status);
    if (r.method == "HEAD") res.body.clear();
    w.respond(std::move(res));
  }

  void send_error(const HttpRequest& r, ResponseWriter& w, const RequestError& e,
                  const std::vector<std::pair<std::string, std::string>>* cors = nullptr) {
    log(r.method + " " + r.path + ": " + std::to_string(e.status()) + " " + e.what());
    send(r, w, json_response(e.status(), e.to_json()), cors);
  }

  HttpResponse unavailable(const std::string& message, const char* code) const {
    HttpResponse res = json_error_response(503, message, "server_error", code);
    // About when the line ahead will have drained, from the mean generation time so far.
    // (--parallel N: N of them go at once.)
    const double wait = metrics.mean_generation_seconds() * double(queue.waiting() + queue.running()) /
                        double(std::max(generator.parallel(), 1));
    res.set_header("Retry-After", std::to_string(std::clamp<long long>((long long)std::ceil(wait), 1, 60)));
    return res;
  }

  // On the event loop: answers at once, or hands a completion to its own thread.
  void handle(const HttpRequest& r, std::shared_ptr<ResponseWriter> w) {
    try {
      if (!guard) return send(r, *w, json_error_response(500, "server not bound", "server_error", ""));
      if (auto early = guard->check(r)) {
        if (early->status >= 400) log(r.method + " " + r.path + ": " + std::to_string(early->status));
        return send(r, *w, std::move(*early), &no_cors());
      }
      const std::string& p = r.path;
      const bool get = r.method == "GET";
      if (p == "/health" && get) return send(r, *w, json_response(200, json{{"status", "ok"}}));
      if (p == "/metrics" && get) {
        HttpResponse m;
        m.set_header("Content-Type", "text/plain; version=0.0.4");
        const EngineStats e = generator.stats();
        const EngineGauges g{e.slots, e.running, e.kv_tokens, e.kv_capacity, e.reused_prompt_tokens, e.steps,
                             e.max_sequences_in_step};
        m.body = metrics.render(queue.waiting(), queue.running(), &g);
        return send(r, *w, std::move(m));
      }
      if ((p == "/v1/models" || p == "/models") && get)
        return send(r, *w, json_response(200, model_list_json(options.model_name, started)));
      if ((p.starts_with("/v1/models/") || p.starts_with("/models/")) && get) {
        const std::string id = p.substr(p.find("/models/") + 8);
        if (id != options.model_name)
          return send(r, *w, json_response(404, error_json("The model '" + id + "' does not exist", "invalid_request_error",
                                                           "model", "model_not_found")));
        return send(r, *w, json_response(200, model_json(options.model_name, started)));
      }
      if (handle_ollama_info(r, *w)) return;
      std::optional<Api> api;
      if (p == "/v1/chat/completions" || p == "/chat/completions") api = Api::OpenAIChat;
      if (p == "/v1/completions" || p == "/completions") api = Api::OpenAIText;
      if (p == "/api/chat") api = Api::OllamaChat;
      if (p == "/api/generate") api = Api::OllamaGenerate;
      if (api) {
        if (r.method != "POST")
          return send(r, *w, json_response(405, error_json(p + " takes POST, not " + r.method, "invalid_request_error", "",
                                                           "method_not_allowed")));
        return admit(r, std::move(w), *api);
      }
      if (p == "/health" || p == "/metrics" || p == "/v1/models" || p == "/models" || p == "/" ||
          p == "/api/version" || p == "/api/tags" || p == "/api/ps")
        return send(r, *w, json_response(405, error_json(p + " takes GET, not " + r.method, "invalid_request_error", "",
                                                         "method_not_allowed")));
      log(r.method + " " + p + ": 404");
      send(r, *w, json_response(404, error_json("unknown endpoint: " + r.method + " " + p, "not_found_error", "",
                                                "not_found")));
    } catch (const std::exception& e) {
      log(r.method + " " + r.path + ": 500 " + e.what());
      send(r, *w, json_response(500, error_json(e.what(), "server_error", "", "")));
    }
  }

  // The Ollama endpoints that answer at once from what the server knows; false: not one of them.
  bool handle_ollama_info(const HttpRequest& r, ResponseWriter& w) {
    const std::string& p = r.path;
    const bool get = r.method == "GET" || r.method == "HEAD";
    if (p == "/" && get) {
      HttpResponse res;
      res.set_header("Content-Type", "text/plain; charset=utf-8");
      res.body = "Ollama is running";
      send(r, w, std::move(res));
      return true;
    }
    if (p == "/api/version" && r.method == "GET") {
      send(r, w, json_response(200, ollama_version_json()));
      return true;
    }
    if (p == "/api/tags" && get) {
      send(r, w, json_response(200, ollama_tags_json(ollama_model)));
      return true;
    }
    if (p == "/api/ps" && r.method == "GET") {
      send(r, w, json_response(200, ollama_ps_json(ollama_model)));
      return true;
    }
    if (p == "/api/show") {
      if (r.method != "POST") {
        send(r, w, json_response(405, ollama_error_json("/api/show takes POST, not " + r.method)));
        return true;
      }
      // Parsed on the event loop: only a body of the size a name needs.
      if (r.body.size() > 65536) {
        send(r, w, json_response(413, ollama_error_json("the /api/show body is larger than 64 KiB")));
        return true;
      }
      try {
        const std::string name = parse_ollama_show_request(r.body);
        if (!ollama_model_matches(ollama_model, name))
          send(r, w, json_response(404, ollama_error_json("model '" + name + "' not found")));
        else
          send(r, w, json_response(200, ollama_show_json(ollama_model)));
      } catch (const RequestError& e) {
        send(r, w, json_response(e.status(), ollama_error_json(e.what())));
      }
      return true;
    }
    return false;
  }

  static const std::vector<std::pair<std::string, std::string>>& no_cors() {
    static const std::vector<std::pair<std::string, std::string>> none;
    return none;
  }

  void admit(const HttpRequest& r, std::shared_ptr<ResponseWriter> w, Api api) {
    if (draining) return send(r, *w, unavailable("the server is shutting down", "shutting_down"));
    const auto ticket = queue.admit();
    if (!ticket) {
      log(r.method + " " + r.path + ": 503 queue full");
      return send(r, *w,
                  unavailable("the server is busy: " + std::to_string(options.queue) +
                                  " requests are already waiting (tandem serve --queue)",
                              "queue_full"));
    }
    auto job = std::make_shared<CompletionJob>();
    job->http = r;
    job->writer = std::move(w);
    job->endpoint = endpoint_of(r.path);
    job->api = api;
    job->chat = api != Api::OpenAIText;
    job->ticket = *ticket;
    job->arrival = Clock::now();
    job->cors = guard->cors_headers(r);
    {
      std::lock_guard lock(workers_mutex);
      ++workers;
    }
    try {
      std::thread([this, job]() mutable {
        work(*job);
        // The job holds the connection, whose destructor reaches into the HTTP layer: gone
        // before the count that lets ~ApiServer destroy that layer.
        job.reset();
        std::lock_guard lock(workers_mutex);
        --workers;
        workers_done.notify_all();
      }).detach();
    } catch (...) {
      queue.finish(*ticket);
      std::lock_guard lock(workers_mutex);
      --workers;
      throw;
    }
  }

  // On the job's thread: parse, wait for the turn, generate, answer.
  void work(CompletionJob& job) {
    struct Finish {
      AdmissionQueue& q;
      uint64_t t;
      ~Finish() { q.finish(t); }
    } finish{queue, job.ticket};
    const HttpRequest& r = job.http;
    ResponseWriter& w = *job.writer;
    try {
      if (is_ollama(job.api)) {
        job.ollama = job.api == Api::OllamaChat ? parse_ollama_chat_request(r.body) : parse_ollama_generate_request(r.body);
        if (!ollama_model_matches(ollama_model, job.ollama.model))
          throw RequestError(404, "not_found_error", "model", "model_not_found",
                             "model '" + job.ollama.model + "' not found");
        job.request = job.ollama.request;
        job.chat = job.request.kind == RequestKind::Chat;  // raw generate: the prompt as it is
        if (job.ollama.load_only) return ollama_loaded(job);
      } else {
        job.request = job.chat ? parse_chat_completion_request(r.body) : parse_text_completion_request(r.body);
      }
      job.prompt = generator.prepare(job.request);
    } catch (const RequestError& e) {
      return send_error(r, w, e, &job.cors);
    } catch (const std::exception& e) {
      log(r.method + " " + r.path + ": 500 " + e.what());
      return send(r, w, json_response(500, error_json(e.what(), "server_error", "", "")), &job.cors);
    }
    job.http.body.clear();
    job.http.body.shrink_to_fit();  // parsed: the raw body is not needed while waiting
    job.meta = {new_response_id(job.chat), unix_now(), is_ollama(job.api) ? ollama_model.name : options.model_name};

    const auto gone = [&] { return w.client_gone() || cut.load(); };
    if (!queue.wait_turn(job.ticket, gone, std::chrono::milliseconds(20))) {
      if (w.client_gone()) {
        log(r.method + " " + r.path + ": client gone while queued (dropped before prefill)");
        metrics.count_request(job.endpoint, 499);
        return;  // no answer: the connection closes when the job lets go of it
      }
      return send(r, w, unavailable("the server is shutting down", "shutting_down"), &job.cors);
    }
    if (job.request.stream)
      stream(job, gone);
    else
      respond(job, gone);
  }

  void account(const CompletionJob& job, const GenerationOutcome& o) {
    if (!o.prefilled) return;
    metrics.add_generation(o.usage.prompt_tokens, o.usage.completion_tokens, o.seconds);
    if (o.first_token_at) metrics.add_time_to_first_token(seconds_between(job.arrival, *o.first_token_at));
  }

  // Whether the reply's <think> part is split out, and whether it is shown at all.
  // A reply sampled under a grammar (structured output, a forced call) is all content: the
  // grammar leaves no room for reasoning even where the prompt opened <think>.
  bool splits_reasoning(const CompletionJob& job) const {
    return job.chat && job.request.split_reasoning.value_or(options.split_reasoning);
  }
  static bool shows_reasoning(const CompletionJob& job) { return !(is_ollama(job.api) && job.ollama.think == false); }

  OllamaTimings ollama_timings(const CompletionJob& job, const GenerationOutcome& o) const {
    OllamaTimings t;
    const auto now = Clock::now();
    const auto end = o.started_at + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
    const auto first = o.first_token_at.value_or(end);
    t.total_ns = nanoseconds(now - job.arrival);
    // The model is loaded once at start: "load" is the wait for the model (parse and queue).
    t.load_ns = nanoseconds(o.started_at - job.arrival);
    t.prompt_eval_ns = nanoseconds(first - o.started_at);
    t.eval_ns = nanoseconds(end - first);
    t.prompt_eval_count = o.usage.prompt_tokens;  // Ollama: the prompt's tokens, cached or not
    t.eval_count = o.usage.completion_tokens;
    return t;
  }

  // An Ollama request with no messages / prompt: "load the model" (it is loaded).
  void ollama_loaded(CompletionJob& job) {
    OllamaTimings t;
    t.total_ns = t.load_ns = nanoseconds(Clock::now() - job.arrival);
    const json body = job.api == Api::OllamaChat ? ollama_final_json(true, ollama_model.name, "", "", "load", t)
                                                 : ollama_final_json(false, ollama_model.name, "", "", "load", t);
    HttpResponse res = json_response(200, body);
    if (job.request.stream) {
      res.set_header("Content-Type", "application/x-ndjson");
      res.body += "\n";
    }
    send(job.http, *job.writer, std::move(res), &job.cors);
  }

  void respond(CompletionJob& job, const std::function<bool()>& gone) {
    const HttpRequest& r = job.http;
    GenerationOutcome o;
    try {
      o = generator.generate(job.prompt, job.request, {}, gone);
    } catch (const std::exception& e) {
      log(r.method + " " + r.path + ": 500 " + e.what());
      return send(r, *job.writer, json_response(500, error_json(e.what(), "server_error", "", "")), &job.cors);
    }
    account(job, o);
    log_outcome(job, o);
    if (o.cancelled && job.writer->client_gone()) {
      metrics.count_request(job.endpoint, 499);
      return;
    }
    ReplyPipeline pipeline(job.prompt.text, splits_reasoning(job) && !job.prompt.grammar, job.prompt.tool_format);
    ReplyPieces reply = pipeline.push(o.text);
    ReplyPieces tail = pipeline.finish();
    reply.reasoning += tail.reasoning;
    reply.content += tail.content;
    for (auto& c : tail.calls) reply.calls.push_back(std::move(c));
    if (!shows_reasoning(job)) reply.reasoning.clear();
    const FinishReason finish = reply.calls.empty() ? o.finish : FinishReason::ToolCalls;
    json body;
    switch (job.api) {
      case Api::OpenAIChat:
        body = chat_completion_json(job.meta, reply.content, finish, o.usage, reply.reasoning, reply.calls);
        break;
      case Api::OpenAIText:
        body = text_completion_json(job.meta, o.text, o.finish, o.usage);
        break;
      case Api::OllamaChat:
      case Api::OllamaGenerate:
        body = ollama_final_json(job.api == Api::OllamaChat, ollama_model.name, reply.content, reply.reasoning,
                                 finish_reason_name(o.finish), ollama_timings(job, o));
        if (!reply.calls.empty() && job.api == Api::OllamaChat) body["message"]["tool_calls"] = ollama_tool_calls_json(reply.calls);
        break;
    }
    send(r, *job.writer, json_response(200, body), &job.cors);
  }

  void stream(CompletionJob& job, const std::function<bool()>& gone) {
    ResponseWriter& w = *job.writer;
    const ResponseMeta& meta = job.meta;
    const bool ollama = is_ollama(job.api);
    const bool ollama_chat = job.api == Api::OllamaChat;
    auto headers = job.cors;
    headers.emplace_back("Content-Type", ollama ? "application/x-ndjson" : "text/event-stream");
    headers.emplace_back("Cache-Control", "no-cache");
    headers.emplace_back("X-Accel-Buffering", "no");  // proxies: pass events on as they come
    metrics.count_request(job.endpoint, 200);
    auto write = [&w](const std::string& s) { return w.write(s); };
    auto event = [&](const json& j) { return write(ollama ? to_text(j) + "\n" : sse_event(j)); };
    if (!w.begin_stream(200, std::move(headers)) ||
        (job.api == Api::OpenAIChat && !event(chat_chunk_json(meta, json{{"role", "assistant"}, {"content", ""}})))) {
      log(job.http.method + " " + job.http.path + ": client gone before generation");
      return w.end_stream();
    }
    const bool show = shows_reasoning(job);
    ReplyPipeline pipeline(job.prompt.text, splits_reasoning(job) && !job.prompt.grammar, job.prompt.tool_format);
    size_t call_index = 0;
    // Sends what is settled; false once the client is gone.
    auto deliver = [&](ReplyPieces piece) {
      if (!show) piece.reasoning.clear();
      if (piece.empty()) return true;
      switch (job.api) {
        case Api::OpenAIChat: {
          if (!piece.reasoning.empty() && !event(chat_chunk_json(meta, json{{"reasoning_content", piece.reasoning}})))
            return false;
          if (!piece.content.empty() && !event(chat_chunk_json(meta, json{{"content", piece.content}}))) return false;
          for (const auto& c : piece.calls) {
            // The call's id and name first, then its arguments, as OpenAI streams them.
            ToolCall head = c;
            head.arguments.clear();
            json args = {{"index", call_index}, {"function", {{"arguments", c.arguments}}}};
            if (!event(chat_chunk_json(meta, json{{"tool_calls", json::array({tool_call_delta_json(call_index, head)})}})) ||
                !event(chat_chunk_json(meta, json{{"tool_calls", json::array({args})}})))
              return false;
            ++call_index;
          }
          return true;
        }
        case Api::OpenAIText:
          return event(text_chunk_json(meta, piece.content));
        case Api::OllamaChat:
        case Api::OllamaGenerate: {
          json chunk = ollama_chunk_json(ollama_chat, ollama_model.name, piece.content, piece.reasoning);
          if (!piece.calls.empty() && ollama_chat) chunk["message"]["tool_calls"] = ollama_tool_calls_json(piece.calls);
          return event(chunk);
        }
      }
      return true;
    };
    GenerationOutcome o;
    try {
      o = generator.generate(
          job.prompt, job.request,
          [&](std::string_view text) { return deliver(pipeline.push(text)); },
          gone);
    } catch (const std::exception& e) {
      // The status line is long gone: report the error as an event and end the stream.
      if (ollama) {
        event(ollama_error_json(e.what()));
      } else {
        event(error_json(e.what(), "server_error", "", ""));
        write(sse_done());
      }
      w.end_stream();
      log(job.http.method + " " + job.http.path + ": error while streaming: " + e.what());
      return;
    }
    account(job, o);
    log_outcome(job, o);
    if (!o.cancelled && deliver(pipeline.finish())) {
      const FinishReason finish = pipeline.calls() > 0 ? FinishReason::ToolCalls : o.finish;
      if (ollama) {
        event(ollama_final_json(ollama_chat, ollama_model.name, "", "", finish_reason_name(o.finish),
                                ollama_timings(job, o)));
      } else {
        const json last = job.api == Api::OpenAIChat ? chat_chunk_json(meta, json::object(), finish)
                                                     : text_chunk_json(meta, "", o.finish);
        // usage only when stream_options.include_usage asks, once, in a chunk of its own.
        if (event(last) && (!job.request.include_usage ||
                            event(usage_chunk_json(meta, job.api == Api::OpenAIChat, o.usage))))
          write(sse_done());
      }
    }
    w.end_stream();
  }

  void wait_for_workers(std::optional<std::chrono::milliseconds> limit) {
    std::unique_lock lock(workers_mutex);
    if (limit)
      workers_done.wait_for(lock, *limit, [&] { return workers == 0; });
    else
      workers_done.wait(lock, [&] { return workers == 0; });
  }
};

ApiServer::ApiServer(CompletionEngine& generator, ApiServerOptions options)
    : impl_(std::make_unique<Impl>(generator, std::move(options))) {}

ApiServer::~ApiServer() {
  stop();
  {
    std::lock_guard lock(impl_->shutdown_mutex);
    if (impl_->shutdown_thread.joinable()) impl_->shutdown_thread.join();
  }
  impl_->wait_for_workers(std::nullopt);
}

int ApiServer::bind(const std::string& host, int port) {
  const ApiServerOptions& o = impl_->options;
  if (o.guard.api_key.empty() && !o.insecure_no_api_key && !is_loopback_host(host))
    fail("--host ", host,
         " lets other machines reach the server, and no API key is set: give --api-key KEY (or TANDEM_API_KEY), "
         "or --insecure-no-api-key to serve without one");
  impl_->guard.emplace(o.guard, host);
  return impl_->http.bind(host, port);
}

void ApiServer::run() { impl_->http.run(); }

void ApiServer::shutdown(std::chrono::milliseconds grace) {
  Impl* impl = impl_.get();
  std::lock_guard lock(impl->shutdown_mutex);
  if (impl->draining.exchange(true)) return;
  impl->http.stop_accepting();
  impl->queue.close();
  impl->shutdown_thread = std::thread([impl, grace] {
    impl->wait_for_workers(grace);
    bool left;
    {
      std::lock_guard w(impl->workers_mutex);
      left = impl->workers > 0;
    }
    if (left) {
      impl->log("shutdown: the running request did not finish in time: cut");
      impl->cut = true;
      impl->wait_for_workers(std::chrono::milliseconds(1000));
    }
    impl->http.stop();
  });
}

void ApiServer::stop() {
  impl_->draining = true;
  impl_->cut = true;
  impl_->queue.close();
  impl_->http.stop();
}

bool ApiServer::running() const { return impl_->http.running(); }

size_t ApiServer::queue_depth() const { return impl_->queue.waiting(); }

}  // namespace tandem::server
