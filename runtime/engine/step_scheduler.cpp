#include "runtime/engine/step_scheduler.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <set>

#include "runtime/core/error.h"

namespace tandem::sched {

void* HostBuffers::at(ActivationId a) const {
  for (const auto& [id, p] : ptrs_)
    if (id == a) return p;
  fail("scheduler: a CPU step uses activation ", a, " it did not declare");
}

namespace {

// One thing run() does, in order.
struct Action {
  enum class Kind { Submit, Wait, HostCopy, Cpu, Experts, ResultCopy, ResultDownload };
  Kind kind = Kind::Submit;
  gpu::CommandSequence* seq = nullptr;
  const void* src = nullptr;
  void* dst = nullptr;
  uint64_t bytes = 0;
  size_t step = 0;
  HostBuffers host;
  gpu::GpuDevice* device = nullptr;
  gpu::GpuSpan span;
};

constexpr int kNowhere = -2;  // next_reader: nobody reads the value again

}  // namespace

struct StepScheduler::Compiled {
  std::vector<std::unique_ptr<gpu::CommandSequence>> seqs;
  std::vector<Action> actions;
};

StepScheduler::StepScheduler(const std::vector<uint32_t>& gpus, std::shared_ptr<RoutedExperts> experts,
                             SchedulerOptions options)
    : opt_(options), experts_(std::move(experts)) {
  if (opt_.max_tokens == 0) fail("scheduler: max_tokens must be positive");
  for (uint32_t g : gpus)
    if (!devices_.count(int(g))) devices_[int(g)] = gpu::GpuDevice::open(g);
}

StepScheduler::~StepScheduler() {
  recorded_.clear();  // sequences before the buffers they reference
  buffers_.clear();
  mirrors_.clear();
}

gpu::GpuDevice& StepScheduler::device(int gpu) const {
  auto it = devices_.find(gpu);
  if (it == devices_.end()) fail("scheduler: gpu:", gpu, " is not one of the devices this model was opened on");
  return *it->second;
}

std::vector<int> StepScheduler::gpus() const {
  std::vector<int> out;
  for (const auto& [g, d] : devices_) out.push_back(g);
  return out;
}

ActivationId StepScheduler::declare(ActivationSpec spec) {
  spec.bytes = std::max<uint64_t>(spec.bytes, 4);
  specs_.push_back(std::move(spec));
  return ActivationId(specs_.size() - 1);
}

gpu::GpuSpan StepScheduler::span(int gpu, ActivationId a) {
  const ActivationSpec& s = specs_.at(a);
  auto& b = buffers_[{gpu, a}];
  if (!b)
    b = device(gpu).allocate(s.bytes, s.name.c_str(),
                             s.host_visible ? gpu::MemoryKind::HostVisible : gpu::MemoryKind::DeviceLocal);
  return b.span();
}

gpu::GpuBuffer& StepScheduler::mirror(int gpu, ActivationId a) {
  const ActivationSpec& s = specs_.at(a);
  if (s.host_visible) {
    span(gpu, a);
    return buffers_[{gpu, a}];
  }
  auto& b = mirrors_[{gpu, a}];
  if (!b) {
    const uint64_t bytes = s.mirror_tokens ? std::min<uint64_t>(s.bytes, s.mirror_tokens * s.bytes_per_token) : s.bytes;
    b = device(gpu).allocate(std::max<uint64_t>(bytes, 4), (s.name + " (host mirror)").c_str(),
                             gpu::MemoryKind::HostVisible);
  }
  return b;
}

void* StepScheduler::plain(ActivationId a) {
  auto& v = plain_[a];
  if (v.empty()) v.resize(size_t(specs_.at(a).bytes));
  return v.data();
}

void StepScheduler::set_program(Program program) {
  recorded_.clear();
  program_ = std::move(program);
  for (const Step& s : program_.steps) {
    if (s.kind == Step::Kind::Gpu && !devices_.count(s.device))
      fail("scheduler: step '", s.label, "' runs on gpu:", s.device, ", which this model did not open");
    if (s.kind == Step::Kind::RoutedExperts) {
      if (!experts_) fail("scheduler: step '", s.label, "' needs the CPU expert engine, which this model lacks");
      if (s.overlap && !devices_.count(s.device))
        fail("scheduler: step '", s.label, "' overlaps work on gpu:", s.device, ", which this model did not open");
    }
  }
}

void StepScheduler::set_profile(bool on) {
  if (opt_.profile == on) return;
  opt_.profile = on;
  recorded_.clear();
  timings_.clear();
}

uint64_t StepScheduler::device_bytes() const {
  uint64_t total = 0;
  for (const auto& [g, d] : devices_) total += d->device_bytes_in_use();
  return total;
}

// Walks the program once for n tokens, tracking where each activation's latest value is (a set
// of GPUs, and/or one host buffer), and turns it into sequences and actions.
StepScheduler::Compiled StepScheduler::compile(uint32_t n, uint32_t result_tokens) {
  Compiled c;
  const auto& steps = program_.steps;
  struct Loc {
    std::set<int> gpus;                          // devices holding the latest value
    void* host = nullptr;                        // host buffer holding it (null: none)
    gpu::CommandSequence* host_after = nullptr;  // the sequence that must finish before the host reads it
    gpu::CommandSequence* writer = nullptr;      // the sequence that wrote it on a GPU
  };
  std::vector<Loc> loc(specs_.size());
  std::set<gpu::CommandSequence*> waited, submitted;
  std::map<const void*, gpu::CommandSequence*> host_readers;  // host buffer -> last sequence reading it
  gpu::CommandSequence* cur = nullptr;
  int cur_gpu = kCpu;
  // The result moves only the tokens the caller takes.
  auto bytes_of = [&](ActivationId a) {
    const uint64_t b = uint64_t(a == program_.result ? result_tokens : n) * specs_.at(a).bytes_per_token;
    if (b > specs_.at(a).bytes) fail("scheduler: ", n, " tokens of ", specs_.at(a).name, " exceed its buffer");
    return b;
  };
  auto add = [&](Action a) { c.actions.push_back(std::move(a)); };
  auto need_wait = [&](gpu::CommandSequence* s) {
    if (!s || waited.count(s) || !submitted.count(s)) return;
    Action a;
    a.kind = Action::Kind::Wait;
    a.seq = s;
    add(a);
    waited.insert(s);
  };
  auto before_host_write = [&](const void* h) {
    auto it = host_readers.find(h);
    if (it != host_readers.end()) need_wait(it->second);
  };
  auto new_seq = [&](int g) {
    c.seqs.push_back(std::make_unique<gpu::CommandSequence>(device(g), opt_.profile));
    return c.seqs.back().get();
  };
  auto submit = [&](gpu::CommandSequence* s) {
    s->finish();
    Action a;
    a.kind = Action::Kind::Submit;
    a.seq = s;
    add(a);
    submitted.insert(s);
  };
  // The device that next needs a's value from step `from` on: a GPU, kCpu, or kNowhere.
  auto next_reader = [&](ActivationId a, size_t from) -> int {
    auto has = [a](const std::vector<ActivationId>& v) { return std::find(v.begin(), v.end(), a) != v.end(); };
    for (size_t j = from; j < steps.size(); ++j) {
      const Step& s = steps[j];
      if (s.kind == Step::Kind::Gpu) {
        if (has(s.reads)) return s.device;
        if (has(s.writes)) return kNowhere;
      } else if (s.kind == Step::Kind::Cpu) {
        if (has(s.reads)) return kCpu;
        if (has(s.writes)) return kNowhere;
      } else {
        if (s.x == a || s.ids == a || s.weights == a) return kCpu;
        if (has(s.overlap_reads)) return s.device;
        if (s.out == a || has(s.overlap_writes)) return kNowhere;
      }
    }
    if (a == program_.result) {
      const ActivationSpec& s = specs_.at(a);
      const bool fits = !s.mirror_tokens || result_tokens <= s.mirror_tokens;
      return fits ? kCpu : kNowhere;  // too large for the mirror: downloaded after the run
    }
    return kNowhere;
  };
  auto copy_out = [&](ActivationId a, int g, gpu::CommandSequence* s) {
    Loc& L = loc[a];
    gpu::GpuBuffer& m = mirror(g, a);
    if (!specs_[a].host_visible) {
      const uint64_t b = bytes_of(a);
      if (b > m.size()) fail("scheduler: ", n, " tokens of ", specs_[a].name, " exceed its host mirror");
      s->copy(span(g, a).sub(0, b), m.sub(0, b));
    }
    L.host = m.mapped();
    L.host_after = s;
  };
  // Ends sequence s on g: values only g holds that a different device reads next go to the host
  // (queued behind whatever wrote them on g).
  auto copy_outs = [&](gpu::CommandSequence* s, int g, size_t from) {
    for (ActivationId a = 0; a < loc.size(); ++a) {
      const Loc& L = loc[a];
      if (L.host || !L.gpus.count(g)) continue;
      const int r = next_reader(a, from);
      if (r != kNowhere && r != g) copy_out(a, g, s);
    }
  };
  auto close = [&](size_t from) {
    if (!cur) return;
    copy_outs(cur, cur_gpu, from);
    submit(cur);
    cur = nullptr;
    cur_gpu = kCpu;
  };
  auto ensure_device = [&](ActivationId a, int g, gpu::CommandSequence* s) {
    Loc& L = loc[a];
    const ActivationSpec& spec = specs_[a];
    if (spec.host_visible) host_readers[mirror(g, a).mapped()] = s;
    if (L.gpus.count(g)) return;
    if (!L.host) {
      if (!L.gpus.empty())
        fail("scheduler: ", spec.name, " is read on gpu:", g, " but was left on another device");
      return;  // never written: scratch
    }
    need_wait(L.host_after);
    gpu::GpuBuffer& m = mirror(g, a);
    const uint64_t b = bytes_of(a);
    if (m.mapped() != L.host) {
      before_host_write(m.mapped());
      Action h;
      h.kind = Action::Kind::HostCopy;
      h.src = L.host;
      h.dst = m.mapped();
      h.bytes = b;
      add(h);
    }
    if (!spec.host_visible) s->copy(m.sub(0, b), span(g, a).sub(0, b));
    host_readers[m.mapped()] = s;
    L.gpus.insert(g);
  };
  auto ensure_host = [&](ActivationId a) -> void* {
    Loc& L = loc[a];
    if (!L.host) {
      if (!L.gpus.empty()) fail("scheduler: ", specs_[a].name, " is read on the CPU but was left on a GPU");
      return plain(a);  // never written
    }
    need_wait(L.host_after);
    return L.host;
  };
  // Where a CPU write of a goes: the mirror of the GPU that reads it next, else plain memory.
  auto host_target = [&](ActivationId a, size_t from) -> void* {
    const int r = next_reader(a, from);
    void* h = r >= 0 ? mirror(r, a).mapped() : plain(a);
    if (r >= 0 && specs_[a].mirror_tokens && n > specs_[a].mirror_tokens) h = plain(a);
    before_host_write(h);
    return h;
  };
  auto wrote_on_gpu = [&](ActivationId a, int g, gpu::CommandSequence* s) {
    Loc& L = loc[a];
    L.gpus = {g};
    L.writer = s;
    L.host = specs_[a].host_visible ? mirror(g, a).mapped() : nullptr;
    L.host_after = s;
  };
  auto wrote_on_host = [&](ActivationId a, void* h) {
    Loc& L = loc[a];
    L.gpus.clear();
    L.writer = nullptr;
    L.host = h;
    L.host_after = nullptr;
  };

  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    if (s.kind == Step::Kind::Gpu) {
      if (cur && cur_gpu != s.device) close(i);
      if (!cur) {
        cur = new_seq(s.device);
        cur_gpu = s.device;
      }
      for (ActivationId a : s.reads) ensure_device(a, s.device, cur);
      s.record(*cur, n);
      for (ActivationId a : s.writes) wrote_on_gpu(a, s.device, cur);
      continue;
    }
    close(i);
    Action act;
    act.step = i;
    if (s.kind == Step::Kind::RoutedExperts) {
      for (ActivationId a : s.overlap_writes)
        if (a == s.x || a == s.ids || a == s.weights || a == s.out)
          fail("scheduler: step '", s.label, "' overlaps GPU work that writes what its CPU part uses");
      // The overlap is submitted before the host waits for what it reads.
      if (s.overlap) {
        gpu::CommandSequence* o = new_seq(s.device);
        for (ActivationId a : s.overlap_reads) ensure_device(a, s.device, o);
        s.overlap(*o, n);
        for (ActivationId a : s.overlap_writes) wrote_on_gpu(a, s.device, o);
        copy_outs(o, s.device, i + 1);
        submit(o);
      }
      for (ActivationId a : {s.x, s.ids, s.weights}) act.host.ptrs_.emplace_back(a, ensure_host(a));
      void* out = host_target(s.out, i + 1);
      act.host.ptrs_.emplace_back(s.out, out);
      act.kind = Action::Kind::Experts;
      add(act);
      wrote_on_host(s.out, out);
      continue;
    }
    for (ActivationId a : s.reads) act.host.ptrs_.emplace_back(a, ensure_host(a));
    std::vector<std::pair<ActivationId, void*>> outs;
    for (ActivationId a : s.writes) {
      void* h = nullptr;
      for (const auto& [id, p] : act.host.ptrs_)
        if (id == a) h = p;  // read and written: in place
      if (h)
        before_host_write(h);
      else
        act.host.ptrs_.emplace_back(a, h = host_target(a, i + 1));
      outs.emplace_back(a, h);
    }
    act.kind = Action::Kind::Cpu;
    add(act);
    for (const auto& [a, h] : outs) wrote_on_host(a, h);
  }
  close(steps.size());
  // The result to the caller: from the host, or downloaded from the GPU that has it.
  const ActivationId r = program_.result;
  Action res;
  res.bytes = bytes_of(r);
  if (loc[r].host) {
    need_wait(loc[r].host_after);
    res.kind = Action::Kind::ResultCopy;
    res.src = loc[r].host;
  } else if (!loc[r].gpus.empty()) {
    need_wait(loc[r].writer);
    res.kind = Action::Kind::ResultDownload;
    const int g = *loc[r].gpus.begin();
    res.device = &device(g);
    res.span = span(g, r).sub(0, res.bytes);
  } else {
    fail("scheduler: the program never writes its result ", specs_[r].name);
  }
  add(res);
  for (auto& s : c.seqs) need_wait(s.get());  // every overlap sequence done before the next run
  return c;
}

