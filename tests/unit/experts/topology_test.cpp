// NUMA planning on synthetic hwloc topologies (this machine has one node), the worker pool's
// SPMD job and barrier, and expert sharding.
#include <gtest/gtest.h>

#include <atomic>
#include <set>

#include "experts/cpu_topology.h"
#include "experts/worker_pool.h"
#include "runtime/core/error.h"

namespace tandem::experts {
namespace {

TEST(CpuTopology, SyntheticTwoSocketsFourNodes) {
  const CpuTopology topo = read_cpu_topology(false, "package:2 numa:2 core:8 pu:2");
  EXPECT_TRUE(topo.synthetic);
  ASSERT_EQ(topo.nodes.size(), 4u);
  std::set<int> all;
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(topo.nodes[i].node, int(i));
    EXPECT_EQ(topo.nodes[i].pus.size(), 8u) << "one PU per core without SMT";
    for (int pu : topo.nodes[i].pus) {
      EXPECT_EQ(pu % 2, 0) << "hyper-thread sibling " << pu << " chosen";
      all.insert(pu);
    }
  }
  EXPECT_EQ(all.size(), 32u);
}

TEST(CpuTopology, SmtSiblingsComeAfterCores) {
  const CpuTopology topo = read_cpu_topology(true, "package:2 numa:2 core:8 pu:2");
  ASSERT_EQ(topo.nodes.size(), 4u);
  for (const auto& node : topo.nodes) {
    ASSERT_EQ(node.pus.size(), 16u);
    for (size_t i = 0; i < 8; ++i) EXPECT_EQ(node.pus[i] % 2, 0);
    for (size_t i = 8; i < 16; ++i) EXPECT_EQ(node.pus[i] % 2, 1);
  }
  const auto plan = plan_node_pools(topo, 6);
  for (const auto& node : plan) {
    ASSERT_EQ(node.pus.size(), 6u);
    for (int pu : node.pus) EXPECT_EQ(pu % 2, 0) << "threads go to cores before siblings";
  }
  EXPECT_EQ(plan_node_pools(topo, 0)[0].pus.size(), 16u);
  EXPECT_EQ(plan_node_pools(topo, 100)[0].pus.size(), 16u) << "no oversubscription";
  EXPECT_THROW(plan_node_pools(topo, -1), Error);

  // Reserved cores come off the first node only, before the per-node thread cut.
  const auto reserved = plan_node_pools(topo, 0, 2);
  ASSERT_EQ(reserved[0].pus.size(), 14u);
  EXPECT_EQ(reserved[0].pus.front(), plan_node_pools(topo, 0)[0].pus[2]);
  for (size_t n = 1; n < reserved.size(); ++n) EXPECT_EQ(reserved[n].pus.size(), 16u);
  EXPECT_EQ(plan_node_pools(topo, 6, 1)[0].pus.size(), 6u);
  EXPECT_THROW(plan_node_pools(topo, 0, 16), Error) << "no core left for the expert threads";
  EXPECT_THROW(plan_node_pools(topo, 0, -1), Error);
}

TEST(CpuTopology, ThisMachineHasCpus) {
  const CpuTopology topo = read_cpu_topology();
  ASSERT_FALSE(topo.nodes.empty());
  EXPECT_FALSE(topo.nodes[0].pus.empty());
}

TEST(CpuTopology, BadSyntheticDescriptionIsNamed) {
  try {
    read_cpu_topology(false, "bogus:3");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bogus:3"), std::string::npos) << e.what();
  }
}

TEST(ExpertSharding, ContiguousBalancedRanges) {
  const auto owner = shard_experts(256, 4);
  for (int e = 0; e < 256; ++e) EXPECT_EQ(owner[size_t(e)], e / 64);
  const auto uneven = shard_experts(10, 4);
  std::vector<int> count(4);
  for (size_t e = 0; e < uneven.size(); ++e) {
    ++count[size_t(uneven[e])];
    if (e > 0) {
      EXPECT_GE(uneven[e], uneven[e - 1]);
    }
  }
  for (int c : count) EXPECT_TRUE(c == 2 || c == 3) << c;
  EXPECT_THROW(shard_experts(8, 0), Error);
}

TEST(WorkerPool, EveryThreadRunsAndBarrierOrdersPhases) {
  WorkerPool pool({}, 3);
  ASSERT_EQ(pool.size(), 3);
  for (int round = 0; round < 20; ++round) {
    std::atomic<int> phase1{0}, bad{0};
    std::atomic<int> seen_mask{0};
    pool.run([&](int t) {
      seen_mask.fetch_or(1 << t);
      phase1.fetch_add(1);
      pool.barrier();
      if (phase1.load() != 3) bad.fetch_add(1);
      pool.barrier();
      phase1.fetch_add(1);
    });
    EXPECT_EQ(seen_mask.load(), 7);
    EXPECT_EQ(bad.load(), 0);
    EXPECT_EQ(phase1.load(), 6);
  }
}

TEST(WorkerPool, PinnedToThisMachinesCpus) {
  const auto topo = read_cpu_topology();
  WorkerPool pool(topo.nodes[0].pus, 0);
  EXPECT_EQ(pool.size(), int(topo.nodes[0].pus.size()));
  std::atomic<int> ran{0};
  pool.run([&](int) { ran.fetch_add(1); });
  EXPECT_EQ(ran.load(), pool.size());
}

}  // namespace
}  // namespace tandem::experts
