#include "runtime/core/load_progress.h"

#include <algorithm>
#include <mutex>

namespace tandem {

struct LoadMeter::State {
  std::mutex mu;
  LoadProgressFn fn;
  uint64_t total = 0, done = 0;

  void add(const char* phase, uint64_t bytes) {
    std::lock_guard<std::mutex> lock(mu);
    if (!fn) return;
    done = std::min(total, done + bytes);
    fn(LoadProgress{phase, done, total, false});
  }
};

LoadMeter::LoadMeter(LoadProgressFn fn, uint64_t total) {
  if (!fn) return;
  state_ = std::make_shared<State>();
  state_->fn = std::move(fn);
  state_->total = total;
}

void LoadMeter::add(const char* phase, uint64_t bytes) {
  if (state_) state_->add(phase, bytes);
}

void LoadMeter::finish() {
  if (!state_) return;
  std::lock_guard<std::mutex> lock(state_->mu);
  if (!state_->fn) return;
  state_->done = state_->total;
  LoadProgressFn fn = std::move(state_->fn);
  state_->fn = nullptr;
  fn(LoadProgress{"ready", state_->done, state_->total, true});
}

LoadBytesFn LoadMeter::adder() const {
  if (!state_) return {};
  return [s = state_](const char* phase, uint64_t bytes) { s->add(phase, bytes); };
}

}  // namespace tandem
