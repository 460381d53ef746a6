// The built-in vocabulary works with tandem's tokenizer: text round-trips, merges compress it,
// BOS is added, and the chat specials are single tokens.
#include <gtest/gtest.h>

#include "runtime/gguf/gguf_file.h"
#include "runtime/gguf/gguf_writer.h"
#include "runtime/tokenizer/tokenizer.h"
#include "tools/modelgen/byte_level_bpe_vocab.h"
#include "tools/modelgen/deepseek2_metadata.h"

namespace tandem::modelgen {
namespace {

TEST(GeneratedVocab, LoadsAndRoundTripsInTheTokenizer) {
  Deepseek2Options o = deepseek2_preset("tiny-v2");
  o.vocab = 2048;
  const Deepseek2Metadata meta = deepseek2_metadata(o);
  GgufWriter w;
  for (const auto& [k, v] : meta.kv) w.set(k, v);
  const auto bytes = w.to_bytes();
  auto file = GgufFile::parse(bytes.data(), bytes.size(), "generated-vocab");
  const Tokenizer tok = Tokenizer::from_gguf(*file);

  const std::string& text = bpe_training_text();
  const auto ids = tok.encode(text, false, false);
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_LT(ids.size(), text.size() / 3) << "merges should compress the text they were learned from";
  const std::string other = "Unseen words: zebra, quantum, 你好世界, x += 1;\n";
  EXPECT_EQ(tok.decode(tok.encode(other, false, false)), other);

  const auto with_bos = tok.encode("hello", true, false);
  ASSERT_FALSE(with_bos.empty());
  EXPECT_EQ(uint64_t(with_bos[0]), file->get_uint("tokenizer.ggml.bos_token_id"));
  const auto turn = tok.encode("<｜User｜>hi<｜Assistant｜>", false, true);
  ASSERT_GE(turn.size(), 3u);
  EXPECT_EQ(tok.piece(turn.front(), true), "<｜User｜>");
  EXPECT_EQ(tok.piece(turn.back(), true), "<｜Assistant｜>");
}

}  // namespace
}  // namespace tandem::modelgen
