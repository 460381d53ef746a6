#include "runtime/server/admission_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace tandem::server {
namespace {

using std::chrono::milliseconds;

TEST(AdmissionQueue, AdmitsTheRunningOnePlusTheQueueThenRefuses) {
  AdmissionQueue q(2);
  const auto a = q.admit(), b = q.admit(), c = q.admit();
  ASSERT_TRUE(a && b && c);
  EXPECT_FALSE(q.admit());
  EXPECT_TRUE(q.wait_turn(*a, {}, milliseconds(5)));
  EXPECT_EQ(q.running(), 1u);
  EXPECT_EQ(q.waiting(), 2u);
  EXPECT_FALSE(q.admit());
  q.finish(*a);
  EXPECT_TRUE(q.admit());  // a's place is free again
}

TEST(AdmissionQueue, ParallelSlotsRunTogetherAndTheQueueComesOnTop) {
  AdmissionQueue q(1, 3);  // three run at once, one more may wait
  std::vector<uint64_t> t;
  for (int i = 0; i < 4; ++i) {
    const auto x = q.admit();
    ASSERT_TRUE(x) << i;
    t.push_back(*x);
  }
  EXPECT_FALSE(q.admit());
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(q.wait_turn(t[size_t(i)], {}, milliseconds(5)));
  EXPECT_EQ(q.running(), 3u);
  EXPECT_EQ(q.waiting(), 1u);
  // The fourth waits for a place: it leaves when told to, without running.
  EXPECT_FALSE(q.wait_turn(t[3], [] { return true; }, milliseconds(5)));
  EXPECT_EQ(q.waiting(), 0u);
  const auto e = q.admit();
  ASSERT_TRUE(e);
  q.finish(t[0]);
  EXPECT_TRUE(q.wait_turn(*e, {}, milliseconds(5)));
  EXPECT_EQ(q.running(), 3u);
}

TEST(AdmissionQueue, ZeroQueueMeansOnlyTheRunningOne) {
  AdmissionQueue q(0);
  const auto a = q.admit();
  ASSERT_TRUE(a);
  EXPECT_FALSE(q.admit());
  q.finish(*a);
  EXPECT_TRUE(q.admit());
}

TEST(AdmissionQueue, TurnsComeInArrivalOrder) {
  AdmissionQueue q(4);
  const auto a = *q.admit(), b = *q.admit(), c = *q.admit();
  std::atomic<int> order{0};
  int b_at = -1, c_at = -1;
  ASSERT_TRUE(q.wait_turn(a, {}, milliseconds(5)));
  std::thread tc([&] {
    if (q.wait_turn(c, {}, milliseconds(5))) c_at = order++;
    q.finish(c);
  });
  std::thread tb([&] {
    if (q.wait_turn(b, {}, milliseconds(5))) b_at = order++;
    q.finish(b);
  });
  std::this_thread::sleep_for(milliseconds(30));
  q.finish(a);
  tb.join();
  tc.join();
  EXPECT_EQ(b_at, 0);
  EXPECT_EQ(c_at, 1);
}

TEST(AdmissionQueue, AWaiterThatLeavesGivesUpItsPlace) {
  AdmissionQueue q(1);
  const auto a = *q.admit(), b = *q.admit();
  ASSERT_TRUE(q.wait_turn(a, {}, milliseconds(5)));
  std::atomic<bool> leave{false};
  std::thread tb([&] { EXPECT_FALSE(q.wait_turn(b, [&] { return leave.load(); }, milliseconds(5))); });
  leave = true;
  tb.join();
  EXPECT_EQ(q.waiting(), 0u);
  EXPECT_TRUE(q.admit());
}

TEST(AdmissionQueue, CloseSendsWaitersAwayAndRefusesNewOnes) {
  AdmissionQueue q(2);
  const auto a = *q.admit(), b = *q.admit();
  ASSERT_TRUE(q.wait_turn(a, {}, milliseconds(5)));
  std::thread tb([&] { EXPECT_FALSE(q.wait_turn(b, {}, milliseconds(1000))); });
  std::this_thread::sleep_for(milliseconds(10));
  q.close();
  tb.join();
  EXPECT_FALSE(q.admit());
}

}  // namespace
}  // namespace tandem::server
