// `tandem serve --model F.gguf [--host H] [--port P] [--gpu N] [--threads N] [--ctx N] [--alias NAME]
// [--parallel N] [--batch-tokens N] [--queue N] [--api-key KEY] [--cors-origin O]... [--allowed-host H]... [--shutdown-timeout S]`:
// an OpenAI-compatible HTTP server (POST /v1/chat/completions, /v1/completions, GET /v1/models,
// /health, /metrics) over one model. The server lives in runtime/server; this file is options, loading
// and signal handling.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/chat/chat_template.h"
#include "runtime/core/error.h"
#include "runtime/core/knobs.h"
#include "runtime/engine/model_loader.h"
#include "runtime/engine/placement_options.h"
#include "runtime/server/api_server.h"
#include "runtime/server/batch_generator.h"
#include "runtime/server/generator.h"
#include "tools/command_registry.h"
#include "tools/load_progress.h"

namespace tandem::tools {
namespace {

// The loaded pass's sequence slots for continuous batching.
BatchedLm* batched_model(LoadedModel& m, int parallel) {
  if (!m.batched || m.batched->slots() != parallel)
    fail("--parallel ", parallel, ": this forward pass cannot hold several sequences; use --parallel 1");
  return m.batched;
}

constexpr int64_t kDefaultContext = 4096;

struct ServeOptions {
  std::string model;
  std::string host = "127.0.0.1";
  int port = 8080;
  int gpu = -1;
  int threads = 0;
  int reserved_cores = 0;
  int64_t ctx = 0;  // 0: the model's training context, at most kDefaultContext
  std::string alias;
  std::string chat_format;
  std::string chat_template_file;
  std::string kv_type = "f16";
  bool kv_type_given = false;
  std::string rules;
  bool reference = false;
  bool cpu_only = false;
  SamplerConfig sampling;
  size_t queue = 16;
  int parallel = 4;  // continuous batching slots; 1: one generation at a time over the CausalLm
  int64_t batch_tokens = 512;
  std::string api_key;
  bool insecure_no_api_key = false;
  std::vector<std::string> cors_origins;
  std::vector<std::string> allowed_hosts;
  double shutdown_timeout = 5;
  std::string reasoning_format = "deepseek";
};

// SIGINT/SIGTERM: a handler (any thread may take the signal: libraries start their own threads)
// writes the signal number into a pipe; a watcher thread reads it. The first signal starts a
// graceful shutdown (no new requests; the running one finishes or is cut after the timeout);
// a second one, or one before the server started (Ctrl-C during a long load), ends the process.
class StopSignals {
 public:
  StopSignals() {
    if (pipe(pipe_) != 0) fail("cannot create a pipe for signal handling");
    write_end_ = pipe_[1];
    struct sigaction sa {};
    sa.sa_handler = [](int sig) {
      const unsigned char b = static_cast<unsigned char>(sig);
      [[maybe_unused]] const ssize_t n = ::write(write_end_, &b, 1);
    };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
    thread_ = std::thread([this] { wait(); });
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
    {
      std::lock_guard lock(mutex_);
      closing_ = true;
    }
    const unsigned char wake = 0;
    [[maybe_unused]] const ssize_t n = ::write(pipe_[1], &wake, 1);
    thread_.join();
    close(pipe_[0]);
    close(pipe_[1]);
  }
  // The server a signal stops; nullptr before it is destroyed.
  void watch(server::ApiServer* api, std::chrono::milliseconds grace) {
    std::lock_guard lock(mutex_);
    api_ = api;
    grace_ = grace;
  }

 private:
  void wait() {
    for (;;) {
      unsigned char sig = 0;
      const ssize_t n = ::read(pipe_[0], &sig, 1);
      if (n < 0 && errno == EINTR) continue;
      std::lock_guard lock(mutex_);
      if (closing_ || n <= 0) return;
      const char* name = sig == SIGINT ? "SIGINT" : "SIGTERM";
      if (!api_) {
        std::fprintf(stderr, "\ntandem serve: %s before the server started\n", name);
        std::_Exit(130);
      }
      if (stopping_) {
        std::fprintf(stderr, "\ntandem serve: second %s: exiting now\n", name);
        std::_Exit(130);
      }
      stopping_ = true;
      std::fprintf(stderr, "\nstopping (%s): finishing the running request, at most %.1f s; again to exit now\n",
                   name, double(grace_.count()) / 1000.0);
      api_->shutdown(grace_);
    }
  }

