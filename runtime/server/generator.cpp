#include "runtime/server/generator.h"

#include <algorithm>
#include <optional>
#include <random>

#include "runtime/core/error.h"
#include "runtime/model/causal_lm.h"
#include "runtime/server/request_error.h"
#include "runtime/server/stop_string_matcher.h"
#include "runtime/tokenizer/streaming_detokenizer.h"
#include "runtime/tokenizer/tokenizer.h"

namespace tandem::server {
namespace {

// Prompt tokens go through the model in slices so the logits buffer stays small.
constexpr size_t kFeedSlice = 128;

std::vector<TokenId> end_of_generation_tokens(const ChatTemplate& t, const Tokenizer& tok) {
  std::vector<TokenId> ids;
  auto add = [&](TokenId id) {
    if (id != kNoToken && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  };
  for (const auto& text : t.end_of_turn_texts()) add(tok.vocab().find(text));
  if (tok.vocab().contains(tok.vocab().eos())) add(tok.vocab().eos());
  return ids;
}

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

std::shared_ptr<const ConstraintVocab> Generator::constraint_vocab() const {
  std::lock_guard lock(vocab_mutex_);
  if (!constraint_vocab_) constraint_vocab_ = build_constraint_vocab(tokenizer_, stop_tokens_);
  return constraint_vocab_;
}

Generator::Generator(CausalLm& lm, const Tokenizer& tokenizer, ChatTemplate chat_template, GeneratorOptions options)
    : lm_(lm),
      tokenizer_(tokenizer),
      template_(std::move(chat_template)),
      options_(std::move(options)),
      stop_tokens_(end_of_generation_tokens(template_, tokenizer_)) {
  if (options_.context_limit < 2) fail("--ctx ", options_.context_limit, ": must be at least 2");
  validate(options_.sampling);
  lm_.reset();
}

PreparedPrompt Generator::prepare(const CompletionRequest& r) const {
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
    const int64_t n_vocab = std::min<int64_t>(lm_.n_vocab(), int64_t(tokenizer_.vocab().size()));
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] >= n_vocab)
        throw RequestError::invalid("prompt", "prompt token " + std::to_string(i) + " is " + std::to_string(ids[i]) +
                                                  ", outside the vocabulary of " + std::to_string(n_vocab) + " tokens");
      p.tokens.push_back(TokenId(ids[i]));
    }
  }

  if (r.kind == RequestKind::Chat || std::holds_alternative<std::string>(r.prompt)) {
    std::string hist_text;
    std::vector<TokenId> hist_tokens;
    {
      std::lock_guard lock(history_mutex_);
      if (history_kind_ == r.kind && !history_text_.empty() && p.text.starts_with(history_text_)) {
        hist_text = history_text_;
        hist_tokens = history_tokens_;
      }
    }
    if (!hist_text.empty()) {
      // Only the new text is encoded: earlier replies keep the tokens they were sampled as.
      p.tokens = std::move(hist_tokens);
      const auto more = tokenizer_.encode(std::string_view(p.text).substr(hist_text.size()), false, true);
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

SamplerConfig Generator::sampler_config(const SamplingFields& f) const {
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

std::vector<TokenId> Generator::cached_tokens() const {
  std::lock_guard lock(generation_mutex_);
  return cached_tokens_;
}

void Generator::feed(std::span<const TokenId> tokens, std::vector<float>& last_logits) {
  feed_in_slices(lm_, tokens, kFeedSlice, cached_tokens_, last_logits);
}

GenerationOutcome Generator::generate(const PreparedPrompt& p, const CompletionRequest& r, const TextSink& sink,
                                      const std::function<bool()>& should_stop) {
  Sampler sampler(sampler_config(r.sampling));
  std::lock_guard lock(generation_mutex_);
  const auto t0 = std::chrono::steady_clock::now();
  GenerationOutcome out;
  out.started_at = t0;
  out.usage.prompt_tokens = int64_t(p.tokens.size());
  if (should_stop && should_stop()) {
    out.cancelled = true;
    return out;
  }
  const std::vector<TokenId>& prompt = p.tokens;
  try {
    // Reuse the cached prefix when it is one; feed at least the last prompt token for its logits.
    size_t common = 0;
    const size_t n = std::min(cached_tokens_.size(), prompt.size());
    while (common < n && cached_tokens_[common] == prompt[common]) ++common;
    if (common < cached_tokens_.size() || common == prompt.size()) {
      lm_.reset();
      cached_tokens_.clear();
      common = 0;
    }
    out.reused_tokens = int64_t(common);
    std::vector<float> logits;
    ++prefills_;
    prefilled_tokens_ += prompt.size() - common;
    out.prefilled = true;
    feed(std::span(prompt).subspan(common), logits);

    const int64_t max_tokens = r.max_tokens.value_or(options_.context_limit);
    // Tool-call markup may be control tokens: render them so the reply's parser sees them.
    StreamingDetokenizer detok(tokenizer_, p.tool_format != ToolCallFormat::None || p.grammar != nullptr);
    StopStringMatcher stops(r.stop);
    bool trim = p.trim_leading_space;
    std::optional<TokenId> stop_token;
    // Passes text on; false once the client is gone.
    auto emit = [&](std::string text) {
      if (trim && !text.empty()) {
        if (text.front() == ' ') text.erase(0, 1);
        trim = false;
      }
      text = stops.push(text);
      if (text.empty()) return true;
      out.text += text;
      return !sink || sink(text);
    };
    out.finish = FinishReason::Length;
    std::optional<TokenConstraint> constraint;
    std::vector<uint8_t> mask;
    if (p.grammar) constraint.emplace(constraint_vocab(), p.grammar);
    for (;;) {
      if (should_stop && should_stop()) {
        out.cancelled = true;
        break;
      }
      TokenId id;
      if (constraint) {
        // Tokens that may still come, this one included: the document must close within them.
        const int64_t budget = std::min<int64_t>(max_tokens - int64_t(out.tokens.size()),
                                                 options_.context_limit - int64_t(cached_tokens_.size()));
        const auto m0 = std::chrono::steady_clock::now();
        const size_t allowed = constraint->allowed(stop_tokens_, budget, mask);
        out.constraint_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - m0).count();
        if (allowed == 0) {
          // Complete with no stop token in the vocabulary (or a dead end): the reply ends here.
          out.finish = FinishReason::Stop;
          break;
        }
        id = sampler.sample(logits, mask);
        if (!sampler.is_stop(id)) constraint->accept(id);
      } else {
        id = sampler.sample(logits);
      }
      if (!out.first_token_at) out.first_token_at = std::chrono::steady_clock::now();
      if (sampler.is_stop(id)) {
        stop_token = id;
        out.finish = FinishReason::Stop;
        break;
      }
      sampler.accept(id);
      out.tokens.push_back(id);
      if (!emit(detok.push(id))) {
        out.cancelled = true;
        break;
      }
      if (stops.stopped() || (constraint && constraint->closed())) {
        out.finish = FinishReason::Stop;  // a stop string, or the constrained document is over
        break;
      }
      if (int64_t(out.tokens.size()) >= max_tokens || int64_t(cached_tokens_.size()) >= options_.context_limit) {
        out.finish = FinishReason::Length;
        break;
      }
      feed(std::span(&id, 1), logits);
    }
    if (!out.cancelled && !stops.stopped()) {
      if (!emit(detok.finish())) out.cancelled = true;
      if (!out.cancelled) {
        std::string tail = stops.finish();
        if (!tail.empty()) {
          out.text += tail;
          if (sink && !sink(tail)) out.cancelled = true;
        }
      }
    }
    out.usage.completion_tokens = int64_t(out.tokens.size());

    // What the model saw and produced, for the next request's prefix check.
    std::vector<TokenId> produced = out.tokens;
    if (stop_token) produced.push_back(*stop_token);
    std::lock_guard hist(history_mutex_);
    history_kind_ = p.kind;
    history_tokens_ = prompt;
    history_tokens_.insert(history_tokens_.end(), produced.begin(), produced.end());
    history_text_ = p.text.empty() ? std::string() : p.text + tokenizer_.decode(produced, true);
  } catch (...) {
    // The cache may hold a partial generation: start the next one from an empty cache.
    lm_.reset();
    cached_tokens_.clear();
    std::lock_guard hist(history_mutex_);
    history_text_.clear();
    history_tokens_.clear();
    throw;
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace tandem::server
