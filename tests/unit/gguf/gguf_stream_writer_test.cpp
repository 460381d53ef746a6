// The streaming writer produces the same bytes as the in-memory one, whatever the write order.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "runtime/core/error.h"
#include "runtime/gguf/gguf_file.h"
#include "runtime/gguf/gguf_stream_writer.h"
#include "runtime/gguf/gguf_writer.h"
#include "tests/unit/gguf/temp_dir.h"

namespace tandem {
namespace {

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(seed * 31 + i * 13);
  return v;
}

TEST(GgufStreamWriter, MatchesInMemoryWriterForAnyAlignment) {
  for (uint32_t alignment : {32u, 64u}) {
    test::TempDir dir;
    GgufMetadata kv = {{"general.architecture", GgufValue::string("test")},
                       {"test.list", GgufValue::i32_array({1, 2, 3})}};
    std::vector<GgufTensorInfo> infos = {{"a", GgmlType::F32, {5}},
                                         {"b", GgmlType::Q8_0, {64, 3}},
                                         {"c", GgmlType::F16, {4, 2, 3}}};
    GgufWriter mem;
    mem.set_alignment(alignment);
    for (auto& [k, v] : kv) mem.set(k, v);
    std::vector<std::vector<uint8_t>> data;
    for (size_t i = 0; i < infos.size(); ++i) {
      data.push_back(pattern(infos[i].nbytes(), uint8_t(i + 1)));
      mem.add_tensor(infos[i].name, infos[i].type, infos[i].shape, data.back());
    }
    GgufStreamWriter s(dir.file("s.gguf"), kv, infos, alignment);
    // Out of order, in pieces, from several threads.
    std::vector<std::thread> threads;
    for (size_t i = infos.size(); i-- > 0;)
      threads.emplace_back([&, i] {
        const auto& d = data[i];
        const size_t half = d.size() / 2;
        s.write(i, half, d.data() + half, d.size() - half);
        s.write(i, 0, d.data(), half);
      });
    for (auto& t : threads) t.join();
    s.finish();
    EXPECT_EQ(read_all(dir.file("s.gguf")), mem.to_bytes()) << "alignment " << alignment;
    auto f = GgufFile::open(dir.file("s.gguf"));
    EXPECT_EQ(f->alignment(), alignment);
    EXPECT_EQ(f->tensor("c").data[5], data[2][5]);
  }
}

TEST(GgufStreamWriter, RefusesWritesOutsideATensor) {
  test::TempDir dir;
  GgufStreamWriter s(dir.file("x.gguf"), {}, {{"only", GgmlType::F32, {4}}});
  const std::vector<uint8_t> bytes(17, 0);
  try {
    s.write(0, 0, bytes.data(), 17);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'only'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(s.write(0, 16, bytes.data(), 1), Error);
  EXPECT_THROW(s.write(1, 0, bytes.data(), 1), Error);
  EXPECT_NO_THROW(s.write(0, 12, bytes.data(), 4));
  s.finish();
  EXPECT_THROW(GgufStreamWriter(dir.file("no/such/dir.gguf"), {}, {}), Error);
  EXPECT_THROW(GgufStreamWriter(dir.file("bad.gguf"), {}, {{"q", GgmlType::Q4_0, {31}}}), Error);
}

TEST(GgufStreamWriter, ReplacesAFileOthersHaveMappedOnlyWhenFinished) {
  test::TempDir dir;
  const std::string path = dir.file("m.gguf");
  const std::vector<GgufTensorInfo> infos = {{"t", GgmlType::F32, {4}}};
  const std::vector<uint8_t> old_bytes = pattern(16, 1), new_bytes = pattern(16, 2);
  {
    GgufStreamWriter w(path, {}, infos);
    w.write(0, 0, old_bytes.data(), old_bytes.size());
    w.finish();
  }
  auto reader = GgufFile::open(path);  // maps the first file
  {
    GgufStreamWriter w(path, {}, infos);  // an unfinished rewrite leaves both files alone
    w.write(0, 0, new_bytes.data(), new_bytes.size());
  }
  EXPECT_EQ(std::vector<uint8_t>(reader->tensor("t").data, reader->tensor("t").data + 16), old_bytes);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(std::filesystem::path(path).parent_path()), std::filesystem::directory_iterator()), 1)
      << "no partial file left behind";
  GgufStreamWriter w(path, {}, infos);
  w.write(0, 0, new_bytes.data(), new_bytes.size());
  w.finish();
  EXPECT_EQ(std::vector<uint8_t>(reader->tensor("t").data, reader->tensor("t").data + 16), old_bytes)
      << "the mapped file is replaced, never rewritten in place";
  const auto fresh = GgufFile::open(path);
  EXPECT_EQ(std::vector<uint8_t>(fresh->tensor("t").data, fresh->tensor("t").data + 16), new_bytes);
}

}  // namespace
}  // namespace tandem
