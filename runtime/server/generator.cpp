#include "runtime/server/generator.h"

#include <algorithm>
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

}  // namespace

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
    if (r.enable_thinking) {
      nlohmann::ordered_json messages = nlohmann::ordered_json::array();
      for (const auto& m : r.messages) messages.push_back({{"role", m.role}, {"content", m.content}});
      // Both names: Qwen3 templates read enable_thinking, DeepSeek V3.1 reads thinking.
      p.text = template_.render_json(messages, true,
                                     {{"enable_thinking", *r.enable_thinking}, {"thinking", *r.enable_thinking}});
    } else {
      p.text = template_.render(r.messages, true);
    }
    p.trim_leading_space = template_.format() == ChatFormat::Deepseek2;
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
    StreamingDetokenizer detok(tokenizer_);
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
    for (;;) {
      if (should_stop && should_stop()) {
        out.cancelled = true;
        break;
      }
      const TokenId id = sampler.sample(logits);
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
      if (stops.stopped()) {
        out.finish = FinishReason::Stop;
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
