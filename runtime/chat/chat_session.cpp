#include "runtime/chat/chat_session.h"

#include "runtime/chat/reasoning_splitter.h"
#include <algorithm>
#include <chrono>
#include <optional>
#include <span>

#include "runtime/core/error.h"
#include "runtime/model/causal_lm.h"
#include "runtime/tokenizer/streaming_detokenizer.h"
#include "runtime/tokenizer/tokenizer.h"

namespace tandem {
namespace {

// Prompt tokens go through the model in slices so the logits buffer (slice x n_vocab floats)
// stays small for long prompts.
constexpr size_t kFeedSlice = 128;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

SamplerConfig sampling_with_stops(SamplerConfig c, const std::vector<TokenId>& stops) {
  c.stop_tokens.insert(c.stop_tokens.end(), stops.begin(), stops.end());
  return c;
}

}  // namespace

std::string_view stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::EndOfTurn: return "end of turn";
    case StopReason::MaxTokens: return "token limit";
    case StopReason::ContextFull: return "context full";
    case StopReason::Interrupted: return "interrupted";
  }
  return "?";
}

ChatSession::ChatSession(CausalLm& lm, const Tokenizer& tokenizer, ChatTemplate chat_template,
                         ChatSessionOptions options)
    : lm_(lm),
      tokenizer_(tokenizer),
      template_(std::move(chat_template)),
      options_(std::move(options)),
      stop_tokens_(template_.end_of_generation_tokens(tokenizer_)),
      sampler_(sampling_with_stops(options_.sampling, stop_tokens_)) {
  if (options_.max_new_tokens <= 0) fail("-n ", options_.max_new_tokens, ": must be positive");
  if (options_.context_limit < 2) fail("--ctx ", options_.context_limit, ": must be at least 2");
  lm_.reset();
}

void ChatSession::set_system_prompt(std::string text) { system_prompt_ = std::move(text); }

void ChatSession::set_messages(std::vector<ChatMessage> messages) {
  for (size_t i = 0; i < messages.size(); ++i)
    if (messages[i].role != "user" && messages[i].role != "assistant")
      fail("message ", i, ": role '", messages[i].role, "' is not user or assistant");
  reset();
  messages_ = std::move(messages);
}

void ChatSession::reset() {
  messages_.clear();
  history_text_.clear();
  history_tokens_.clear();
  cached_tokens_.clear();
  lm_.reset();
  sampler_.reset();
}

std::vector<ChatMessage> ChatSession::conversation_with_system() const {
  std::vector<ChatMessage> all;
  if (!system_prompt_.empty()) all.push_back({"system", system_prompt_});
  all.insert(all.end(), messages_.begin(), messages_.end());
  return all;
}

std::vector<TokenId> ChatSession::prompt_tokens(const std::string& prompt_text) const {
  if (!history_text_.empty() && prompt_text.starts_with(history_text_)) {
    // Only the new text is encoded: earlier replies keep the tokens they were sampled as.
    std::vector<TokenId> t = history_tokens_;
    const auto more = tokenizer_.encode(std::string_view(prompt_text).substr(history_text_.size()), false, true);
    t.insert(t.end(), more.begin(), more.end());
    return t;
  }
  return tokenizer_.encode(prompt_text, false, true);
}

void ChatSession::feed(std::span<const TokenId> tokens, std::vector<float>& last_logits) {
  feed_in_slices(lm_, tokens, kFeedSlice, cached_tokens_, last_logits);
}

ChatTurn ChatSession::send(std::string_view user_text, const TokenCallback& on_token,
                           const std::function<bool()>& should_stop) {
  messages_.push_back({"user", std::string(user_text)});
  std::string prompt_text;
  std::vector<TokenId> prompt;
  try {
    // A template may refuse the conversation (raise_exception): leave it as it was.
    prompt_text = template_.render(conversation_with_system(), true);
    if (!options_.reasoning_prefix.empty() && !ReasoningSplitter::prompt_opens_reasoning(prompt_text))
      prompt_text += options_.reasoning_prefix;
    prompt = prompt_tokens(prompt_text);
  } catch (...) {
    messages_.pop_back();
    throw;
  }
  if (int64_t(prompt.size()) >= options_.context_limit) {
    messages_.pop_back();
    fail("the conversation needs ", prompt.size(), " prompt tokens but the context holds ",
         options_.context_limit, " (--ctx) with room for the reply; /reset or raise --ctx");
  }

  last_prompt_text_ = prompt_text;
  ChatTurn turn;
  turn.stats.prompt_tokens = int64_t(prompt.size());
  try {
    // Reuse the cached prefix when it is one; feed at least the last prompt token for its logits.
    size_t common = 0;
    if (options_.reuse_cache) {
      const size_t n = std::min(cached_tokens_.size(), prompt.size());
      while (common < n && cached_tokens_[common] == prompt[common]) ++common;
    }
    if (common < cached_tokens_.size() || common == prompt.size()) {
      lm_.reset();
      cached_tokens_.clear();
      common = 0;
    }
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<float> logits;
    feed(std::span(prompt).subspan(common), logits);
    turn.stats.fed_tokens = int64_t(prompt.size() - common);
    turn.stats.prompt_seconds = seconds_since(t0);

    const auto t1 = std::chrono::steady_clock::now();
    StreamingDetokenizer detok(tokenizer_);
    std::optional<TokenId> stop_token;
    turn.stats.stop = StopReason::MaxTokens;
    for (;;) {
      if (should_stop && should_stop()) {
        turn.stats.stop = StopReason::Interrupted;
        break;
      }
      const TokenId id = sampler_.sample(logits);
      if (sampler_.is_stop(id)) {
        stop_token = id;
        turn.stats.stop = StopReason::EndOfTurn;
        break;
      }
      sampler_.accept(id);
      turn.reply_tokens.push_back(id);
      const std::string text = detok.push(id);
      if (on_token) on_token(id, text);
      if (int64_t(turn.reply_tokens.size()) >= options_.max_new_tokens) {
        turn.stats.stop = StopReason::MaxTokens;
        break;
      }
      if (int64_t(cached_tokens_.size()) >= options_.context_limit) {
        turn.stats.stop = StopReason::ContextFull;
        break;
      }
      feed(std::span(&id, 1), logits);
    }
    const std::string rest = detok.finish();
    if (on_token && !rest.empty()) on_token(kNoToken, rest);
    turn.stats.generated_tokens = int64_t(turn.reply_tokens.size());
    turn.stats.decode_seconds = seconds_since(t1);

    // What the model saw and produced, as tokens and as text, for the next turn's prefix check.
    std::vector<TokenId> produced = turn.reply_tokens;
    if (stop_token) produced.push_back(*stop_token);
    history_tokens_ = prompt;
    history_tokens_.insert(history_tokens_.end(), produced.begin(), produced.end());
    history_text_ = prompt_text + tokenizer_.decode(produced, true);

    turn.reply = tokenizer_.decode(turn.reply_tokens, false);
    // deepseek2 writes "Assistant: " + content but prompts with "Assistant:": the reply's
    // leading space belongs to the template.
    if (template_.format() == ChatFormat::Deepseek2 && turn.reply.starts_with(' ')) turn.reply.erase(0, 1);
    messages_.push_back({"assistant", turn.reply});
  } catch (...) {
    // The cache may hold a partial turn: start the next one from an empty cache.
    messages_.pop_back();
    lm_.reset();
    cached_tokens_.clear();
    throw;
  }
  return turn;
}

}  // namespace tandem
