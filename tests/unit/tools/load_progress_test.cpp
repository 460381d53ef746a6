// The load progress renderer (formatting, throttling, terminal and plain output), the budget
// line, and LoadMeter's ordering under threads.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "runtime/core/load_progress.h"
#include "tools/load_progress.h"

namespace tandem::tools {
namespace {

// Everything written to a FILE*, read back.
struct Capture {
  std::FILE* f = std::tmpfile();
  ~Capture() { std::fclose(f); }
  std::string text() {
    std::fflush(f);
    std::string s(size_t(std::ftell(f)), '\0');
    std::rewind(f);
    s.resize(std::fread(s.data(), 1, s.size(), f));
    std::fseek(f, 0, SEEK_END);
    return s;
  }
};

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + what.size())) ++n;
  return n;
}

constexpr uint64_t kMiB = 1 << 20;

TEST(LoadProgressFormat, BytesRateDuration) {
  EXPECT_EQ(format_bytes(0), "0 KiB");
  EXPECT_EQ(format_bytes(12 * 1024), "12 KiB");
  EXPECT_EQ(format_bytes(4404019), "4.2 MiB");
  EXPECT_EQ(format_bytes(512 * kMiB), "512 MiB");
  EXPECT_EQ(format_bytes(uint64_t(9.4 * 1024) * kMiB), "9.4 GiB");
  EXPECT_EQ(format_rate(812e6), "812 MB/s");
  EXPECT_EQ(format_rate(1.94e9), "1.9 GB/s");
  EXPECT_EQ(format_duration(7.2), "7s");
  EXPECT_EQ(format_duration(125), "2m05s");
  EXPECT_EQ(format_duration(3720), "1h02m");
  EXPECT_EQ(format_duration(-1), "--");
  EXPECT_EQ(format_duration(1.0 / 0.0), "--");
}

TEST(LoadProgressFormat, BarLineHasPercentBytesRateEtaPhase) {
  // 1000 MB of 4000 MB after 2 s: 500 MB/s, 3000 MB left: 6 s.
  const std::string line = LoadProgressBar::bar_line({"repacking experts", 1000000000, 4000000000, false}, 2.0);
  EXPECT_NE(line.find(" 25%"), std::string::npos) << line;
  EXPECT_NE(line.find("954 MiB / 3.7 GiB"), std::string::npos) << line;
  EXPECT_NE(line.find("500 MB/s"), std::string::npos) << line;
  EXPECT_NE(line.find("ETA 6s"), std::string::npos) << line;
  EXPECT_NE(line.find("repacking experts"), std::string::npos) << line;
  // Nothing done yet: no rate, no ETA.
  const std::string start = LoadProgressBar::bar_line({"mapping", 0, 100, false}, 0.0);
  EXPECT_EQ(start.find("MB/s"), std::string::npos) << start;
  EXPECT_EQ(start.find("ETA"), std::string::npos) << start;
}

TEST(LoadProgressBar, TerminalRedrawsAtMostTenTimesASecond) {
  Capture out;
  double now = 0;
  LoadProgressBar bar(out.f, true, [&] { return now; });
  const uint64_t total = 1000 * kMiB;
  // 1000 calls over 1 s: one every millisecond.
  for (int i = 0; i < 1000; ++i) {
    now = i * 0.001;
    bar({"repacking experts", uint64_t(i) * kMiB, total, false});
  }
  now = 1.0;
  bar({"ready", total, total, true});
  const std::string s = out.text();
  const size_t draws = count(s, "\r");
  // A redraw every 0.1 s from 0.25 s on (8), plus the done line.
  EXPECT_GE(draws, 8u) << s;
  EXPECT_LE(draws, 10u) << s;
  EXPECT_NE(s.find("loaded 1000 MiB in 1.0 s"), std::string::npos) << s;
  EXPECT_EQ(s.back(), '\n');
}

TEST(LoadProgressBar, TerminalQuickLoadShowsOnlyTheDoneLine) {
  Capture out;
  double now = 0;
  LoadProgressBar bar(out.f, true, [&] { return now; });
  bar({"mapping", 0, 100 * kMiB, false});
  now = 0.1;
  bar({"repacking experts", 50 * kMiB, 100 * kMiB, false});
  now = 0.2;
  bar({"ready", 100 * kMiB, 100 * kMiB, true});
  EXPECT_EQ(out.text(), "\rloaded 100 MiB in 0.2 s (524 MB/s)\x1b[K\n");
}

