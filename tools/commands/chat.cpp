// `tandem chat` (alias `local_chat`): talk to a model. With --prompt, one turn streamed to
// stdout; without, an interactive loop over stdin lines (/reset, /exit). The conversation logic
// lives in runtime/chat (ChatSession); this file is options and terminal I/O.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "runtime/chat/chat_session.h"
#include "runtime/core/error.h"
#include "runtime/engine/model_loader.h"
#include "runtime/engine/placement_options.h"
#include "tools/command_registry.h"

namespace tandem::tools {
namespace {

constexpr int64_t kDefaultContext = 4096;

struct ChatOptions {
  std::string model;
  std::optional<std::string> prompt;
  std::string system;
  int n_predict = 256;
  SamplerConfig sampling;
  std::optional<uint64_t> seed;
  std::string chat_format;
  bool cpu_only = false;
  bool reference = false;
  int gpu = -1;
  int64_t ctx = 0;  // 0: the model's training context, at most kDefaultContext
  std::string kv_type = "f16";
  bool kv_type_given = false;
  std::string rules;
};

void print_stats(const TurnStats& s) {
  const double prompt_rate = s.prompt_seconds > 0 ? double(s.fed_tokens) / s.prompt_seconds : 0.0;
  const double decode_rate = s.decode_seconds > 0 ? double(s.generated_tokens) / s.decode_seconds : 0.0;
  std::fprintf(stderr,
               "[prompt: %lld tokens (%lld fed) %.1f tok/s | generated: %lld tokens %.1f tok/s | stop: %s]\n",
               (long long)s.prompt_tokens, (long long)s.fed_tokens, prompt_rate, (long long)s.generated_tokens,
               decode_rate, std::string(stop_reason_name(s.stop)).c_str());
  if (s.stop == StopReason::ContextFull)
    std::fprintf(stderr, "[the context is full: /reset to start over, or raise --ctx]\n");
}

// Streams one reply to stdout and prints its stats line.
void run_turn(ChatSession& session, const std::string& text) {
  const ChatTurn turn = session.send(text, [](TokenId, std::string_view piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  });
  std::fputc('\n', stdout);
  std::fflush(stdout);
  print_stats(turn.stats);
}

void run_chat(ChatOptions o) {
  if (o.reference && o.cpu_only) fail("--reference and --cpu-only exclude each other");
  if (o.gpu >= 0 && (o.reference || o.cpu_only)) fail("--gpu cannot be combined with --cpu-only or --reference");
  if (o.kv_type_given && o.gpu < 0) fail("--kv-type ", o.kv_type, " sets the GPU's KV cache: it needs --gpu N");
  const gpu::KvCacheType kv_type = gpu::parse_kv_cache_type(o.kv_type);
  if (o.n_predict <= 0) fail("-n ", o.n_predict, ": must be positive");
  if (o.ctx < 0) fail("--ctx ", o.ctx, ": must not be negative");
  validate(o.sampling);  // before the (slow) model load
  if (!o.chat_format.empty()) choose_chat_format(std::nullopt, o.chat_format, false);  // rejects unknown names

  ModelLoadOptions lo;
  lo.path = o.reference ? ComputePath::Reference : o.gpu >= 0 ? ComputePath::Gpu : ComputePath::Cpu;
  if (o.gpu >= 0) lo.gpu_index = uint32_t(o.gpu);
  lo.max_context = uint32_t(o.ctx > 0 ? o.ctx : kDefaultContext);  // the GPU's KV cache size
  lo.kv_type = kv_type;
  apply_rules_option(o.rules, o.gpu >= 0 || o.cpu_only || o.reference || o.kv_type_given, o.model, lo);
  LoadedModel m = load_model(o.model, lo);
  std::fprintf(stderr, "%s\n", m.description.c_str());

  std::string warning;
  ChatTemplate tmpl = ChatTemplate::for_model(*m.file, *m.tokenizer, o.chat_format, &warning);
  if (!warning.empty()) std::fprintf(stderr, "tandem: warning: %s\n", warning.c_str());

  ChatSessionOptions so;
  so.sampling = o.sampling;
  so.sampling.seed = o.seed ? *o.seed : std::random_device{}();
  so.max_new_tokens = o.n_predict;
  const int64_t trained = m.weights->hp.n_ctx_train;
  so.context_limit = o.ctx > 0 ? o.ctx : (trained > 0 ? std::min(trained, kDefaultContext) : kDefaultContext);
  std::fprintf(stderr, "chat format %s, context %lld tokens, seed %llu\n", std::string(tmpl.name()).c_str(),
               (long long)so.context_limit, (unsigned long long)so.sampling.seed);

  ChatSession session(*m.lm, *m.tokenizer, std::move(tmpl), so);
  session.set_system_prompt(o.system);

  if (o.prompt) {
    run_turn(session, *o.prompt);
    return;
  }
  const bool tty = isatty(STDIN_FILENO);
  if (tty) std::fprintf(stderr, "Type a message; /reset clears the conversation, /exit (or EOF) ends.\n");
  std::string line;
  for (;;) {
    if (tty) std::fprintf(stderr, "> ");
    if (!std::getline(std::cin, line) || line == "/exit") break;
    if (line == "/reset") {
      session.reset();
      std::fprintf(stderr, "[conversation cleared]\n");
      continue;
    }
    if (line.empty()) continue;
    try {
      run_turn(session, line);
    } catch (const Error& e) {
      // One failed turn (e.g. the context overflowing) does not end the conversation.
      std::fprintf(stderr, "tandem: error: %s\n", e.what());
    }
  }
}

void add_chat_command(CLI::App& root, const std::string& name, const std::string& help) {
  auto o = std::make_shared<ChatOptions>();
  auto seed = std::make_shared<uint64_t>(0);
  auto prompt = std::make_shared<std::string>();
  auto* cmd = root.add_subcommand(name, help);
  cmd->add_option("--model", o->model, "GGUF model (first shard of a split model)")->required();
  auto* prompt_opt = cmd->add_option("--prompt", *prompt, "One user message: reply once and exit");
  cmd->add_option("--system", o->system, "System prompt");
  cmd->add_option("-n,--n-predict", o->n_predict, "Most tokens per reply")->capture_default_str();
  cmd->add_option("--temp", o->sampling.temperature, "Temperature (0: greedy)")->capture_default_str();
  cmd->add_option("--top-k", o->sampling.top_k, "Keep the K most likely tokens (0: off)")->capture_default_str();
  cmd->add_option("--top-p", o->sampling.top_p, "Nucleus: smallest set with this mass (1: off)")->capture_default_str();
  cmd->add_option("--min-p", o->sampling.min_p, "Drop tokens below this fraction of the best (0: off)")
      ->capture_default_str();
  cmd->add_option("--repeat-penalty", o->sampling.repeat_penalty, "Penalty for recent tokens (1: off)")
      ->capture_default_str();
  cmd->add_option("--presence-penalty", o->sampling.presence_penalty, "Subtracted once per recent token")
      ->capture_default_str();
  cmd->add_option("--frequency-penalty", o->sampling.frequency_penalty, "Subtracted per recent occurrence")
      ->capture_default_str();
  cmd->add_option("--repeat-last-n", o->sampling.penalty_window, "Recent window of the penalties")
      ->capture_default_str();
  auto* seed_opt = cmd->add_option("--seed", *seed, "Random seed (default: a random one, printed)");
  cmd->add_option("--chat-format", o->chat_format,
                  "Prompt format instead of the detected one: deepseek3, deepseek-r1, deepseek2, deepseek-coder, "
                  "chatml, llama3");
  cmd->add_flag("--cpu-only", o->cpu_only, "Keep all work on the CPU");
  cmd->add_flag("--reference", o->reference, "Force the plain reference forward pass");
  cmd->add_option("--rules", o->rules, "Placement rules (YAML, see rules/README.md): where each layer, tensor and expert runs");
  cmd->add_option("--gpu", o->gpu, "Run attention and dense layers on this Vulkan device (experts stay on the CPU)");
  cmd->add_option("--ctx", o->ctx, "Context size in tokens (default: the model's, at most 4096)");
  auto* kv_opt = cmd->add_option("--kv-type", o->kv_type, "With --gpu: latent KV cache element type, f16 or bf16")
                     ->capture_default_str();
  cmd->callback([o, seed, prompt, prompt_opt, seed_opt, kv_opt] {
    ChatOptions run = *o;
    run.kv_type_given = kv_opt->count() > 0;
    if (prompt_opt->count() > 0) run.prompt = *prompt;
    if (seed_opt->count() > 0) run.seed = *seed;
    run_chat(std::move(run));
  });
}

void setup_chat(CLI::App& root) {
  add_chat_command(root, "chat", "Chat with a model: one reply with --prompt, else an interactive loop");
  add_chat_command(root, "local_chat", "Same as chat");
}

TANDEM_COMMAND(setup_chat);

}  // namespace
}  // namespace tandem::tools
