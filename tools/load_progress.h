// What a command shows while a model loads: first the memory the load will take (from the
// placement plan's budget), then a progress bar on stderr. Every command that loads a model uses
// these, so they all look the same.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

#include "runtime/core/load_progress.h"
#include "runtime/engine/placement_options.h"

namespace tandem::tools {

std::string format_bytes(uint64_t bytes);         // "12 KiB", "4.2 MiB", "512 MiB", "9.4 GiB"
std::string format_rate(double bytes_per_second);  // "812 MB/s", "1.9 GB/s"
std::string format_duration(double seconds);       // "7s", "2m05s", "1h02m"; "--" when unknown

// "loading M: 9.4 GiB host RAM, 1.2 GiB on gpu:0 (NVIDIA H200), KV cache 0.3 GiB"; empty when the
// command made no plan (the reference path).
std::string load_budget_line(const std::string& model_path, const RulesPlan& plan);

// Draws LoadProgress calls. On a terminal: one line redrawn in place (\r) at most every
// kRedrawSeconds from kFirstDrawSeconds on (a quick load shows only its done line, and the
// loader's own first messages come before the bar rather than inside it), then the done line.
// Otherwise plain lines: the start, each 25%, and the done line with the total time. Calls must
// come one at a time (LoadMeter serializes them).
class LoadProgressBar {
 public:
  using Clock = std::function<double()>;  // seconds, steady
  static constexpr double kRedrawSeconds = 0.1;
  static constexpr double kFirstDrawSeconds = 0.25;

  LoadProgressBar(std::FILE* out, bool tty, Clock clock = {});
  void operator()(const LoadProgress& p);

  // The line drawn for p, `elapsed` seconds after bytes began to come (bar, percent, bytes,
  // rate, ETA, phase).
  static std::string bar_line(const LoadProgress& p, double elapsed);

 private:
  std::FILE* out_;
  bool tty_;
  Clock clock_;
  bool started_ = false;
  double start_ = 0, last_draw_ = 0;
  double rate_start_ = 0;  // the last call with nothing done yet: rate and ETA count from here
  bool drawn_ = false;  // terminal: a bar line is on screen
  int quarters_shown_ = 0;  // non-tty: 25% steps printed so far
};

// "memory: plan host N B, gpu N B, KV cache N B; VmRSS N kB, VmHWM N kB (anonymous N kB, file N kB)": the plan's budget
// beside this process's resident memory now and at its peak (/proc/self/status; -1 unreadable).
// gpu: weights and KV cache on all GPUs (the workspace reserve left out); KV cache: all devices.
std::string memory_report_line(const placement::MemoryBudget& budget);

// For the commands: prints load_budget_line (when there is one) to stderr, and returns a progress
// callback drawing a LoadProgressBar on stderr (a terminal or not, as isatty says); with
// TANDEM_MEMORY_REPORT=1 it prints memory_report_line once the load is done.
LoadProgressFn announce_load(const std::string& model_path, const RulesPlan& plan);

}  // namespace tandem::tools
