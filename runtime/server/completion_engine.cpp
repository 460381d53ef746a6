#include "runtime/server/completion_engine.h"

#include <algorithm>
#include <random>

#include "runtime/core/error.h"
#include "runtime/server/request_error.h"
#include "runtime/tokenizer/tokenizer.h"

namespace tandem::server {
namespace {

// The reply's token vocabulary for constrained sampling: stop tokens are allowed separately,
// added tokens (control, user-defined) only where the grammar spells markup.
std::shared_ptr<const ConstraintVocab> build_constraint_vocab(const Tokenizer& tok, std::span<const TokenId> stops) {
  const BpeVocab& v = tok.vocab();
  std::vector<std::string> bytes(v.size());
  std::vector<uint8_t> added(v.size(), 0), excluded(v.size(), 0);
  for (size_t i = 0; i < v.size(); ++i) {
    const TokenId id = TokenId(i);
    const TokenType t = v.type(id);
    if (t == TokenType::Unused || std::find(stops.begin(), stops.end(), id) != stops.end()) {
      excluded[i] = 1;
      continue;
    }
    added[i] = t == TokenType::Control || t == TokenType::UserDefined || t == TokenType::Unknown;
    bytes[i] = tok.piece(id, true);
  }
  return std::make_shared<const ConstraintVocab>(std::move(bytes), std::move(added), std::move(excluded));
}

nlohmann::ordered_json tools_json(const std::vector<ToolFunction>& tools) {
  nlohmann::ordered_json a = nlohmann::ordered_json::array();
  for (const auto& t : tools) {
    nlohmann::ordered_json fn = {{"name", t.name}};
    if (!t.description.empty()) fn["description"] = t.description;
    fn["parameters"] = t.parameters.is_null() ? nlohmann::ordered_json::object()
                                              : nlohmann::ordered_json::parse(t.parameters.dump());
    a.push_back({{"type", "function"}, {"function", std::move(fn)}});
  }
  return a;
}

}  // namespace

std::vector<TokenId> PromptHistory::lookup(RequestKind kind, const std::string& text, size_t& text_size) const {
  std::lock_guard lock(mutex_);
  const Entry* best = nullptr;
  for (const auto& e : entries_)
    if (e.kind == kind && !e.text.empty() && text.starts_with(e.text) && (!best || e.text.size() > best->text.size()))
      best = &e;
  text_size = best ? best->text.size() : 0;
  return best ? best->tokens : std::vector<TokenId>();
}

void PromptHistory::record(RequestKind kind, std::string text, std::vector<TokenId> tokens) {
  if (capacity_ == 0) return;
  std::lock_guard lock(mutex_);
  // The same text again (a regenerated reply) replaces its entry.
  std::erase_if(entries_, [&](const Entry& e) { return e.kind == kind && e.text == text; });
  entries_.push_front(Entry{kind, std::move(text), std::move(tokens)});
  while (entries_.size() > capacity_) entries_.pop_back();
}

void PromptHistory::clear() {
  std::lock_guard lock(mutex_);
  entries_.clear();
}

CompletionEngine::CompletionEngine(const Tokenizer& tokenizer, ChatTemplate chat_template, GeneratorOptions options,
                                   int64_t n_vocab, size_t history)
    : tokenizer_(tokenizer),
      template_(std::move(chat_template)),
      options_(std::move(options)),
      n_vocab_(n_vocab),
      stop_tokens_(template_.end_of_generation_tokens(tokenizer_)),
      history_(history) {
  if (options_.context_limit < 2) fail("--ctx ", options_.context_limit, ": must be at least 2");
  validate(options_.sampling);
}

std::shared_ptr<const ConstraintVocab> CompletionEngine::constraint_vocab() const {
  std::lock_guard lock(vocab_mutex_);
  if (!constraint_vocab_) constraint_vocab_ = build_constraint_vocab(tokenizer_, stop_tokens_);
  return constraint_vocab_;
}

PreparedPrompt CompletionEngine::prepare(const CompletionRequest& r) const {
  PreparedPrompt p;
  p.kind = r.kind;
  const char* param = r.kind == RequestKind::Chat ? "messages" : "prompt";
  bool add_special = false;
  if (r.kind == RequestKind::Chat) {
    const bool tools = r.tools_active();
    const ToolCallFormat format = template_.tool_call_format();
    if (tools && format == ToolCallFormat::None)
      throw RequestError::invalid("tools", "tools: this model's chat format (" + std::string(template_.name()) +
                                               ") has no tool-call format");
    bool plain = !tools && !r.enable_thinking;
    for (const auto& m : r.messages) plain &= m.tool_calls.empty() && m.role != "tool";
    try {
      if (plain) {
        p.text = template_.render(r.messages, true);
      } else {
        nlohmann::ordered_json messages = template_.messages_json(r.messages);
        nlohmann::ordered_json vars = nlohmann::ordered_json::object();
        // Both names: Qwen3 templates read enable_thinking, DeepSeek V3.1 reads thinking.
        if (r.enable_thinking) vars["enable_thinking"] = vars["thinking"] = *r.enable_thinking;
        if (tools && template_.uses_jinja() && template_.renders_tools()) {
          vars["tools"] = tools_json(r.tools);
        } else if (tools) {
          // The template does not show the tools to the model: a system message does.
          const std::string text = tools_system_text(format, r.tools);
          if (!messages.empty() && messages[0]["role"] == "system" && messages[0]["content"].is_string())
            messages[0]["content"] = messages[0]["content"].get<std::string>() + "\n\n" + text;
          else
            messages.insert(messages.begin(), nlohmann::ordered_json{{"role", "system"}, {"content", text}});
        }
        p.text = template_.render_json(messages, true, vars);
      }
    } catch (const Error& e) {
      throw RequestError::invalid("messages", std::string("the chat template cannot render these messages: ") + e.what());
    }
    p.trim_leading_space = template_.format() == ChatFormat::Deepseek2;
    if (tools) p.tool_format = format;
    if (tools && (r.tool_choice == ToolChoice::Required || r.tool_choice == ToolChoice::Named)) {
      try {
        p.grammar = tool_call_grammar(format, r.tools, r.tool_choice == ToolChoice::Named ? r.tool_choice_name : "");
      } catch (const SchemaError& e) {
        throw RequestError::invalid(e.path().empty() ? "tools" : e.path(), e.what(), "unsupported_schema");
      }
    }
  } else if (const auto* text = std::get_if<std::string>(&r.prompt)) {
    p.text = *text;
    add_special = true;  // BOS when the vocabulary asks for it
  } else {
    const auto& ids = std::get<std::vector<int64_t>>(r.prompt);
    const int64_t n_vocab = std::min<int64_t>(n_vocab_, int64_t(tokenizer_.vocab().size()));
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] >= n_vocab)
        throw RequestError::invalid("prompt", "prompt token " + std::to_string(i) + " is " + std::to_string(ids[i]) +
                                                  ", outside the vocabulary of " + std::to_string(n_vocab) + " tokens");
      p.tokens.push_back(TokenId(ids[i]));
    }
  }

  if (r.kind == RequestKind::Chat || std::holds_alternative<std::string>(r.prompt)) {
    size_t hist_size = 0;
    std::vector<TokenId> hist_tokens = history_.lookup(r.kind, p.text, hist_size);
    if (hist_size > 0) {
      // Only the new text is encoded: earlier replies keep the tokens they were sampled as.
      p.tokens = std::move(hist_tokens);
      const auto more = tokenizer_.encode(std::string_view(p.text).substr(hist_size), false, true);
      p.tokens.insert(p.tokens.end(), more.begin(), more.end());
    } else {
      p.tokens = tokenizer_.encode(p.text, add_special, true);
    }
  }

  if (!p.grammar) p.grammar = r.grammar;
  if (p.tokens.empty()) throw RequestError::invalid(param, "the prompt is empty (no tokens)");
  if (int64_t(p.tokens.size()) >= options_.context_limit)
    throw RequestError::invalid(param,
                                "the prompt has " + std::to_string(p.tokens.size()) + " tokens but the context holds " +
                                    std::to_string(options_.context_limit) +
                                    " with room for at least one generated token (tandem serve --ctx)",
                                "context_length_exceeded");
  return p;
}

SamplerConfig CompletionEngine::sampler_config(const SamplingFields& f) const {
  SamplerConfig c = options_.sampling;
  if (f.temperature) c.temperature = *f.temperature;
  if (f.top_p) c.top_p = *f.top_p;
  if (f.top_k) c.top_k = *f.top_k;
  if (f.min_p) c.min_p = *f.min_p;
  if (f.presence_penalty) c.presence_penalty = *f.presence_penalty;
  if (f.frequency_penalty) c.frequency_penalty = *f.frequency_penalty;
  if (f.repeat_penalty) c.repeat_penalty = *f.repeat_penalty;
  c.seed = f.seed ? *f.seed : std::random_device{}();
  c.stop_tokens.insert(c.stop_tokens.end(), stop_tokens_.begin(), stop_tokens_.end());
  return c;
}

void CompletionEngine::remember(const PreparedPrompt& p, std::span<const TokenId> produced) {
  std::vector<TokenId> tokens = p.tokens;
  tokens.insert(tokens.end(), produced.begin(), produced.end());
  std::string text = p.text.empty() ? std::string() : p.text + tokenizer_.decode(produced, true);
  history_.record(p.kind, std::move(text), std::move(tokens));
}

}  // namespace tandem::server
