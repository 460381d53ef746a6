// The expanded i-quant codebooks: every entry is made of the format's levels, entries are
// distinct, and each table hashes to the value its source table in the format definition had
// when it was transcribed (FNV-1a 64 over the little-endian bytes), which catches a wrong
// digit anywhere in the packed data or in the compile-time expansion.
#include "runtime/quant/iq_grids.h"

#include <gtest/gtest.h>

#include <bit>
#include <set>
#include <vector>

namespace tandem::iq {
namespace {

template <typename Word, size_t N>
uint64_t fnv1a(const Word (&t)[N]) {
  uint64_t h = 1469598103934665603ull;
  for (Word w : t)
    for (size_t j = 0; j < sizeof(Word); ++j) h = (h ^ ((uint64_t(w) >> (8 * j)) & 0xff)) * 1099511628211ull;
  return h;
}

template <typename Word, size_t N>
void expect_levels(const Word (&t)[N], std::set<uint8_t> levels) {
  std::set<Word> distinct(std::begin(t), std::end(t));
  EXPECT_EQ(distinct.size(), N);
  for (Word w : t)
    for (size_t j = 0; j < sizeof(Word); ++j) ASSERT_TRUE(levels.count(uint8_t(uint64_t(w) >> (8 * j))));
}

TEST(IqGrids, EntriesUseTheFormatLevels) {
  expect_levels(kIq2xxsGrid, {8, 25, 43});
  expect_levels(kIq2xsGrid, {8, 25, 43});
  expect_levels(kIq2sGrid, {8, 25, 43});
  expect_levels(kIq3xxsGrid, {4, 12, 20, 28, 36, 44, 52, 62});
  expect_levels(kIq3sGrid, {1, 3, 5, 7, 9, 11, 13, 15});
  expect_levels(kIq1sGrid, {0xff, 0x00, 0x01});
}

TEST(IqGrids, TablesMatchTheFormatDefinition) {
  EXPECT_EQ(fnv1a(kIq2xxsGrid), 0x5bd45ef8a547a7e8ull);
  EXPECT_EQ(fnv1a(kIq2xsGrid), 0xa3e52388268ca2a3ull);
  EXPECT_EQ(fnv1a(kIq2sGrid), 0xcdb5ae5bcfe7fb32ull);
  EXPECT_EQ(fnv1a(kIq3xxsGrid), 0x2748ed45beb63233ull);
  EXPECT_EQ(fnv1a(kIq3sGrid), 0x5f1781aa06d14fbfull);
  EXPECT_EQ(fnv1a(kIq1sGrid), 0x31aaba1fc89a41d0ull);
}

TEST(IqGrids, SignBytesHaveEvenParity) {
  std::set<uint8_t> seen;
  for (unsigned i = 0; i < 128; ++i) {
    EXPECT_EQ(kSignsEven[i] & 0x7f, i);
    EXPECT_EQ(std::popcount(unsigned(kSignsEven[i])) % 2, 0) << i;
    seen.insert(kSignsEven[i]);
  }
  EXPECT_EQ(seen.size(), 128u);
}

}  // namespace
}  // namespace tandem::iq
