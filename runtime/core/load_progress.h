// Progress of a model load: the callback a command hands the loader (it draws; nothing under
// runtime/ prints), and the meter the loading steps feed with the bytes they have processed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace tandem {

struct LoadProgress {
  const char* phase = "";  // what is being done now: "mapping", "repacking experts", ...
  uint64_t done = 0;       // bytes of the model processed, never decreasing
  uint64_t total = 0;      // bytes of the model's tensors; done == total once, at the end
  bool finished = false;   // the last call
};

using LoadProgressFn = std::function<void(const LoadProgress&)>;

// What a loading step calls as it goes: bytes processed since its last call, in a phase. May be
// called from several threads at once.
using LoadBytesFn = std::function<void(const char* phase, uint64_t bytes)>;

// Sums the steps' bytes (capped at the total) and hands them to the callback, one call at a
// time, so the callback sees done never decrease even when worker threads report together.
class LoadMeter {
 public:
  LoadMeter(LoadProgressFn fn, uint64_t total);
  void add(const char* phase, uint64_t bytes);
  // The bytes no step reported (views of the mapped file) count as done, and the callback hears
  // done == total with finished set. Once; later add()s are ignored and the callback released.
  void finish();
  // add() as a LoadBytesFn, safe to keep after the meter is gone (it then does nothing); empty
  // when there is no callback (the steps then skip their reports).
  LoadBytesFn adder() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace tandem