void StepScheduler::run(uint32_t n, void* result_out, uint32_t result_tokens, const std::string& layout) {
  using clock = std::chrono::steady_clock;
  auto ms_since = [](clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(clock::now() - t0).count();
  };
  const auto start = clock::now();
  if (n == 0 || n > opt_.max_tokens) fail("scheduler: a batch of ", n, " tokens (1 to ", opt_.max_tokens, ")");
  if (result_tokens == 0) result_tokens = n;
  if (result_tokens > n) fail("scheduler: ", result_tokens, " result tokens of a batch of ", n);
  const auto key = std::make_tuple(n, result_tokens, layout);
  auto it = recorded_.find(key);
  if (it == recorded_.end()) {
    if (recorded_.size() >= std::max(opt_.recorded_sizes, 1u)) {
      auto oldest = recorded_.begin();
      for (auto r = recorded_.begin(); r != recorded_.end(); ++r)
        if (r->second.last_use < oldest->second.last_use) oldest = r;
      recorded_.erase(oldest);
    }
    it = recorded_.emplace(key, Recorded{std::make_unique<Compiled>(compile(n, result_tokens)), 0}).first;
  }
  it->second.last_use = ++runs_;
  Compiled& c = *it->second.compiled;
  StepTimes t;
  for (Action& a : c.actions) {
    switch (a.kind) {
      case Action::Kind::Submit:
        a.seq->submit();
        t.submits++;
        t.dispatches += uint32_t(a.seq->dispatch_count());
        break;
      case Action::Kind::Wait: {
        const auto w0 = clock::now();
        a.seq->wait();
        t.gpu_wait_ms += ms_since(w0);
        break;
      }
      case Action::Kind::HostCopy:
        std::memcpy(a.dst, a.src, a.bytes);
        break;
      case Action::Kind::Cpu: {
        const Step& s = program_.steps[a.step];
        const auto c0 = clock::now();
        s.run(a.host, n);
        if (!s.host_time) t.cpu_ms += ms_since(c0);
        break;
      }
      case Action::Kind::Experts: {
        const Step& s = program_.steps[a.step];
        const auto e0 = clock::now();
        experts_->forward(s.layer, a.host.f32(s.x), n, a.host.i32(s.ids), a.host.f32(s.weights), s.k_used,
                          a.host.f32(s.out));
        t.experts_ms += ms_since(e0);
        break;
      }
      case Action::Kind::ResultCopy:
        std::memcpy(result_out, a.src, a.bytes);
        break;
      case Action::Kind::ResultDownload:
        a.device->download(a.span, result_out, a.bytes);
        break;
    }
  }
  timings_.clear();
  if (opt_.profile)
    for (auto& s : c.seqs)
      for (auto& k : s->timings()) timings_.push_back(k);
  t.wall_ms = ms_since(start);
  t.host_ms = t.wall_ms - t.gpu_wait_ms - t.experts_ms - t.cpu_ms;
  times_ = t;
}

}  // namespace tandem::sched
