// libFuzzer target for the tokenizer: arbitrary bytes must encode without crashing, decode must
// give them back, and streaming detokenization must agree with decode.
//
// Vocabulary: the handmade toy vocab by default (all 256 byte tokens are normal tokens, so every
// byte string must round-trip exactly), or a real one when TANDEM_FUZZ_VOCAB names a GGUF file
// (then only valid UTF-8 is required to round-trip: see vocab_files_test.cpp on DeepSeek's
// user_defined byte tokens).
// The first input byte picks the pre-tokenizer (toy vocab only) and the encode flags.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "runtime/gguf/gguf_file.h"
#include "runtime/tokenizer/streaming_detokenizer.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/utf8.h"
#include "tests/unit/tokenizer/toy_vocab.h"

namespace {

struct FuzzTokenizers {
  std::vector<std::unique_ptr<tandem::Tokenizer>> all;
  bool every_byte_round_trips = true;

  FuzzTokenizers() {
    if (const char* path = std::getenv("TANDEM_FUZZ_VOCAB")) {
      all.push_back(std::make_unique<tandem::Tokenizer>(tandem::Tokenizer::from_gguf(*tandem::GgufFile::open(path))));
      every_byte_round_trips = false;
      return;
    }
    for (const auto& name : tandem::PreTokenizer::known_names())
      all.push_back(std::make_unique<tandem::Tokenizer>(tandem::toy::toy_vocab(true, true, name)));
  }
};

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_tokenizer: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const FuzzTokenizers tokenizers;
  if (size == 0) return 0;
  const uint8_t selector = data[0];
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  const tandem::Tokenizer& tok = *tokenizers.all[(selector >> 2) % tokenizers.all.size()];
  const bool add_special = selector & 1;
  const bool parse_special = selector & 2;

  const std::vector<tandem::TokenId> ids = tok.encode(text, add_special, parse_special);
  for (tandem::TokenId id : ids) check(tok.vocab().contains(id), "encode produced an id outside the vocab");

  // Control tokens (BOS/EOS, and parsed ones) render as their text only when asked; BOS/EOS
  // were not in the input, so rendering is checked without them.
  const std::string plain = tok.decode(ids, false);
  if (tokenizers.every_byte_round_trips || tandem::is_valid_utf8(text)) {
    if (!parse_special) check(plain == text, "decode(encode(x)) != x");
    if (!add_special) check(tok.decode(ids, true) == text, "decode(encode(x, parse_special), render) != x");
  }

  tandem::StreamingDetokenizer stream(tok);
  std::string streamed;
  for (tandem::TokenId id : ids) streamed += stream.push(id);
  streamed += stream.finish();
  check(streamed == plain, "streamed text != decode");
  return 0;
}
