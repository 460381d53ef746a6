// `tandem chat` (alias `local_chat`): talk to a model. With --prompt, one turn streamed to
// stdout; without, an interactive loop (line editing and history on a terminal, in-chat
// /commands, Ctrl-C stops a reply and keeps the conversation, twice at the prompt leaves).
// Besides tandem's own flags it accepts KTransformers' local_chat flags and llama.cpp's usual
// short ones, so their users' command lines work. The conversation logic lives in
// runtime/chat (ChatSession); this file is options and terminal I/O.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <regex>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/chat/chat_session.h"
#include "runtime/chat/reasoning_splitter.h"
#include "runtime/chat/terminal_input.h"
#include "runtime/core/error.h"
#include "runtime/engine/model_loader.h"
#include "runtime/engine/placement_options.h"
#include "tools/command_registry.h"
#include "tools/load_progress.h"

namespace tandem::tools {
namespace {

constexpr int64_t kDefaultContext = 4096;
constexpr const char* kDim = "\x1b[2m";
constexpr const char* kUndim = "\x1b[0m";

struct ChatOptions {
  std::string model;                  // --model / -m
  std::string gguf_path, model_path;  // KTransformers: the GGUF (or its folder), the HF folder
  std::optional<std::string> prompt;
  std::string prompt_file;  // KTransformers --prompt_file: one turn with the file's text
  std::string system;
  int n_predict = 256;
  SamplerConfig sampling;
  std::optional<uint64_t> seed;
  std::string chat_format;
  std::string chat_template_file;
  bool cpu_only = false;
  bool reference = false;
  int gpu = -1;
  int64_t ctx = 0;  // 0: the model's training context, at most kDefaultContext
  int threads = 0;  // 0: all cores
  std::string kv_type = "f16";
  bool kv_type_given = false;
  std::string rules;
  bool force_think = false;
  bool verbose = false;
  std::vector<std::string> ignored;  // KTransformers flags that mean nothing here
};

// A model path may be a folder (KTransformers' --gguf_path): the .gguf inside, or the first
// shard of a split model. Several unrelated .gguf files are an error that lists them.
std::string resolve_model_path(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return path;
  std::vector<std::string> ggufs;
  for (const auto& e : fs::directory_iterator(path, ec))
    if (e.is_regular_file() && e.path().extension() == ".gguf") ggufs.push_back(e.path().string());
  std::sort(ggufs.begin(), ggufs.end());
  if (ggufs.empty()) fail(path, ": a folder with no .gguf file in it");
  if (ggufs.size() == 1) return ggufs[0];
  static const std::regex shard(R"((.*)-(\d{5})-of-(\d{5})\.gguf)");
  std::smatch m0;
  if (std::regex_match(ggufs[0], m0, shard) && m0[2] == "00001") {
    const bool one_model = std::all_of(ggufs.begin(), ggufs.end(), [&](const std::string& g) {
      std::smatch m;
      return std::regex_match(g, m, shard) && m[1] == m0[1] && m[3] == m0[3];
    });
    if (one_model) return ggufs[0];
  }
  std::string list;
  for (const auto& g : ggufs) list += "\n  " + g;
  fail(path, ": several .gguf files, name one with --model:", list);
}

std::string duration_text(double seconds) {
  char buf[64];
  if (seconds < 1.0) std::snprintf(buf, sizeof buf, "%.3fms", seconds * 1e3);
  else std::snprintf(buf, sizeof buf, "%.3fs", seconds);
  return buf;
}

// Ollama's --verbose block. Prompt eval counts the tokens fed this turn (the rest of the
// prompt came from the KV cache, as in Ollama).
void print_stats(const TurnStats& s) {
  const double prompt_rate = s.prompt_seconds > 0 ? double(s.fed_tokens) / s.prompt_seconds : 0.0;
  const double rate = s.decode_seconds > 0 ? double(s.generated_tokens) / s.decode_seconds : 0.0;
  std::fprintf(stderr,
               "total duration:       %s\n"
               "prompt eval count:    %lld token(s) (%lld from the cache)\n"
               "prompt eval duration: %s\n"
               "prompt eval rate:     %.2f tokens/s\n"
               "eval count:           %lld token(s)\n"
               "eval duration:        %s\n"
               "eval rate:            %.2f tokens/s\n"
               "stop:                 %s\n",
               duration_text(s.prompt_seconds + s.decode_seconds).c_str(), (long long)s.fed_tokens,
               (long long)(s.prompt_tokens - s.fed_tokens), duration_text(s.prompt_seconds).c_str(), prompt_rate,
               (long long)s.generated_tokens, duration_text(s.decode_seconds).c_str(), rate,
               std::string(stop_reason_name(s.stop)).c_str());
}

// Streams one reply to stdout: on a terminal the reasoning is dimmed, elsewhere the text is
// written as the model produced it.
void run_turn(ChatSession& session, const std::string& text, bool show_stats) {
  const bool tty = isatty(STDOUT_FILENO) == 1;
  std::optional<ReasoningSplitter> splitter;
  bool dimmed = false;
  bool reasoning_ended_line = true;
  auto show = [&](const ReasoningPiece& p) {
    if (!p.reasoning.empty()) {
      if (!dimmed) std::fputs(kDim, stdout);
      dimmed = true;
      std::fwrite(p.reasoning.data(), 1, p.reasoning.size(), stdout);
      reasoning_ended_line = p.reasoning.back() == '\n';
    }
    if (!p.content.empty()) {
      if (dimmed) {
        std::fputs(kUndim, stdout);
        std::fputs(reasoning_ended_line ? "\n" : "\n\n", stdout);
        dimmed = false;
      }
      std::fwrite(p.content.data(), 1, p.content.size(), stdout);
    }
  };
  clear_interrupt();
  const ChatTurn turn = session.send(
      text,
      [&](TokenId, std::string_view piece) {
        if (!tty) {
          std::fwrite(piece.data(), 1, piece.size(), stdout);
        } else {
          // The prompt is known once tokens come: it tells whether the template opened <think>.
          if (!splitter) splitter.emplace(ReasoningSplitter::prompt_opens_reasoning(session.last_prompt_text()));
          show(splitter->push(piece));
        }
        std::fflush(stdout);
      },
      [] { return interrupt_requested(); });
  if (splitter) show(splitter->finish());
  if (dimmed) std::fputs(kUndim, stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  if (turn.stats.stop == StopReason::Interrupted) {
    clear_interrupt();
    std::fprintf(stderr, "[interrupted: the partial reply stays in the conversation]\n");
  }
  if (show_stats) print_stats(turn.stats);
  if (turn.stats.stop == StopReason::ContextFull)
    std::fprintf(stderr, "[the context is full: /clear to start over, or raise --ctx]\n");
}

constexpr const char* kHelp =
    "Commands (never sent to the model):\n"
    "  /help          this list\n"
    "  /clear         forget the conversation (the system prompt stays)\n"
    "  /save FILE     write the conversation to FILE (JSON)\n"
    "  /load FILE     replace the conversation with one saved by /save\n"
    "  /exit          leave (also /bye, Ctrl-D, or Ctrl-C twice at the prompt)\n"
    "Ctrl-C during a reply stops it and keeps the conversation.\n";

void save_conversation(const ChatSession& session, const std::string& path) {
  nlohmann::ordered_json j;
  j["system"] = session.system_prompt();
  j["messages"] = nlohmann::ordered_json::array();
  for (const auto& m : session.messages()) j["messages"].push_back({{"role", m.role}, {"content", m.content}});
  std::ofstream out(path, std::ios::binary);
  if (!out) fail("/save ", path, ": cannot write it");
  out << j.dump(2) << "\n";
  if (!out) fail("/save ", path, ": write error");
}

// Accepts what /save writes, or a bare OpenAI-style messages array (system messages first).
void load_conversation(ChatSession& session, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("/load ", path, ": cannot open it");
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("/load ", path, ": not JSON (", e.what(), ")");
  }
  std::string system;
  if (j.is_object()) {
    if (j.contains("system") && j["system"].is_string()) system = j["system"].get<std::string>();
    j = j.value("messages", nlohmann::ordered_json());
  }
  if (!j.is_array()) fail("/load ", path, ": expected {\"messages\": [...]} or an array of messages");
  std::vector<ChatMessage> messages;
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& m = j[i];
    if (!m.is_object() || !m.value("role", nlohmann::ordered_json()).is_string() ||
        !m.value("content", nlohmann::ordered_json()).is_string())
      fail("/load ", path, ": message ", i, " needs string role and content");
    ChatMessage cm{m["role"].get<std::string>(), m["content"].get<std::string>()};
    if (cm.role == "system" && messages.empty()) {
      system += (system.empty() ? "" : "\n\n") + cm.content;
      continue;
    }
    messages.push_back(std::move(cm));
  }
  try {
    session.set_messages(std::move(messages));
  } catch (const Error& e) {
    fail("/load ", path, ": ", e.what());
  }
  session.set_system_prompt(system);
}

// Runs one /command; false: leave the chat.
bool run_command(ChatSession& session, const std::string& line) {
  std::istringstream words(line);
  std::string cmd, arg;
  words >> cmd;
  std::getline(words >> std::ws, arg);
  while (!arg.empty() && (arg.back() == ' ' || arg.back() == '\t')) arg.pop_back();
  if (cmd == "/exit" || cmd == "/bye" || cmd == "/quit") return false;
  if (cmd == "/help" || cmd == "/?") {
    std::fputs(kHelp, stderr);
  } else if (cmd == "/clear" || cmd == "/reset") {
    session.reset();
    std::fprintf(stderr, "[conversation cleared]\n");
  } else if (cmd == "/save" || cmd == "/load") {
    if (arg.empty()) {
      std::fprintf(stderr, "tandem: %s needs a file name\n", cmd.c_str());
    } else if (cmd == "/save") {
      save_conversation(session, arg);
      std::fprintf(stderr, "[saved %zu messages to %s]\n", session.messages().size(), arg.c_str());
    } else {
      load_conversation(session, arg);
      std::fprintf(stderr, "[loaded %zu messages from %s]\n", session.messages().size(), arg.c_str());
    }
  } else {
    std::fprintf(stderr, "tandem: unknown command %s (not sent to the model; /help lists them)\n", cmd.c_str());
  }
  return true;
}

void interactive(ChatSession& session, bool show_stats) {
  LineReader reader("> ");
  if (reader.terminal())
    std::fprintf(stderr, "Type a message; /help lists the commands, /exit (or Ctrl-D) leaves.\n");
  int interrupts = 0;  // Ctrl-C at the prompt in a row
  std::string line;
  for (;;) {
    const LineReader::Result r = reader.read(line);
    if (r == LineReader::Result::End) break;
    if (r == LineReader::Result::Interrupted) {
      if (++interrupts >= 2) break;
      std::fprintf(stderr, "[Ctrl-C again, /exit or Ctrl-D to leave]\n");
      continue;
    }
    interrupts = 0;
    const size_t b = line.find_first_not_of(" \t");
    if (b == std::string::npos) continue;
    try {
      if (line[b] == '/') {
        if (!run_command(session, line.substr(b))) break;
        continue;
      }
      run_turn(session, line, show_stats);
    } catch (const Error& e) {
      // One failed turn or command (the context overflowing, a bad file) does not end the chat.
      std::fprintf(stderr, "tandem: error: %s\n", e.what());
    }
  }
}

std::string read_prompt_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("--prompt_file ", path, ": cannot open it");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void run_chat(ChatOptions o) {
  if (!o.ignored.empty()) {
    std::string names;
    for (const auto& n : o.ignored) names += (names.empty() ? "" : ", ") + n;
    std::fprintf(stderr, "tandem: warning: KTransformers flags with no meaning here, ignored: %s\n", names.c_str());
  }
  // --gguf_path names the GGUF; --model_path is KTransformers' Hugging Face folder, used only
  // when nothing else names the model.
  std::string model = !o.model.empty() ? o.model : !o.gguf_path.empty() ? o.gguf_path : o.model_path;
  if (model.empty()) fail("a model is required: --model FILE (or -m, --gguf_path, --model_path)");
  model = resolve_model_path(model);
  if (o.reference && o.cpu_only) fail("--reference and --cpu-only exclude each other");
  if (o.gpu >= 0 && (o.reference || o.cpu_only)) fail("--gpu cannot be combined with --cpu-only or --reference");
  if (o.kv_type_given && o.gpu < 0) fail("--kv-type ", o.kv_type, " sets the GPU's KV cache: it needs --gpu N");
  const gpu::KvCacheType kv_type = gpu::parse_kv_cache_type(o.kv_type);
  if (o.n_predict <= 0) fail("-n ", o.n_predict, ": must be positive");
  if (o.ctx < 0) fail("--ctx ", o.ctx, ": must not be negative");
  if (o.threads < 0) fail("--threads ", o.threads, ": must not be negative");
  validate(o.sampling);  // before the (slow) model load
  if (!o.chat_format.empty()) choose_chat_format(std::nullopt, o.chat_format, false);  // rejects unknown names
  if (!o.chat_format.empty() && !o.chat_template_file.empty())
    fail("--chat-format and --chat-template-file exclude each other");
  if (!o.chat_template_file.empty()) ChatTemplate::check_template_file(o.chat_template_file);
  if (!o.prompt_file.empty()) {
    if (o.prompt) fail("--prompt and --prompt_file exclude each other");
    o.prompt = read_prompt_file(o.prompt_file);
  }

  ModelLoadOptions lo;
  lo.path = o.reference ? ComputePath::Reference : o.gpu >= 0 ? ComputePath::Gpu : ComputePath::Cpu;
  if (o.gpu >= 0) lo.gpu_index = uint32_t(o.gpu);
  lo.max_context = uint32_t(o.ctx > 0 ? o.ctx : kDefaultContext);  // the GPU's KV cache size
  lo.kv_type = kv_type;
  lo.threads = o.threads;
  const RulesPlan plan =
      apply_rules_option(o.rules, o.gpu >= 0 || o.cpu_only || o.reference || o.kv_type_given, model, lo);
  lo.progress = announce_load(model, plan);
  LoadedModel m = load_model(model, lo);
  std::fprintf(stderr, "%s\n", m.description.c_str());

  std::string warning;
  ChatTemplate tmpl =
      ChatTemplate::for_model(*m.file, *m.tokenizer, ChatTemplateOptions{o.chat_format, o.chat_template_file}, &warning);
  if (!warning.empty()) std::fprintf(stderr, "tandem: warning: %s\n", warning.c_str());

  ChatSessionOptions so;
  so.sampling = o.sampling;
  so.sampling.seed = o.seed ? *o.seed : std::random_device{}();
  so.max_new_tokens = o.n_predict;
  if (o.force_think) so.reasoning_prefix = "<think>\n";
  const int64_t trained = m.weights->hp.n_ctx_train;
  so.context_limit = o.ctx > 0 ? o.ctx : (trained > 0 ? std::min(trained, kDefaultContext) : kDefaultContext);
  std::fprintf(stderr, "chat template: %s; end of turn as %s; context %lld tokens, seed %llu\n",
               tmpl.description().c_str(), std::string(tmpl.name()).c_str(), (long long)so.context_limit,
               (unsigned long long)so.sampling.seed);

  ChatSession session(*m.lm, *m.tokenizer, std::move(tmpl), so);
  session.set_system_prompt(o.system);
  install_interrupt_handler();  // Ctrl-C stops a reply instead of the program
  // Stats: with --verbose, and always when a person watches (stdout is a terminal).
  const bool show_stats = o.verbose || isatty(STDOUT_FILENO) == 1;

  if (o.prompt) {
    run_turn(session, *o.prompt, show_stats);
    return;
  }
  interactive(session, show_stats);
}

void add_chat_command(CLI::App& root, const std::string& name, const std::string& help) {
  auto o = std::make_shared<ChatOptions>();
  auto seed = std::make_shared<uint64_t>(0);
  auto prompt = std::make_shared<std::string>();
  auto force_think = std::make_shared<std::string>();
  auto ignored_value = std::make_shared<std::string>();
  auto* cmd = root.add_subcommand(name, help);
  cmd->add_option("-m,--model", o->model, "GGUF model (first shard of a split model), or a folder holding one");
  auto* prompt_opt = cmd->add_option("-p,--prompt", *prompt, "One user message: reply once and exit");
  cmd->add_option("--system", o->system, "System prompt");
  cmd->add_option("-n,--n-predict,--max_new_tokens", o->n_predict, "Most tokens per reply")->capture_default_str();
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
  auto* seed_opt = cmd->add_option("-s,--seed", *seed, "Random seed (default: a random one, printed)");
  cmd->add_option("--chat-template-file", o->chat_template_file,
                  "Jinja chat template to use instead of the GGUF's tokenizer.chat_template");
  cmd->add_option("--chat-format", o->chat_format,
                  "Hand-written prompt format instead of the model's template: deepseek3, deepseek-r1, deepseek2, "
                  "deepseek-coder, chatml, llama3");
  cmd->add_flag("--cpu-only", o->cpu_only, "Keep all work on the CPU");
  cmd->add_flag("--reference", o->reference, "Force the plain reference forward pass");
  cmd->add_option("--rules,--optimize_config_path", o->rules,
                  "Placement rules (YAML, see rules/README.md): where each layer, tensor and expert runs");
  cmd->add_option("--gpu", o->gpu, "Run attention and dense layers on this Vulkan device (experts stay on the CPU)");
  cmd->add_option("-c,--ctx,--ctx-size", o->ctx, "Context size in tokens (default: the model's, at most 4096)");
  cmd->add_option("-t,--threads,--cpu_infer", o->threads, "CPU threads (0: all cores)")->capture_default_str();
  auto* kv_opt = cmd->add_option("--kv-type", o->kv_type, "With --gpu: latent KV cache element type, f16 or bf16")
                     ->capture_default_str();
  cmd->add_flag("--verbose", o->verbose, "Timing after each reply (always shown when stdout is a terminal)");
  // KTransformers' local_chat flags.
  cmd->add_option("--gguf_path", o->gguf_path, "KTransformers: the GGUF, or the folder holding it");
  cmd->add_option("--model_path", o->model_path, "KTransformers: model folder (used when it holds the GGUF)");
  cmd->add_option("--prompt_file", o->prompt_file, "KTransformers: one user message read from this file");
  auto* think_opt = cmd->add_option("--force_think", *force_think, "Start each reply inside <think> (R1-style models)")
                        ->expected(0, 1);
  std::vector<CLI::Option*> meaningless;
  for (const char* flag : {"--use_cuda_graph", "--mode", "--chunk_size", "--q4_gguf_path"})
    meaningless.push_back(
        cmd->add_option(flag, *ignored_value, "KTransformers flag, accepted and ignored")->expected(0, 1));
  cmd->callback([o, seed, prompt, prompt_opt, seed_opt, kv_opt, think_opt, force_think, meaningless, ignored_value] {
    (void)ignored_value;  // held here: the ignored flags write into it while parsing
    ChatOptions run = *o;
    run.kv_type_given = kv_opt->count() > 0;
    if (prompt_opt->count() > 0) run.prompt = *prompt;
    if (seed_opt->count() > 0) run.seed = *seed;
    if (think_opt->count() > 0) {
      const std::string& v = *force_think;
      if (v.empty() || v == "true" || v == "True" || v == "1") run.force_think = true;
      else if (v == "false" || v == "False" || v == "0") run.force_think = false;
      else fail("--force_think ", v, ": expected true or false");
    }
    for (const auto* opt : meaningless)
      if (opt->count() > 0) run.ignored.push_back(opt->get_name());
    run_chat(std::move(run));
  });
}

void setup_chat(CLI::App& root) {
  add_chat_command(root, "chat", "Chat with a model: one reply with --prompt, else an interactive loop");
  add_chat_command(root, "local_chat", "Same as chat (accepts KTransformers' local_chat flags)");
}

TANDEM_COMMAND(setup_chat);

}  // namespace
}  // namespace tandem::tools
