#include "tools/load_progress.h"

#include "runtime/core/knobs.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>

namespace tandem::tools {

namespace {

std::string printf_string(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string format_bytes(uint64_t bytes) {
  const double mib = double(bytes) / double(1 << 20);
  if (mib < 1) return printf_string("%.0f KiB", double(bytes) / 1024);
  if (mib < 10) return printf_string("%.1f MiB", mib);
  if (mib < 1024) return printf_string("%.0f MiB", mib);
  return printf_string("%.1f GiB", mib / 1024);
}

std::string format_rate(double bytes_per_second) {
  const double mb = bytes_per_second / 1e6;
  if (mb < 1000) return printf_string("%.0f MB/s", mb);
  return printf_string("%.1f GB/s", mb / 1000);
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--";
  const long s = std::lround(seconds);
  char buf[32];
  if (s < 60)
    std::snprintf(buf, sizeof buf, "%lds", s);
  else if (s < 3600)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
  return buf;
}

std::string load_budget_line(const std::string& model_path, const RulesPlan& plan) {
  const placement::MemoryBudget& b = plan.budget;
  if (plan.summary.empty()) return "";
  std::string line = "loading " + std::filesystem::path(model_path).filename().string() + ": " +
                     format_bytes(b.host_total) + " host RAM";
  for (size_t g = 0; g < b.gpu_total.size(); ++g) {
    if (b.gpu_total[g] == 0) continue;
    line += ", " + format_bytes(b.gpu_total[g]) + " on gpu:" + std::to_string(g);
    if (g < plan.gpu_names.size()) line += " (" + plan.gpu_names[g] + ")";
  }
  line += ", KV cache " + format_bytes(b.kv_total);
  return line;
}

LoadProgressBar::LoadProgressBar(std::FILE* out, bool tty, Clock clock)
    : out_(out), tty_(tty), clock_(clock ? std::move(clock) : Clock(steady_seconds)) {}

std::string LoadProgressBar::bar_line(const LoadProgress& p, double elapsed) {
  const double frac = p.total ? std::min(1.0, double(p.done) / double(p.total)) : 1.0;
  constexpr int kWidth = 24;
  const int filled = int(frac * kWidth);
  std::string line = "loading [" + std::string(size_t(filled), '#') + std::string(size_t(kWidth - filled), '-') + "] ";
  line += printf_string("%3.0f%%", frac * 100) + "  " + format_bytes(p.done) + " / " + format_bytes(p.total);
  const double rate = elapsed > 0 ? double(p.done) / elapsed : 0;
  if (rate > 0) {
    line += "  " + format_rate(rate);
    line += "  ETA " + format_duration(double(p.total - std::min(p.done, p.total)) / rate);
  }
  line += "  ";
  line += p.phase;
  return line;
}

void LoadProgressBar::operator()(const LoadProgress& p) {
  const double now = clock_();
  const bool first = !started_;
  if (first) {
    started_ = true;
    start_ = now;
  }
  const double elapsed = now - start_;
  // Parsing the header and tokenizer reports no bytes; counting it would make the first ETAs
  // far too long.
  if (p.done == 0) rate_start_ = now;
  if (p.finished) {
    const double rate = elapsed > 0 ? double(p.total) / elapsed : 0;
    std::string done = "loaded " + format_bytes(p.total) + " in " + printf_string("%.1f s", elapsed);
    if (rate > 0) done += " (" + format_rate(rate) + ")";
    if (tty_)
      std::fprintf(out_, "\r%s\x1b[K\n", done.c_str());
    else
      std::fprintf(out_, "%s\n", done.c_str());
    std::fflush(out_);
    return;
  }
  if (tty_) {
    if (elapsed < kFirstDrawSeconds || (drawn_ && now - last_draw_ < kRedrawSeconds)) return;
    last_draw_ = now;
    drawn_ = true;
    std::fprintf(out_, "\r%s\x1b[K", bar_line(p, now - rate_start_).c_str());
  } else {
    const int quarters = p.total ? int(4 * p.done / p.total) : 0;
    if (first)
      std::fprintf(out_, "loading %s (%s)\n", format_bytes(p.total).c_str(), p.phase);
    else if (quarters > quarters_shown_ && quarters < 4)
      std::fprintf(out_, "%s\n", bar_line(p, now - rate_start_).c_str());
    else
      return;
    quarters_shown_ = std::max(quarters_shown_, quarters);
  }
  std::fflush(out_);
}

std::string memory_report_line(const placement::MemoryBudget& b) {
  uint64_t gpu = 0;  // weights and KV cache; not the workspace the plan reserves per GPU
  for (size_t g = 0; g < b.gpu_weights.size(); ++g) gpu += b.gpu_weights[g] + b.gpu_kv[g];
  int64_t rss_kb = -1, hwm_kb = -1, anon_kb = -1, file_kb = -1;
  std::ifstream status("/proc/self/status");
  for (std::string key; status >> key;) {
    int64_t kb = 0;
    if (key == "VmRSS:" && status >> kb) rss_kb = kb;
    if (key == "VmHWM:" && status >> kb) hwm_kb = kb;
    if (key == "RssAnon:" && status >> kb) anon_kb = kb;
    if (key == "RssFile:" && status >> kb) file_kb = kb;
    status.ignore(1 << 20, '\n');
  }
  return "memory: plan host " + std::to_string(b.host_total) + " B, gpu " + std::to_string(gpu) + " B, KV cache " +
         std::to_string(b.kv_total) + " B; VmRSS " + std::to_string(rss_kb) + " kB, VmHWM " + std::to_string(hwm_kb) +
         " kB (anonymous " + std::to_string(anon_kb) + " kB, file " + std::to_string(file_kb) + " kB)";
}

LoadProgressFn announce_load(const std::string& model_path, const RulesPlan& plan) {
  const std::string line = load_budget_line(model_path, plan);
  if (!line.empty()) std::fprintf(stderr, "%s\n", line.c_str());
  auto bar = std::make_shared<LoadProgressBar>(stderr, isatty(STDERR_FILENO) != 0);
  const bool report = knobs::flag("TANDEM_MEMORY_REPORT");
  const placement::MemoryBudget budget = plan.budget;
  return [bar, report, budget](const LoadProgress& p) {
    (*bar)(p);
    if (report && p.finished) std::fprintf(stderr, "%s\n", memory_report_line(budget).c_str());
  };
}

}  // namespace tandem::tools
