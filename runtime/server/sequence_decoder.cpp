#include "runtime/server/sequence_decoder.h"

#include <algorithm>
#include <chrono>

namespace tandem::server {

SequenceDecoder::SequenceDecoder(const PreparedPrompt& p, const CompletionRequest& r, SamplerConfig sampling,
                                 std::span<const TokenId> stop_tokens, const Tokenizer& tokenizer,
                                 std::shared_ptr<const ConstraintVocab> vocab, int64_t context_limit, TextSink sink)
    : sampler_(std::move(sampling)),
      stop_tokens_(stop_tokens.begin(), stop_tokens.end()),
      context_limit_(context_limit),
      max_tokens_(r.max_tokens.value_or(context_limit)),
      sink_(std::move(sink)),
      // Tool-call markup may be control tokens: render them so the reply's parser sees them.
      detok_(tokenizer, p.tool_format != ToolCallFormat::None || p.grammar != nullptr),
      stops_(r.stop),
      trim_(p.trim_leading_space) {
  out_.usage.prompt_tokens = int64_t(p.tokens.size());
  out_.finish = FinishReason::Length;
  if (p.grammar) constraint_.emplace(std::move(vocab), p.grammar);
}

bool SequenceDecoder::emit(std::string text) {
  if (trim_ && !text.empty()) {
    if (text.front() == ' ') text.erase(0, 1);
    trim_ = false;
  }
  text = stops_.push(text);
  if (text.empty()) return true;
  out_.text += text;
  return !sink_ || sink_(text);
}

std::optional<TokenId> SequenceDecoder::step(std::span<const float> logits, int64_t n_cached) {
  if (done_) return std::nullopt;
  TokenId id;
  if (constraint_) {
    // Tokens that may still come, this one included: the document must close within them.
    const int64_t budget = std::min<int64_t>(max_tokens_ - int64_t(out_.tokens.size()), context_limit_ - n_cached);
    const auto m0 = std::chrono::steady_clock::now();
    const size_t allowed = constraint_->allowed(stop_tokens_, budget, mask_);
    out_.constraint_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - m0).count();
    if (allowed == 0) {
      // Complete with no stop token in the vocabulary (or a dead end): the reply ends here.
      out_.finish = FinishReason::Stop;
      finish();
      return std::nullopt;
    }
    id = sampler_.sample(logits, mask_);
    if (!sampler_.is_stop(id)) constraint_->accept(id);
  } else {
    id = sampler_.sample(logits);
  }
  if (!out_.first_token_at) out_.first_token_at = std::chrono::steady_clock::now();
  if (sampler_.is_stop(id)) {
    stop_token_ = id;
    out_.finish = FinishReason::Stop;
    finish();
    return std::nullopt;
  }
  sampler_.accept(id);
  out_.tokens.push_back(id);
  if (!emit(detok_.push(id))) {
    cancel();
    return std::nullopt;
  }
  if (stops_.stopped() || (constraint_ && constraint_->closed())) {
    out_.finish = FinishReason::Stop;  // a stop string, or the constrained document is over
    finish();
    return std::nullopt;
  }
  if (int64_t(out_.tokens.size()) >= max_tokens_ || n_cached >= context_limit_) {
    out_.finish = FinishReason::Length;
    finish();
    return std::nullopt;
  }
  return id;
}

void SequenceDecoder::cancel() {
  if (done_) return;
  out_.cancelled = true;
  done_ = true;
  out_.usage.completion_tokens = int64_t(out_.tokens.size());
}

void SequenceDecoder::finish() {
  done_ = true;
  if (!stops_.stopped()) {
    if (!emit(detok_.finish())) out_.cancelled = true;
    if (!out_.cancelled) {
      std::string tail = stops_.finish();
      if (!tail.empty()) {
        out_.text += tail;
        if (sink_ && !sink_(tail)) out_.cancelled = true;
      }
    }
  }
  out_.usage.completion_tokens = int64_t(out_.tokens.size());
}

std::vector<TokenId> SequenceDecoder::produced() const {
  std::vector<TokenId> p = out_.tokens;
  if (stop_token_) p.push_back(*stop_token_);
  return p;
}

}  // namespace tandem::server