TEST(LoadProgressBar, PlainOutputIsStartQuartersAndDone) {
  Capture out;
  double now = 0;
  LoadProgressBar bar(out.f, false, [&] { return now; });
  const uint64_t total = 100 * kMiB;
  for (int i = 0; i <= 100; ++i) {
    now = i * 0.05;
    bar({"mapping experts", uint64_t(i) * kMiB, total, false});
  }
  now = 5.5;
  bar({"ready", total, total, true});
  const std::string s = out.text();
  EXPECT_EQ(s.find('\r'), std::string::npos) << s;
  EXPECT_EQ(count(s, "\n"), 5u) << s;  // start, 25%, 50%, 75%, done
  EXPECT_EQ(s.find("loading 100 MiB (mapping experts)\n"), 0u) << s;
  EXPECT_NE(s.find(" 25%"), std::string::npos) << s;
  EXPECT_NE(s.find(" 50%"), std::string::npos) << s;
  EXPECT_NE(s.find(" 75%"), std::string::npos) << s;
  EXPECT_NE(s.find("loaded 100 MiB in 5.5 s"), std::string::npos) << s;
}

TEST(LoadProgressBar, PlainOutputJumpingPastSeveralQuartersPrintsOneLine) {
  Capture out;
  LoadProgressBar bar(out.f, false, [] { return 0.0; });
  bar({"mapping", 0, 100, false});
  bar({"uploading to GPU", 90, 100, false});
  bar({"uploading to GPU", 95, 100, false});
  bar({"ready", 100, 100, true});
  EXPECT_EQ(count(out.text(), "\n"), 3u) << out.text();
}

TEST(LoadBudgetLine, HostGpusAndKvCache) {
  RulesPlan p;
  p.summary = "placement automatic plan";
  p.budget.host_total = uint64_t(9.4 * 1024) * kMiB;
  p.budget.gpu_total = {uint64_t(1.2 * 1024) * kMiB, 0};
  p.budget.kv_total = 300 * kMiB;
  p.gpu_names = {"NVIDIA H200", "other"};
  EXPECT_EQ(load_budget_line("/models/M.gguf", p),
            "loading M.gguf: 9.4 GiB host RAM, 1.2 GiB on gpu:0 (NVIDIA H200), KV cache 300 MiB");
  EXPECT_EQ(load_budget_line("/models/M.gguf", RulesPlan{}), "");  // no plan (reference path)
}

TEST(LoadMeter, ThreadsSeeMonotonicBytesEndingAtTotal) {
  std::vector<uint64_t> seen;
  bool finished = false;
  constexpr int kThreads = 4, kEach = 500;
  const uint64_t total = uint64_t(kThreads) * kEach * 3 + 7;  // some bytes nobody reports
  LoadMeter meter([&](const LoadProgress& p) {
    seen.push_back(p.done);
    EXPECT_EQ(p.total, total);
    EXPECT_FALSE(finished);
    finished = p.finished;
  }, total);
  const LoadBytesFn add = meter.adder();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) add("repacking experts", 3);
    });
  for (auto& t : threads) t.join();
  meter.finish();
  meter.finish();               // once only
  add("late", 5);               // ignored after finish
  ASSERT_EQ(seen.size(), size_t(kThreads * kEach + 1));
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_LE(seen[i - 1], seen[i]);
  EXPECT_EQ(seen[seen.size() - 2], total - 7);
  EXPECT_EQ(seen.back(), total);
  EXPECT_TRUE(finished);
}

TEST(LoadMeter, CapsAtTotalAndIsInertWithoutCallback) {
  std::vector<uint64_t> seen;
  LoadMeter meter([&](const LoadProgress& p) { seen.push_back(p.done); }, 10);
  meter.add("x", 8);
  meter.add("x", 8);
  EXPECT_EQ(seen.back(), 10u);
  LoadMeter none({}, 10);
  EXPECT_FALSE(none.adder());
  none.add("x", 1);
  none.finish();
}

}  // namespace
}  // namespace tandem::tools
