// A conversation with a CausalLm: the messages so far, the token sequence the model has seen,
// and the generation loop that streams a reply token by token.
//
// Each turn renders the whole conversation with the ChatTemplate. When the new prompt text
// extends the text of what the model has already seen (the previous prompt plus the reply as it
// was generated), only the new text is encoded and appended to the previous tokens, so the
// reply keeps the exact tokens that were sampled. The part of that token sequence already in the
// KV cache is not fed again; if the cache holds anything that is not a prefix of it (the
// template rewrote history, e.g. R1 dropping reasoning), the cache is emptied and the whole
// sequence is fed.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/chat/chat_template.h"
#include "runtime/sampling/sampler.h"
#include "runtime/tokenizer/bpe_vocab.h"

namespace tandem {

class CausalLm;
class Tokenizer;

struct ChatSessionOptions {
  SamplerConfig sampling;       // its stop_tokens get the template's end-of-turn tokens and EOS added
  int max_new_tokens = 256;     // per reply (-n)
  int64_t context_limit = 4096; // tokens the KV cache may hold (--ctx)
  // false: empty the cache and feed the whole token sequence every turn. The same tokens reach
  // the model either way; this is the reference the incremental path is checked against.
  bool reuse_cache = true;
  // Appended to each turn's prompt unless the prompt already leaves <think> open: "<think>\n"
  // makes R1-style models reason (KTransformers' --force_think). Empty: nothing.
  std::string reasoning_prefix;
};

enum class StopReason {
  EndOfTurn,    // an end-of-turn / EOS token was sampled (it is not part of the reply text)
  MaxTokens,    // max_new_tokens were generated
  ContextFull,  // the KV cache reached context_limit
  Interrupted,  // should_stop said so (Ctrl-C); the partial reply is kept
};
std::string_view stop_reason_name(StopReason r);

struct TurnStats {
  int64_t prompt_tokens = 0;  // tokens of the whole conversation prompt
  int64_t fed_tokens = 0;     // of those, fed this turn (the rest came from the KV cache)
  double prompt_seconds = 0.0;
  int64_t generated_tokens = 0;  // reply tokens, the stop token not counted
  double decode_seconds = 0.0;
  StopReason stop = StopReason::EndOfTurn;
};

struct ChatTurn {
  std::string reply;                  // the text stored as the assistant message
  std::vector<TokenId> reply_tokens;  // sampled tokens, the stop token not included
  TurnStats stats;
};

// Called for every generated token with the text it completed (possibly empty: a partial UTF-8
// character is held back); once more at the end with kNoToken when held-back bytes remain.
using TokenCallback = std::function<void(TokenId token, std::string_view text)>;

class ChatSession {
 public:
  ChatSession(CausalLm& lm, const Tokenizer& tokenizer, ChatTemplate chat_template, ChatSessionOptions options);

  // A system message placed before the conversation; kept by reset(). Empty: none.
  void set_system_prompt(std::string text);

  // Adds a user message, generates the assistant reply, adds it to the conversation.
  // A prompt that does not fit context_limit (leaving room for one new token) is an Error that
  // says so; the conversation and cache are then as they were before the call. should_stop is
  // asked before each new token; true ends the reply there (StopReason::Interrupted).
  ChatTurn send(std::string_view user_text, const TokenCallback& on_token = {},
                const std::function<bool()>& should_stop = {});

  // Replaces the conversation (without the system prompt) with messages, e.g. a saved one;
  // empties the KV cache. A role other than user/assistant is an Error naming the message.
  void set_messages(std::vector<ChatMessage> messages);
  const std::string& system_prompt() const { return system_prompt_; }
  // The text of the last turn's prompt (as rendered, with reasoning_prefix).
  const std::string& last_prompt_text() const { return last_prompt_text_; }

  // Forgets the conversation (not the system prompt), empties the KV cache, restarts the sampler.
  void reset();

  const std::vector<ChatMessage>& messages() const { return messages_; }
  const ChatTemplate& chat_template() const { return template_; }
  const std::vector<TokenId>& stop_tokens() const { return stop_tokens_; }
  // Every token of the conversation so far (the last stop token included, though it may not
  // have been fed to the model yet).
  const std::vector<TokenId>& history_tokens() const { return history_tokens_; }
  // The tokens in the model's KV cache, a prefix of history_tokens().
  const std::vector<TokenId>& cached_tokens() const { return cached_tokens_; }

 private:
  std::vector<ChatMessage> conversation_with_system() const;
  std::vector<TokenId> prompt_tokens(const std::string& prompt_text) const;
  void feed(std::span<const TokenId> tokens, std::vector<float>& last_logits);

  CausalLm& lm_;
  const Tokenizer& tokenizer_;
  ChatTemplate template_;
  ChatSessionOptions options_;
  std::vector<TokenId> stop_tokens_;
  Sampler sampler_;
  std::string system_prompt_;
  std::vector<ChatMessage> messages_;  // without the system prompt
  std::string history_text_;           // the text of history_tokens_
  std::vector<TokenId> history_tokens_;
  std::vector<TokenId> cached_tokens_;
  std::string last_prompt_text_;
};

}  // namespace tandem
