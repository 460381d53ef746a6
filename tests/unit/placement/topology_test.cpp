#include "placement/topology.h"

#include <gtest/gtest.h>

#include "runtime/core/error.h"

namespace tandem::placement {
namespace {

TEST(PlacementTopology, SyntheticTwoAndFourNodes) {
  const Topology two = Topology::from_hwloc_synthetic("pack:2 numa:1(memory=16GiB) core:4 pu:2");
  ASSERT_EQ(two.nodes.size(), 2u);
  for (const NumaNode& n : two.nodes) {
    EXPECT_EQ(n.cores, 4);
    EXPECT_EQ(n.memory_bytes, 16ull << 30);
  }
  EXPECT_EQ(two.host_memory_bytes(), 32ull << 30);
  EXPECT_EQ(two.total_cores(), 8);
  const Topology four = Topology::from_hwloc_synthetic("pack:2 numa:2(memory=8GiB) core:3 pu:1");
  ASSERT_EQ(four.nodes.size(), 4u);
  EXPECT_EQ(four.nodes[3].index, 3);
  EXPECT_EQ(four.nodes[3].cores, 3);
  EXPECT_EQ(four.host_memory_bytes(), 32ull << 30);
  EXPECT_THROW(Topology::from_hwloc_synthetic("nonsense:x"), Error);
}

TEST(PlacementTopology, DetectFindsThisMachine) {
  const Topology t = Topology::detect_cpu();
  ASSERT_FALSE(t.nodes.empty());
  EXPECT_GT(t.total_cores(), 0);
  EXPECT_TRUE(t.gpus.empty());
}

TEST(PlacementTopology, GpusAndSizes) {
  Topology t = Topology::from_hwloc_synthetic("pack:1 numa:1(memory=1GiB) core:2 pu:1");
  t.add_gpu("a", parse_byte_size("24GiB"));
  t.add_gpu("b", parse_byte_size("80GB"));
  ASSERT_EQ(t.gpus.size(), 2u);
  EXPECT_EQ(t.gpus[1].index, 1);
  EXPECT_EQ(t.gpus[0].device_local_bytes, 24ull << 30);
  EXPECT_EQ(t.gpus[1].device_local_bytes, 80'000'000'000ull);
  EXPECT_EQ(parse_byte_size("512MiB"), 512ull << 20);
  EXPECT_EQ(parse_byte_size("7"), 7u);
  for (const char* bad : {"", "GiB", "12XB", "-1GiB", "99999999999TiB"}) EXPECT_THROW(parse_byte_size(bad), Error) << bad;
}

}  // namespace
}  // namespace tandem::placement
