// Writer -> reader round trips: every value type, nested arrays, tensor data and alignment.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "runtime/core/error.h"
#include "runtime/gguf/gguf_file.h"
#include "runtime/gguf/gguf_writer.h"
#include "tests/unit/gguf/temp_dir.h"

namespace tandem {
namespace {

GgufValue scalar(GgufValueType t, uint64_t u) { return {t, GgufValueType::U8, u}; }
GgufValue scalar(GgufValueType t, int64_t i) { return {t, GgufValueType::U8, i}; }
GgufValue scalar(GgufValueType t, double d) { return {t, GgufValueType::U8, d}; }

std::vector<uint8_t> iota_bytes(size_t n, uint8_t start) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(start + i * 7);
  return v;
}

// Deep comparison: the reader must hand back exactly what was written, types included.
void expect_same(const GgufValue& a, const GgufValue& b, const std::string& where) {
  ASSERT_EQ(a.type, b.type) << where;
  if (a.type == GgufValueType::ARRAY) {
    ASSERT_EQ(a.array_type, b.array_type) << where;
    const auto& x = *a.as_array();
    const auto& y = *b.as_array();
    ASSERT_EQ(x.size(), y.size()) << where;
    for (size_t i = 0; i < x.size(); ++i) expect_same(x[i], y[i], where + "[" + std::to_string(i) + "]");
    return;
  }
  ASSERT_EQ(a.v.index(), b.v.index()) << where;
  if (auto* u = std::get_if<uint64_t>(&a.v)) {
    EXPECT_EQ(*u, std::get<uint64_t>(b.v)) << where;
  }
  if (auto* i = std::get_if<int64_t>(&a.v)) {
    EXPECT_EQ(*i, std::get<int64_t>(b.v)) << where;
  }
  if (auto* d = std::get_if<double>(&a.v)) {
    EXPECT_EQ(*d, std::get<double>(b.v)) << where;
  }
  if (auto* x = std::get_if<bool>(&a.v)) {
    EXPECT_EQ(*x, std::get<bool>(b.v)) << where;
  }
  if (auto* s = std::get_if<std::string>(&a.v)) {
    EXPECT_EQ(*s, std::get<std::string>(b.v)) << where;
  }
}

GgufWriter writer_with_every_type(std::vector<std::pair<std::string, GgufValue>>& expected) {
  using T = GgufValueType;
  expected = {
      {"t.u8", scalar(T::U8, uint64_t(250))},
      {"t.i8", scalar(T::I8, int64_t(-128))},
      {"t.u16", scalar(T::U16, uint64_t(65535))},
      {"t.i16", scalar(T::I16, int64_t(-32768))},
      {"t.u32", scalar(T::U32, uint64_t(4000000000u))},
      {"t.i32", scalar(T::I32, int64_t(std::numeric_limits<int32_t>::min()))},
      {"t.u64", scalar(T::U64, std::numeric_limits<uint64_t>::max())},
      {"t.i64", scalar(T::I64, std::numeric_limits<int64_t>::min())},
      {"t.f32", scalar(T::F32, double(1.5f))},
      {"t.f64", scalar(T::F64, 3.141592653589793)},
      {"t.bool_true", GgufValue::boolean(true)},
      {"t.bool_false", GgufValue::boolean(false)},
      {"t.string", GgufValue::string("héllo ▁ 世界\n")},
      {"t.empty_string", GgufValue::string("")},
      {"t.arr_i32", GgufValue::i32_array({1, -2, 3})},
      {"t.arr_f32", GgufValue::f32_array({0.25f, -8.0f})},
      {"t.arr_str", GgufValue::string_array({"a", "", "Ġb"})},
      {"t.arr_empty", GgufValue::array(T::U64, {})},
      {"t.arr_bool", GgufValue::array(T::BOOL, {GgufValue::boolean(true), GgufValue::boolean(false)})},
      {"t.arr_nested",
       GgufValue::array(T::ARRAY, {GgufValue::array(T::I16, {scalar(T::I16, int64_t(-5)), scalar(T::I16, int64_t(7))}),
                                   GgufValue::array(T::I16, {}),
                                   GgufValue::array(T::I16, {scalar(T::I16, int64_t(9))})})},
      {"t.arr_nested3",
       GgufValue::array(T::ARRAY, {GgufValue::array(T::ARRAY, {GgufValue::string_array({"x", "yz"})})})},
      {"t.arr_f64", GgufValue::array(T::F64, {scalar(T::F64, -0.0), scalar(T::F64, 1e300)})},
      {"t.arr_u8", GgufValue::array(T::U8, {scalar(T::U8, uint64_t(0)), scalar(T::U8, uint64_t(255))})},
  };
  GgufWriter w;
  for (const auto& [k, v] : expected) w.set(k, v);
  return w;
}

TEST(GgufRoundTrip, EveryValueTypeSurvives) {
  std::vector<std::pair<std::string, GgufValue>> expected;
  GgufWriter w = writer_with_every_type(expected);
  const auto bytes = w.to_bytes();
  auto f = GgufFile::parse(bytes.data(), bytes.size(), "mem");
  ASSERT_EQ(f->metadata().size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(f->metadata()[i].first, expected[i].first);  // order is kept
    const GgufValue* v = f->find(expected[i].first);
    ASSERT_NE(v, nullptr) << expected[i].first;
    expect_same(*v, expected[i].second, expected[i].first);
  }
  EXPECT_EQ(f->get_uint("t.u64"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(f->get_int("t.i8"), -128);
  EXPECT_FLOAT_EQ(float(f->get_float("t.f32")), 1.5f);
  EXPECT_TRUE(f->get_bool("t.bool_true"));
  EXPECT_EQ(f->get_string("t.string"), "héllo ▁ 世界\n");
  EXPECT_EQ(f->get_string_array("t.arr_str"), (std::vector<std::string>{"a", "", "Ġb"}));
  EXPECT_EQ(f->get_int_array("t.arr_i32"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(f->get_float_array("t.arr_f32"), (std::vector<float>{0.25f, -8.0f}));
}

TEST(GgufRoundTrip, SetReplacesAnExistingKey) {
  GgufWriter w;
  w.set("k", GgufValue::u32(1));
  w.set("k", GgufValue::string("two"));
  const auto bytes = w.to_bytes();
  auto f = GgufFile::parse(bytes.data(), bytes.size(), "mem");
  ASSERT_EQ(f->metadata().size(), 1u);
  EXPECT_EQ(f->get_string("k"), "two");
}

TEST(GgufRoundTrip, TypedGettersNameTheKeyOnMismatch) {
  GgufWriter w;
  w.set("a.string", GgufValue::string("s"));
  w.set("a.neg", GgufValue::i32(-1));
  const auto bytes = w.to_bytes();
  auto f = GgufFile::parse(bytes.data(), bytes.size(), "getters.gguf");
  try {
    f->get_uint("a.string");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("getters.gguf"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("a.string"), std::string::npos) << e.what();
  }
  EXPECT_THROW(f->get_uint("a.neg"), Error);
  try {
    f->get_string("a.missing");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'a.missing' is missing"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(f->get_uint_opt("a.missing").has_value());
}

TEST(GgufRoundTrip, TensorsKeepNameTypeShapeAndBytes) {
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("test"));
  // Sizes chosen so that padding is needed between tensors (5*4 = 20 bytes, q8_0 row = 34 bytes).
  const auto a = iota_bytes(20, 1);
  const auto b = iota_bytes(ggml_row_bytes(GgmlType::Q8_0, 64) * 3, 9);
  const auto c = iota_bytes(ggml_row_bytes(GgmlType::F16, 4) * 2 * 3, 200);
  w.add_tensor("a", GgmlType::F32, {5}, a);
  w.add_tensor("blk.0.b", GgmlType::Q8_0, {64, 3}, b);
  w.add_tensor("c.weight", GgmlType::F16, {4, 2, 3}, c);
  const auto bytes = w.to_bytes();
  auto f = GgufFile::parse(bytes.data(), bytes.size(), "mem");
  ASSERT_EQ(f->tensors().size(), 3u);
  EXPECT_EQ(f->tensors()[0].name, "a");
  const GgufTensor& tb = f->tensor("blk.0.b");
  EXPECT_EQ(tb.type, GgmlType::Q8_0);
  EXPECT_EQ(tb.shape, (std::vector<int64_t>{64, 3}));
  EXPECT_EQ(tb.rows(), 3);
  EXPECT_EQ(tb.row_bytes(), 68u);
  ASSERT_EQ(tb.nbytes, b.size());
  EXPECT_EQ(0, std::memcmp(tb.data, b.data(), b.size()));
  const GgufTensor& tc = f->tensor("c.weight");
  EXPECT_EQ(tc.elements(), 24);
  EXPECT_EQ(0, std::memcmp(tc.data, c.data(), c.size()));
  EXPECT_EQ(0, std::memcmp(f->tensor("a").data, a.data(), a.size()));
  for (const auto& t : f->tensors()) EXPECT_EQ((t.data - bytes.data()) % 32, 0) << t.name;
  EXPECT_EQ(f->total_tensor_bytes(), a.size() + b.size() + c.size());
  EXPECT_EQ(f->find_tensor("nope"), nullptr);
  try {
    f->tensor("nope");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'nope'"), std::string::npos);
  }
}

TEST(GgufRoundTrip, CustomAlignmentIsRecordedAndHonoured) {
  for (uint32_t alignment : {1u, 8u, 64u, 4096u}) {
    GgufWriter w;
    w.set_alignment(alignment);
    w.add_tensor("x", GgmlType::F32, {3}, iota_bytes(12, 0));
    w.add_tensor("y", GgmlType::F32, {5}, iota_bytes(20, 50));
    const auto bytes = w.to_bytes();
    auto f = GgufFile::parse(bytes.data(), bytes.size(), "mem");
    EXPECT_EQ(f->alignment(), alignment);
    EXPECT_EQ(f->has("general.alignment"), alignment != 32);
    for (const auto& t : f->tensors()) {
      EXPECT_EQ(t.offset % alignment, 0u) << t.name;
      EXPECT_EQ(size_t(t.data - bytes.data()) % alignment, 0u) << t.name;
    }
    EXPECT_EQ(f->tensor("y").data[0], 50);
  }
}

TEST(GgufRoundTrip, WriteAndOpenFromDisk) {
  test::TempDir dir;
  std::vector<std::pair<std::string, GgufValue>> expected;
  GgufWriter w = writer_with_every_type(expected);
  w.add_tensor("t", GgmlType::F32, {8}, iota_bytes(32, 3));
  const std::string path = dir.file("plain.gguf");
  w.write(path);
  auto f = GgufFile::open(path);
  EXPECT_EQ(f->path(), path);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->shard_count(), 1);
  EXPECT_EQ(f->tensor("t").data[0], 3);
  expect_same(*f->find("t.arr_nested3"), expected[20].second, "t.arr_nested3");
}

TEST(GgufRoundTrip, WriterRefusesBadTensors) {
  GgufWriter w;
  EXPECT_THROW(w.add_tensor("short", GgmlType::F32, {4}, iota_bytes(15, 0)), Error);
  EXPECT_THROW(w.add_tensor("notblock", GgmlType::Q4_0, {16}, iota_bytes(9, 0)), Error);
  EXPECT_THROW(w.write("/nonexistent-dir/x.gguf"), Error);
}

}  // namespace
}  // namespace tandem
