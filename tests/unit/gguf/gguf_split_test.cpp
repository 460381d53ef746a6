// Split models: write_split then open the first shard; every way a set can be inconsistent.
#include <gtest/gtest.h>

#include <filesystem>

#include "runtime/core/error.h"
#include "runtime/gguf/gguf_file.h"
#include "runtime/gguf/gguf_writer.h"
#include "tests/unit/gguf/temp_dir.h"

namespace tandem {
namespace {

GgufValue u16(uint64_t x) { return {GgufValueType::U16, GgufValueType::U8, x}; }

GgufWriter five_tensor_writer() {
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("test"));
  w.set("test.value", GgufValue::u32(42));
  for (int i = 0; i < 5; ++i) {
    std::vector<uint8_t> bytes(4 * 8, uint8_t(i + 1));
    w.add_tensor("t" + std::to_string(i), GgmlType::F32, {8}, bytes);
  }
  return w;
}

std::string open_error(const std::string& path) {
  try {
    GgufFile::open(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(opened without error)";
}

// Writes one shard by hand with the given split keys.
void write_shard(const std::string& path, uint64_t no, uint64_t count, const std::string& tensor) {
  GgufWriter w;
  w.set("split.no", u16(no));
  w.set("split.count", u16(count));
  w.add_tensor(tensor, GgmlType::F32, {8}, std::vector<uint8_t>(32, 7));
  w.write(path);
}

TEST(GgufSplit, WriteSplitThenOpenFirstShard) {
  test::TempDir dir;
  const std::string first = dir.file("model-00001-of-00003.gguf");
  five_tensor_writer().write_split(first, 2);
  for (int i = 1; i <= 3; ++i)
    EXPECT_TRUE(std::filesystem::exists(dir.file("model-0000" + std::to_string(i) + "-of-00003.gguf")));

  auto f = GgufFile::open(first);
  EXPECT_EQ(f->shard_count(), 3);
  EXPECT_EQ(f->shard_paths()[2], dir.file("model-00003-of-00003.gguf"));
  EXPECT_EQ(f->get_uint("test.value"), 42u);
  EXPECT_EQ(f->get_uint("split.count"), 3u);
  ASSERT_EQ(f->tensors().size(), 5u);
  for (int i = 0; i < 5; ++i) {
    const GgufTensor& t = f->tensor("t" + std::to_string(i));
    EXPECT_EQ(t.shard, i / 2) << t.name;
    EXPECT_EQ(t.data[0], i + 1) << t.name;
    EXPECT_EQ(t.data[31], i + 1) << t.name;
  }
}

TEST(GgufSplit, MissingShardIsNamed) {
  test::TempDir dir;
  const std::string first = dir.file("model-00001-of-00003.gguf");
  five_tensor_writer().write_split(first, 2);
  std::filesystem::remove(dir.file("model-00003-of-00003.gguf"));
  const std::string msg = open_error(first);
  EXPECT_NE(msg.find("model-00003-of-00003.gguf"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
}

TEST(GgufSplit, OpeningALaterShardSaysToOpenTheFirst) {
  test::TempDir dir;
  five_tensor_writer().write_split(dir.file("model-00001-of-00003.gguf"), 2);
  const std::string msg = open_error(dir.file("model-00002-of-00003.gguf"));
  EXPECT_NE(msg.find("open the first shard"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model-00001-of-00003.gguf"), std::string::npos) << msg;
  EXPECT_NE(msg.find("shard 2 of 3"), std::string::npos) << msg;
}

TEST(GgufSplit, LaterShardWithOtherSplitCountIsRefused) {
  test::TempDir dir;
  write_shard(dir.file("m-00001-of-00002.gguf"), 0, 2, "a");
  write_shard(dir.file("m-00002-of-00002.gguf"), 1, 5, "b");
  const std::string msg = open_error(dir.file("m-00001-of-00002.gguf"));
  EXPECT_NE(msg.find("m-00002-of-00002.gguf"), std::string::npos) << msg;
  EXPECT_NE(msg.find("split.count is 5"), std::string::npos) << msg;
}

TEST(GgufSplit, NameAndSplitCountMustAgree) {
  test::TempDir dir;
  write_shard(dir.file("m-00001-of-00002.gguf"), 0, 3, "a");
  const std::string msg = open_error(dir.file("m-00001-of-00002.gguf"));
  EXPECT_NE(msg.find("m-00001-of-00002.gguf"), std::string::npos) << msg;
  EXPECT_NE(msg.find("split.count is 3"), std::string::npos) << msg;
}

TEST(GgufSplit, WrongShardNumberIsRefused) {
  test::TempDir dir;
  write_shard(dir.file("m-00001-of-00002.gguf"), 0, 2, "a");
  write_shard(dir.file("m-00002-of-00002.gguf"), 0, 2, "b");
  const std::string msg = open_error(dir.file("m-00001-of-00002.gguf"));
  EXPECT_NE(msg.find("m-00002-of-00002.gguf: split.no is 0, expected 1"), std::string::npos) << msg;
}

TEST(GgufSplit, SameTensorInTwoShardsIsRefused) {
  test::TempDir dir;
  write_shard(dir.file("m-00001-of-00002.gguf"), 0, 2, "same");
  write_shard(dir.file("m-00002-of-00002.gguf"), 1, 2, "same");
  const std::string msg = open_error(dir.file("m-00001-of-00002.gguf"));
  EXPECT_NE(msg.find("'same'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("m-00002-of-00002.gguf"), std::string::npos) << msg;
}

TEST(GgufSplit, SplitMetadataWithoutSplitNameIsRefused) {
  test::TempDir dir;
  write_shard(dir.file("plain.gguf"), 0, 2, "a");
  const std::string msg = open_error(dir.file("plain.gguf"));
  EXPECT_NE(msg.find("plain.gguf"), std::string::npos) << msg;
  EXPECT_NE(msg.find("split into 2"), std::string::npos) << msg;
}

TEST(GgufSplit, TensorCountMustMatchSplitTensorsCount) {
  test::TempDir dir;
  GgufWriter w;
  w.set("split.no", u16(0));
  w.set("split.count", u16(1));
  w.set("split.tensors.count", GgufValue::i32(3));
  w.add_tensor("a", GgmlType::F32, {8}, std::vector<uint8_t>(32, 7));
  w.write(dir.file("m-00001-of-00001.gguf"));
  // A single-shard "split" is accepted as a plain file; its count is not checked then.
  EXPECT_NO_THROW(GgufFile::open(dir.file("m-00001-of-00001.gguf")));

  write_shard(dir.file("n-00002-of-00002.gguf"), 1, 2, "b");
  GgufWriter w2;
  w2.set("split.no", u16(0));
  w2.set("split.count", u16(2));
  w2.set("split.tensors.count", GgufValue::i32(3));
  w2.add_tensor("a", GgmlType::F32, {8}, std::vector<uint8_t>(32, 7));
  w2.write(dir.file("n-00001-of-00002.gguf"));
  const std::string msg = open_error(dir.file("n-00001-of-00002.gguf"));
  EXPECT_NE(msg.find("split.tensors.count says 3"), std::string::npos) << msg;
}

TEST(GgufSplit, WriteSplitNeedsAShardName) {
  EXPECT_THROW(five_tensor_writer().write_split("/tmp/not-a-shard-name.gguf", 2), Error);
  EXPECT_THROW(five_tensor_writer().write_split("/tmp/x-00001-of-00002.gguf", 0), Error);
}

}  // namespace
}  // namespace tandem