  static inline int write_end_ = -1;  // for the handler, which cannot capture
  int pipe_[2] = {-1, -1};
  struct sigaction old_int_ {}, old_term_ {};
  std::mutex mutex_;
  bool closing_ = false;
  bool stopping_ = false;
  server::ApiServer* api_ = nullptr;
  std::chrono::milliseconds grace_{5000};
  std::thread thread_;
};

void run_serve(const ServeOptions& o) {
  StopSignals signals;
  if (o.reference && o.cpu_only) fail("--reference and --cpu-only exclude each other");
  if (o.gpu >= 0 && (o.reference || o.cpu_only)) fail("--gpu cannot be combined with --cpu-only or --reference");
  if (o.kv_type_given && o.gpu < 0) fail("--kv-type ", o.kv_type, " sets the GPU's KV cache: it needs --gpu N");
  const gpu::KvCacheType kv_type = gpu::parse_kv_cache_type(o.kv_type);
  if (o.ctx < 0) fail("--ctx ", o.ctx, ": must not be negative");
  if (o.threads < 0) fail("--threads ", o.threads, ": must not be negative");
  if (o.port < 0 || o.port > 65535) fail("--port ", o.port, ": must be in 0..65535");
  if (!(o.shutdown_timeout >= 0 && o.shutdown_timeout <= 3600))
    fail("--shutdown-timeout ", o.shutdown_timeout, ": must be in 0..3600 seconds");
  if (o.queue > 100000) fail("--queue ", o.queue, ": at most 100000");
  if (o.parallel < 1 || o.parallel > 256) fail("--parallel ", o.parallel, ": must be in 1..256");
  if (o.batch_tokens < 1 || o.batch_tokens > 65536) fail("--batch-tokens ", o.batch_tokens, ": must be in 1..65536");
  std::string api_key = o.api_key;
  if (api_key.empty()) api_key = knobs::text("TANDEM_API_KEY").value_or("");
  // Checked before the (long) model load: a network host without a key is refused at once.
  if (api_key.empty() && !o.insecure_no_api_key && !server::is_loopback_host(o.host))
    fail("--host ", o.host,
         " lets other machines reach the server, and no API key is set: give --api-key KEY (or TANDEM_API_KEY), "
         "or --insecure-no-api-key to serve without one");
  validate(o.sampling);
  if (!o.chat_format.empty()) choose_chat_format(std::nullopt, o.chat_format, false);  // rejects unknown names

  ModelLoadOptions lo;
  lo.path = o.reference ? ComputePath::Reference : o.gpu >= 0 ? ComputePath::Gpu : ComputePath::Cpu;
  if (o.gpu >= 0) lo.gpu_index = uint32_t(o.gpu);
  lo.threads = o.threads;
  lo.reserved_cores = o.reserved_cores;
  lo.max_context = uint32_t(o.ctx > 0 ? o.ctx : kDefaultContext);
  lo.kv_type = kv_type;
  lo.sequences = o.parallel;  // each slot its own KV cache of max_context rows
  const RulesPlan plan =
      apply_rules_option(o.rules, o.gpu >= 0 || o.cpu_only || o.reference || o.kv_type_given, o.model, lo);
  lo.progress = announce_load(o.model, plan);
  LoadedModel m = load_model(o.model, lo);
  std::fprintf(stderr, "%s\n", m.description.c_str());

  std::string warning;
  ChatTemplate tmpl = ChatTemplate::for_model(*m.file, *m.tokenizer, ChatTemplateOptions{o.chat_format, o.chat_template_file}, &warning);
  if (!warning.empty()) std::fprintf(stderr, "tandem: warning: %s\n", warning.c_str());

  server::GeneratorOptions go;
  go.sampling = o.sampling;
  const int64_t trained = m.weights->hp.n_ctx_train;
  go.context_limit = o.ctx > 0 ? o.ctx : (trained > 0 ? std::min(trained, kDefaultContext) : kDefaultContext);
  const std::string chat_name(tmpl.name());
  // --parallel 1: one sequence at a time over the CausalLm (as before); more: continuous
  // batching over the model's sequence slots.
  std::unique_ptr<server::CompletionEngine> engine;
  if (o.parallel == 1) {
    engine = std::make_unique<server::Generator>(*m.lm, *m.tokenizer, std::move(tmpl), go);
  } else {
    BatchedLm* batched = batched_model(m, o.parallel);
    server::BatchOptions bo;
    bo.batch_tokens = o.batch_tokens;
    engine = std::make_unique<server::BatchGenerator>(*batched, *m.tokenizer, std::move(tmpl), go, bo);
    go.context_limit = engine->context_limit();
    std::fprintf(stderr, "continuous batching: %d sequences, KV cache for %d x %lld tokens, %lld tokens per step\n",
                 o.parallel, o.parallel, (long long)go.context_limit, (long long)o.batch_tokens);
  }
  server::CompletionEngine& generator = *engine;

  server::ApiServerOptions so;
  so.model_name = o.alias.empty() ? std::filesystem::path(o.model).filename().string() : o.alias;
  so.ollama_model = server::describe_ollama_model(*m.file, so.model_name, go.context_limit);
  so.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  so.queue = o.queue;
  so.guard.api_key = api_key;
  so.guard.cors_origins = o.cors_origins;
  so.guard.allowed_hosts = o.allowed_hosts;
  so.insecure_no_api_key = o.insecure_no_api_key;
  so.split_reasoning = o.reasoning_format != "none";

  server::ApiServer api(generator, so);
  const int port = api.bind(o.host, o.port);
  if (!server::is_loopback_host(o.host) && api_key.empty())
    std::fprintf(stderr, "tandem: warning: serving %s without an API key (--insecure-no-api-key)\n", o.host.c_str());
  const bool v6 = o.host.find(':') != std::string::npos && !o.host.starts_with("[");
  std::fprintf(stderr, "serving '%s' (chat format %s, context %lld tokens) on http://%s%s%s:%d/v1 — Ctrl-C stops\n",
               so.model_name.c_str(), chat_name.c_str(), (long long)go.context_limit, v6 ? "[" : "", o.host.c_str(),
               v6 ? "]" : "", port);
  signals.watch(&api, std::chrono::milliseconds(int64_t(o.shutdown_timeout * 1000)));
  api.run();
  signals.watch(nullptr, {});
}

void setup_serve(CLI::App& root) {
  auto o = std::make_shared<ServeOptions>();
  auto* cmd = root.add_subcommand("serve", "OpenAI-compatible HTTP server (/v1/chat/completions, /v1/completions)");
  cmd->add_option("--model", o->model, "GGUF model (first shard of a split model)")->required();
  cmd->add_option("--host", o->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", o->port, "Port to listen on (0: any free port)")->capture_default_str();
  cmd->add_option("--rules", o->rules, "Placement rules (YAML, see rules/README.md): where each layer, tensor and expert runs");
  cmd->add_option("--gpu", o->gpu, "Run attention and dense layers on this Vulkan device (experts stay on the CPU)");
  cmd->add_option("--threads", o->threads, "CPU expert threads per NUMA node (0: all cores)")->capture_default_str();
  cmd->add_option("--reserve-cores", o->reserved_cores, "Cores of the first NUMA node kept free of expert threads")
      ->capture_default_str();
  cmd->add_option("--ctx", o->ctx, "Context size in tokens (default: the model's, at most 4096)");
  cmd->add_option("--alias", o->alias, "Model name for /v1/models and responses (default: the file name)");
  cmd->add_option("--chat-template-file", o->chat_template_file, "Jinja chat template replacing the GGUF's");
  cmd->add_option("--chat-format", o->chat_format,
                  "Prompt format instead of the detected one: deepseek3, deepseek-r1, deepseek2, deepseek-coder, "
                  "chatml, llama3");
  auto* kv_opt = cmd->add_option("--kv-type", o->kv_type, "With --gpu: latent KV cache element type, f16 or bf16")
                     ->capture_default_str();
  cmd->add_flag("--cpu-only", o->cpu_only, "Keep all work on the CPU (rules/cpu-only.yaml)");
  cmd->add_flag("--reference", o->reference, "Force the plain reference forward pass (slow; for checking)");
  cmd->add_option("--temp", o->sampling.temperature, "Default temperature (requests may override)")
      ->capture_default_str();
  cmd->add_option("--top-k", o->sampling.top_k, "Default top-k (0: off)")->capture_default_str();
  cmd->add_option("--top-p", o->sampling.top_p, "Default top-p (1: off)")->capture_default_str();
  cmd->add_option("--min-p", o->sampling.min_p, "Default min-p (0: off)")->capture_default_str();
  cmd->add_option("--parallel", o->parallel,
                  "Sequences generated together (continuous batching, one model pass per step); each holds a KV "
                  "cache of --ctx tokens, so the cache takes N times the memory of one")
      ->capture_default_str();
  cmd->add_option("--batch-tokens", o->batch_tokens,
                  "With --parallel > 1: tokens one model pass carries at most (decode tokens first, then prompt "
                  "chunks)")
      ->capture_default_str();
  cmd->add_option("--queue", o->queue, "Completion requests that may wait while --parallel generate; more get 503")
      ->capture_default_str();
  cmd->add_option("--api-key", o->api_key,
                  "Key clients must send (Authorization: Bearer KEY or x-api-key: KEY); default: TANDEM_API_KEY");
  cmd->add_flag("--insecure-no-api-key", o->insecure_no_api_key,
                "Allow a --host reachable from other machines without an API key");
  cmd->add_option("--cors-origin", o->cors_origins,
                  "Browser origin allowed to call the API (repeatable; loopback origins always are; * for any)");
  cmd->add_option("--allowed-host", o->allowed_hosts,
                  "Extra name clients may use in the Host header (repeatable; * for any)");
  cmd->add_option("--reasoning-format", o->reasoning_format,
                  "deepseek: a reply's <think>...</think> goes to reasoning_content / message.thinking; none: it stays "
                  "inline in content (a request's reasoning_format overrides)")
      ->check(CLI::IsMember({"deepseek", "none", "auto"}))
      ->capture_default_str();
  cmd->add_option("--shutdown-timeout", o->shutdown_timeout,
                  "Seconds SIGINT/SIGTERM lets the running request finish before cutting it")
      ->capture_default_str();
  cmd->callback([o, kv_opt] {
    ServeOptions run = *o;
    run.kv_type_given = kv_opt->count() > 0;
    run_serve(run);
  });
}

TANDEM_COMMAND(setup_serve);

}  // namespace
}  // namespace tandem::tools
