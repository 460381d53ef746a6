// A corpus of broken GGUF images built byte by byte: each must raise tandem::Error (never crash
// or read out of bounds) with a message naming the file and the key or tensor at fault.
#include <gtest/gtest.h>

#include <limits>

#include "runtime/core/error.h"
#include "runtime/gguf/gguf_file.h"
#include "runtime/gguf/gguf_writer.h"
#include "tests/unit/gguf/gguf_bytes.h"

namespace tandem {
namespace {

using test::GgufBytes;
using test::parse_error;

constexpr uint32_t kF32 = 0, kQ8_0 = 8;

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << "message: " << (msg)

// Two keys and two tensors (f32 [8] and q8_0 [32]), the data ending exactly at the file's end.
std::vector<uint8_t> small_valid_image() {
  GgufBytes g;
  g.header(2, 2).kv_str("general.architecture", "test").kv_u32("test.n", 7);
  g.tensor_info("w", {8}, kF32, 0).tensor_info("v", {32}, kQ8_0, 32).pad();
  g.zeros(32 + 34);
  return g.b;
}

TEST(GgufMalformed, SmallValidImageParses) {
  const auto b = small_valid_image();
  auto f = GgufFile::parse(b.data(), b.size(), "ok.gguf");
  EXPECT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(f->tensor("v").nbytes, 34u);
  EXPECT_EQ(f->tensor("v").data + 34, b.data() + b.size());
}

TEST(GgufMalformed, TruncatedAtEveryByteThrows) {
  const auto full = small_valid_image();
  for (size_t n = 0; n < full.size(); ++n) {
    const std::vector<uint8_t> part(full.begin(), full.begin() + long(n));
    const std::string msg = parse_error(part, "cut.gguf");
    EXPECT_HAS(msg, "cut.gguf:");
    if (msg.find("cut.gguf:") == std::string::npos) break;  // one report is enough
  }
}

TEST(GgufMalformed, WriterImageTruncatedAnywhereBeforeItsLastTensorThrows) {
  GgufWriter w;
  w.set("a.nested", GgufValue::array(GgufValueType::ARRAY, {GgufValue::string_array({"x", "yy"}),
                                                            GgufValue::string_array({})}));
  w.set("a.f", GgufValue::f32_array({1, 2, 3}));
  w.set("a.s", GgufValue::string("value"));
  w.set("a.b", GgufValue::boolean(true));
  w.add_tensor("t0", GgmlType::F16, {4, 2}, std::vector<uint8_t>(16, 1));
  w.add_tensor("t1", GgmlType::Q4_0, {32}, std::vector<uint8_t>(18, 2));
  const auto full = w.to_bytes();
  auto f = GgufFile::parse(full.data(), full.size(), "full");
  const size_t end = size_t(f->tensor("t1").data - full.data()) + f->tensor("t1").nbytes;
  for (size_t n = 0; n <= full.size(); ++n) {
    const std::vector<uint8_t> part(full.begin(), full.begin() + long(n));
    if (n < end) {
      const std::string msg = parse_error(part, "cut.gguf");
      EXPECT_HAS(msg, "cut.gguf:");
      if (msg.find("cut.gguf:") == std::string::npos) break;
    } else {
      // Only trailing padding is missing: the data is whole, so the file is usable.
      EXPECT_NO_THROW(GgufFile::parse(part.data(), part.size(), "cut.gguf")) << n;
    }
  }
}

TEST(GgufMalformed, BadMagic) {
  auto b = small_valid_image();
  b[0] = 'X';
  const std::string msg = parse_error(b, "magic.gguf");
  EXPECT_HAS(msg, "magic.gguf");
  EXPECT_HAS(msg, "bad magic");
}

TEST(GgufMalformed, UnsupportedVersions) {
  for (uint32_t v : {0u, 1u, 4u, 0xffffffffu}) {
    GgufBytes g;
    g.header(0, 0, v);
    const std::string msg = parse_error(g.b, "ver.gguf");
    EXPECT_HAS(msg, "ver.gguf");
    EXPECT_HAS(msg, "version " + std::to_string(v));
  }
  GgufBytes v2;
  v2.header(0, 0, 2);
  EXPECT_EQ(GgufFile::parse(v2.b.data(), v2.b.size(), "v2")->version(), 2u);
}

TEST(GgufMalformed, AbsurdCounts) {
  {
    GgufBytes g;
    g.header(0, std::numeric_limits<uint64_t>::max());
    const std::string msg = parse_error(g.b, "kv.gguf");
    EXPECT_HAS(msg, "kv.gguf");
    EXPECT_HAS(msg, "metadata count");
  }
  {
    GgufBytes g;
    g.header(1ull << 60, 0);
    const std::string msg = parse_error(g.b, "tc.gguf");
    EXPECT_HAS(msg, "tc.gguf");
    EXPECT_HAS(msg, "tensor count");
  }
}

TEST(GgufMalformed, StringLengthBeyondEof) {
  GgufBytes g;
  g.header(0, 1).str("general.name").u32(8).u64(1000).zeros(10);
  const std::string msg = parse_error(g.b, "str.gguf");
  EXPECT_HAS(msg, "str.gguf");
  EXPECT_HAS(msg, "general.name");
  // A key whose own length runs past the end.
  GgufBytes k;
  k.header(0, 1).u64(1ull << 62).zeros(64);
  EXPECT_HAS(parse_error(k.b, "key.gguf"), "metadata key");
}

TEST(GgufMalformed, HugeArrayCount) {
  GgufBytes g;
  g.header(0, 1).str("tokenizer.ggml.tokens").u32(9).u32(8).u64(1ull << 61);
  const std::string msg = parse_error(g.b, "arr.gguf");
  EXPECT_HAS(msg, "arr.gguf");
  EXPECT_HAS(msg, "tokenizer.ggml.tokens");
  EXPECT_HAS(msg, "array claims");
}

TEST(GgufMalformed, UnknownValueTypes) {
  GgufBytes g;
  g.header(0, 1).str("weird.key").u32(13).u32(0);
  std::string msg = parse_error(g.b, "vt.gguf");
  EXPECT_HAS(msg, "vt.gguf");
  EXPECT_HAS(msg, "'weird.key' has unknown value type 13");
  GgufBytes a;
  a.header(0, 1).str("weird.arr").u32(9).u32(77).u64(0);
  msg = parse_error(a.b, "at.gguf");
  EXPECT_HAS(msg, "'weird.arr'");
  EXPECT_HAS(msg, "unknown array element type 77");
}

TEST(GgufMalformed, ArraysNestedTooDeep) {
  GgufBytes g;
  g.header(0, 1).str("deep").u32(9);
  for (int i = 0; i < 100; ++i) g.u32(9).u64(1);
  g.u32(4).u64(0);
  const std::string msg = parse_error(g.b, "deep.gguf");
  EXPECT_HAS(msg, "'deep'");
  EXPECT_HAS(msg, "nested");
}

TEST(GgufMalformed, BoolValueTwo) {
  GgufBytes g;
  g.header(0, 1).str("flag").u32(7).put<uint8_t>(2);
  const std::string msg = parse_error(g.b, "bool.gguf");
  EXPECT_HAS(msg, "bool.gguf");
  EXPECT_HAS(msg, "'flag'");
  EXPECT_HAS(msg, "bool value 2");
}

TEST(GgufMalformed, DuplicateKey) {
  GgufBytes g;
  g.header(0, 2).kv_u32("dup.key", 1).kv_u32("dup.key", 2);
  const std::string msg = parse_error(g.b, "dupkey.gguf");
  EXPECT_HAS(msg, "dupkey.gguf");
  EXPECT_HAS(msg, "'dup.key' appears twice");
}

TEST(GgufMalformed, BadGeneralAlignment) {
  for (uint32_t a : {0u, 3u, 48u, 1u << 30}) {
    GgufBytes g;
    g.header(0, 1).kv_u32("general.alignment", a);
    const std::string msg = parse_error(g.b, "align.gguf");
    EXPECT_HAS(msg, "align.gguf");
    EXPECT_HAS(msg, "general.alignment");
  }
  GgufBytes s;
  s.header(0, 1).kv_str("general.alignment", "32");
  EXPECT_HAS(parse_error(s.b, "align.gguf"), "general.alignment");
}

// One tensor info followed by `data_bytes` of data; the tensor fields are the test's to break.
std::vector<uint8_t> one_tensor(const std::string& name, const std::vector<int64_t>& shape, uint32_t type,
                                uint64_t offset, size_t data_bytes) {
  GgufBytes g;
  g.header(1, 0).tensor_info(name, shape, type, offset).pad().zeros(data_bytes);
  return g.b;
}

TEST(GgufMalformed, UnknownTensorTypeId) {
  for (uint32_t t : {4u, 5u, 31u, 99u, 0xffffffffu}) {
    const std::string msg = parse_error(one_tensor("blk.0.w", {32}, t, 0, 256), "type.gguf");
    EXPECT_HAS(msg, "type.gguf");
    EXPECT_HAS(msg, "'blk.0.w'");
    EXPECT_HAS(msg, "unknown type id " + std::to_string(t));
  }
}

TEST(GgufMalformed, DimensionCountOutOfRange) {
  for (const auto& shape : {std::vector<int64_t>{}, std::vector<int64_t>{1, 1, 1, 1, 1}}) {
    const std::string msg = parse_error(one_tensor("blk.1.w", shape, kF32, 0, 64), "dims.gguf");
    EXPECT_HAS(msg, "dims.gguf");
    EXPECT_HAS(msg, "'blk.1.w' has " + std::to_string(shape.size()) + " dimensions");
  }
  GgufBytes g;  // an absurd count must not drive a long read loop
  g.header(1, 0).str("x").u32(0xffffffffu).zeros(64);
  EXPECT_HAS(parse_error(g.b, "dims.gguf"), "'x' has 4294967295 dimensions");
}

TEST(GgufMalformed, NegativeDimension) {
  const std::string msg = parse_error(one_tensor("neg", {8, -2}, kF32, 0, 64), "neg.gguf");
  EXPECT_HAS(msg, "neg.gguf");
  EXPECT_HAS(msg, "'neg' has negative dimension -2");
}

TEST(GgufMalformed, ElementCountOverflow) {
  const int64_t big = int64_t(1) << 40;
  std::string msg = parse_error(one_tensor("huge", {big, big}, kF32, 0, 64), "ovf.gguf");
  EXPECT_HAS(msg, "ovf.gguf");
  EXPECT_HAS(msg, "'huge'");
  EXPECT_HAS(msg, "overflows");
  // Elements fit in int64 but bytes do not (f32: 4 bytes each).
  msg = parse_error(one_tensor("bytes", {int64_t(1) << 62}, kF32, 0, 64), "ovf.gguf");
  EXPECT_HAS(msg, "'bytes'");
  EXPECT_HAS(msg, "overflows");
}

// Found by fuzzing: a zero-length row made rows() divide by zero, and a zero dim hid an
// overflowing product of the others.
TEST(GgufMalformed, ZeroDimensions) {
  auto b = one_tensor("empty", {0, 4}, kF32, 0, 0);
  auto f = GgufFile::parse(b.data(), b.size(), "zero.gguf");
  EXPECT_EQ(f->tensor("empty").rows(), 4);
  EXPECT_EQ(f->tensor("empty").row_bytes(), 0u);
  EXPECT_EQ(f->tensor("empty").nbytes, 0u);
  const int64_t big = int64_t(1) << 40;
  const std::string msg = parse_error(one_tensor("hidden", {0, big, big}, kF32, 0, 0), "zero.gguf");
  EXPECT_HAS(msg, "'hidden'");
  EXPECT_HAS(msg, "overflows");
}

TEST(GgufMalformed, RowNotAMultipleOfTheBlock) {
  const std::string msg = parse_error(one_tensor("q", {33}, kQ8_0, 0, 64), "blk.gguf");
  EXPECT_HAS(msg, "'q'");
  EXPECT_HAS(msg, "block size 32");
}

TEST(GgufMalformed, UnalignedOffset) {
  const std::string msg = parse_error(one_tensor("una", {4}, kF32, 4, 64), "una.gguf");
  EXPECT_HAS(msg, "una.gguf");
  EXPECT_HAS(msg, "'una' offset 4 is not aligned to 32");
}

TEST(GgufMalformed, TensorDataOutOfBounds) {
  std::string msg = parse_error(one_tensor("oob", {16}, kF32, 0, 63), "oob.gguf");
  EXPECT_HAS(msg, "oob.gguf");
  EXPECT_HAS(msg, "'oob'");
  EXPECT_HAS(msg, "outside the data section");
  msg = parse_error(one_tensor("far", {1}, kF32, uint64_t(1) << 63, 64), "oob.gguf");
  EXPECT_HAS(msg, "'far'");
  msg = parse_error(one_tensor("wrap", {16}, kF32, std::numeric_limits<uint64_t>::max() - 31, 64), "oob.gguf");
  EXPECT_HAS(msg, "'wrap'");
}

TEST(GgufMalformed, OverlappingTensors) {
  GgufBytes g;
  g.header(2, 0).tensor_info("first", {16}, kF32, 0).tensor_info("second", {8}, kF32, 32).pad().zeros(128);
  const std::string msg = parse_error(g.b, "ovl.gguf");
  EXPECT_HAS(msg, "ovl.gguf");
  EXPECT_HAS(msg, "'first'");
  EXPECT_HAS(msg, "'second'");
  EXPECT_HAS(msg, "overlap");
}

TEST(GgufMalformed, DuplicateTensorName) {
  GgufBytes g;
  g.header(2, 0).tensor_info("twice", {8}, kF32, 0).tensor_info("twice", {8}, kF32, 32).pad().zeros(64);
  const std::string msg = parse_error(g.b, "duptensor.gguf");
  EXPECT_HAS(msg, "duptensor.gguf");
  EXPECT_HAS(msg, "'twice' appears twice");
}

TEST(GgufMalformed, OverlongNames) {
  GgufBytes g;
  g.header(0, 1).str(std::string(5000, 'k')).u32(4).u32(1);
  EXPECT_HAS(parse_error(g.b, "long.gguf"), "limit");
}

TEST(GgufMalformed, OpenNamesAMissingFile) {
  try {
    GgufFile::open("/nonexistent/tandem-no-such-model.gguf");
    FAIL() << "opened";
  } catch (const Error& e) {
    EXPECT_HAS(std::string(e.what()), "tandem-no-such-model.gguf");
  }
}

}  // namespace
}  // namespace tandem
