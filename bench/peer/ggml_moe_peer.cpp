// ggml_moe_peer: times llama.cpp's CPU kernels (libggml, loaded with dlopen from a directory of
// prebuilt libraries, see fetch_llama_cpp.sh) on the same routed-expert layer that `tandem bench
// experts` times: gate/up/down as 3-D tensors, ggml_mul_mat_id for each, SiLU(gate) * up, the
// routing weights applied to down's output (the final sum over k is left out: it is tiny).
// Weights come from tandem's fill_random_blocks with the same seeds, so both read the same bytes.
//
// Only a handful of ggml's C entry points are used, declared here by hand with opaque handles;
// the enum values below are ggml's stable ABI numbers.
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "experts/moe_throughput.h"
#include "runtime/quant/ggml_type.h"

namespace {

struct GgmlContext;
struct GgmlTensor;
struct GgmlGraph;
struct GgmlBackend;
struct GgmlBuffer;
struct GgmlBufferType;
struct GgmlReg;
struct GgmlDevice;

struct GgmlInitParams {
  size_t mem_size;
  void* mem_buffer;
  bool no_alloc;
};

constexpr int kGgmlF32 = 0, kGgmlI32 = 26;

struct Ggml {
  void* base = nullptr;
  void* cpu = nullptr;
  std::string cpu_path;
  GgmlContext* (*init)(GgmlInitParams);
  void (*free_ctx)(GgmlContext*);
  GgmlTensor* (*new_tensor_3d)(GgmlContext*, int, int64_t, int64_t, int64_t);
  GgmlTensor* (*new_tensor_2d)(GgmlContext*, int, int64_t, int64_t);
  GgmlTensor* (*mul_mat_id)(GgmlContext*, GgmlTensor*, GgmlTensor*, GgmlTensor*);
  GgmlTensor* (*silu)(GgmlContext*, GgmlTensor*);
  GgmlTensor* (*mul)(GgmlContext*, GgmlTensor*, GgmlTensor*);
  GgmlGraph* (*new_graph)(GgmlContext*);
  void (*build_forward_expand)(GgmlGraph*, GgmlTensor*);
  size_t (*nbytes)(const GgmlTensor*);
  GgmlBuffer* (*alloc_ctx_tensors)(GgmlContext*, GgmlBackend*);
  GgmlBuffer* (*alloc_ctx_tensors_from_buft)(GgmlContext*, GgmlBufferType*);
  void (*tensor_set)(GgmlTensor*, const void*, size_t, size_t);
  int (*graph_compute)(GgmlBackend*, GgmlGraph*);
  void (*backend_free)(GgmlBackend*);
  void (*buffer_free)(GgmlBuffer*);
  const char* (*buft_name)(GgmlBufferType*);
  void* (*reg_get_proc_address)(GgmlReg*, const char*);
  GgmlDevice* (*reg_dev_get)(GgmlReg*, size_t);
  GgmlBackend* (*cpu_init)();
  void (*cpu_set_n_threads)(GgmlBackend*, int);
  GgmlReg* (*cpu_reg)();
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "ggml_moe_peer: %s\n", what.c_str());
  std::exit(1);
}

template <class F>
void sym(void* lib, const char* name, F& out) {
  void* p = dlsym(lib, name);
  if (!p) die(std::string("symbol ") + name + " missing: " + dlerror());
  out = reinterpret_cast<F>(p);
}

// Loads libggml-base.so and the CPU variant of libggml-cpu-*.so that scores highest on this CPU
// (each variant's ggml_backend_score() is 0 where its instructions are missing), or `variant`.
Ggml load_ggml(const std::string& dir, const std::string& variant) {
  Ggml g;
  const std::string base = dir + "/libggml-base.so";
  g.base = dlopen(base.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (!g.base) die("cannot load " + base + ": " + dlerror());
  int best = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("libggml-cpu-", 0) != 0 || name.find(".so") == std::string::npos) continue;
    if (!variant.empty() && name != "libggml-cpu-" + variant + ".so") continue;
    void* lib = dlopen(entry.path().c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) continue;
    int (*score)() = nullptr;
    if (void* p = dlsym(lib, "ggml_backend_score")) score = reinterpret_cast<int (*)()>(p);
    const int s = score ? score() : 0;
    if (s > best) {
      if (g.cpu) dlclose(g.cpu);
      best = s, g.cpu = lib, g.cpu_path = entry.path().string();
    } else {
      dlclose(lib);
    }
  }
  if (!g.cpu) die("no libggml-cpu-*.so in " + dir + " runs on this CPU" + (variant.empty() ? "" : " (variant " + variant + ")"));
  sym(g.base, "ggml_init", g.init);
  sym(g.base, "ggml_free", g.free_ctx);
  sym(g.base, "ggml_new_tensor_3d", g.new_tensor_3d);
  sym(g.base, "ggml_new_tensor_2d", g.new_tensor_2d);
  sym(g.base, "ggml_mul_mat_id", g.mul_mat_id);
  sym(g.base, "ggml_silu", g.silu);
  sym(g.base, "ggml_mul", g.mul);
  sym(g.base, "ggml_new_graph", g.new_graph);
  sym(g.base, "ggml_build_forward_expand", g.build_forward_expand);
  sym(g.base, "ggml_nbytes", g.nbytes);
  sym(g.base, "ggml_backend_alloc_ctx_tensors", g.alloc_ctx_tensors);
  sym(g.base, "ggml_backend_alloc_ctx_tensors_from_buft", g.alloc_ctx_tensors_from_buft);
  sym(g.base, "ggml_backend_tensor_set", g.tensor_set);
  sym(g.base, "ggml_backend_graph_compute", g.graph_compute);
  sym(g.base, "ggml_backend_free", g.backend_free);
  sym(g.base, "ggml_backend_buffer_free", g.buffer_free);
  sym(g.base, "ggml_backend_buft_name", g.buft_name);
  sym(g.base, "ggml_backend_reg_get_proc_address", g.reg_get_proc_address);
  sym(g.base, "ggml_backend_reg_dev_get", g.reg_dev_get);
  sym(g.cpu, "ggml_backend_cpu_init", g.cpu_init);
  sym(g.cpu, "ggml_backend_cpu_set_n_threads", g.cpu_set_n_threads);
  sym(g.cpu, "ggml_backend_cpu_reg", g.cpu_reg);
  return g;
}

// ggml's type numbers for the types tandem can generate (the GGUF tensor type ids are the same).
int ggml_type_id(tandem::GgmlType t) { return int(t); }

struct Args {
  std::string lib_dir, variant, type = "Q4_K", buffer = "plain";
  int64_t hidden = 7168, ffn = 2048, experts = 8;
  int k = 8, threads = 0, layers = 1;
  std::vector<int64_t> tokens = {1, 4, 64, 512};
  double seconds = 1.0;
};

std::vector<int64_t> parse_list(const char* s) {
  std::vector<int64_t> v;
  for (const char* p = s; *p;) {
    char* end;
    v.push_back(std::strtoll(p, &end, 10));
    p = *end == ',' ? end + 1 : end;
    if (end == p && *p) die(std::string("bad list ") + s);
  }
  return v;
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto val = [&]() -> const char* {
      if (i + 1 >= argc) die("missing value after " + k);
      return argv[++i];
    };
    if (k == "--lib-dir") a.lib_dir = val();
    else if (k == "--variant") a.variant = val();
    else if (k == "--type") a.type = val();
    else if (k == "--buffer") a.buffer = val();
    else if (k == "--hidden") a.hidden = std::atoll(val());
    else if (k == "--ffn") a.ffn = std::atoll(val());
    else if (k == "--experts") a.experts = std::atoll(val());
    else if (k == "--k") a.k = std::atoi(val());
    else if (k == "--threads") a.threads = std::atoi(val());
    else if (k == "--tokens") a.tokens = parse_list(val());
    else if (k == "--seconds") a.seconds = std::atof(val());
    else if (k == "--layers") a.layers = std::max(1, std::atoi(val()));
    else
      die("unknown option " + k +
          "; options: --lib-dir DIR --variant NAME --type Q4_K --buffer plain|extra --hidden N --ffn N "
          "--experts N --k N --threads N --tokens 1,4,64,512 --seconds S --layers N");
  }
  if (a.lib_dir.empty()) die("--lib-dir DIR (the bins/linux-x64 folder of @node-llama-cpp/linux-x64) is required");
  if (a.threads <= 0) a.threads = int(std::max(1u, std::thread::hardware_concurrency()));
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  const auto type = tandem::ggml_type_from_name(a.type);
  if (!type) die("unknown type " + a.type);
  Ggml g = load_ggml(a.lib_dir, a.variant);
  GgmlBackend* backend = g.cpu_init();
  if (!backend) die("ggml_backend_cpu_init failed");
  g.cpu_set_n_threads(backend, a.threads);

  // Weights: the bytes of tandem's bench (layer l: seeds 1+3l, 2+3l, 3+3l of its default seed 1).
  const int k = int(std::min<int64_t>(a.k, a.experts));
  const int64_t gate_bytes = a.experts * a.ffn * int64_t(tandem::ggml_row_bytes(*type, uint64_t(a.hidden)));
  const int64_t down_bytes = a.experts * a.hidden * int64_t(tandem::ggml_row_bytes(*type, uint64_t(a.ffn)));
  GgmlContext* wctx = g.init({size_t(64) << 10, nullptr, true});
  std::vector<GgmlTensor*> wg, wu, wd;
  for (int l = 0; l < a.layers; ++l) {
    wg.push_back(g.new_tensor_3d(wctx, ggml_type_id(*type), a.hidden, a.ffn, a.experts));
    wu.push_back(g.new_tensor_3d(wctx, ggml_type_id(*type), a.hidden, a.ffn, a.experts));
    wd.push_back(g.new_tensor_3d(wctx, ggml_type_id(*type), a.ffn, a.hidden, a.experts));
  }
  GgmlBuffer* wbuf = nullptr;
  std::string buffer_name = "CPU";
  if (a.buffer == "extra") {  // the CPU backend's repacking buffer type (what llama.cpp uses by default)
    GgmlReg* reg = g.cpu_reg();
    using ExtraFn = GgmlBufferType** (*)(GgmlDevice*);
    auto extra = reinterpret_cast<ExtraFn>(g.reg_get_proc_address(reg, "ggml_backend_dev_get_extra_bufts"));
    if (!extra) die("the CPU backend has no extra buffer types");
    GgmlBufferType** bufts = extra(g.reg_dev_get(reg, 0));
    GgmlBufferType* pick = nullptr;
    for (GgmlBufferType** b = bufts; b && *b; ++b) {
      const std::string name = g.buft_name(*b);
      std::fprintf(stderr, "extra buffer type: %s\n", name.c_str());
      if (!pick && name.find("REPACK") != std::string::npos) pick = *b;
    }
    if (!pick) die("no REPACK extra buffer type");
    buffer_name = g.buft_name(pick);
    wbuf = g.alloc_ctx_tensors_from_buft(wctx, pick);
  } else if (a.buffer == "plain") {
    wbuf = g.alloc_ctx_tensors(wctx, backend);
  } else {
    die("--buffer plain|extra");
  }
  if (!wbuf) die("weight buffer allocation failed");
  {
    std::vector<uint8_t> gate(static_cast<size_t>(gate_bytes)), up(static_cast<size_t>(gate_bytes)),
        down(static_cast<size_t>(down_bytes));
    for (int l = 0; l < a.layers; ++l) {
      const uint32_t seed = 1 + 3 * uint32_t(l);
      tandem::experts::fill_random_blocks(*type, gate.data(), a.experts * a.ffn, a.hidden, seed);
      tandem::experts::fill_random_blocks(*type, up.data(), a.experts * a.ffn, a.hidden, seed + 1);
      tandem::experts::fill_random_blocks(*type, down.data(), a.experts * a.hidden, a.ffn, seed + 2);
      g.tensor_set(wg[size_t(l)], gate.data(), 0, gate.size());
      g.tensor_set(wu[size_t(l)], up.data(), 0, up.size());
      g.tensor_set(wd[size_t(l)], down.data(), 0, down.size());
    }
  }
  const double active_bytes = double(2 * gate_bytes + down_bytes) / double(a.experts);  // per expert

  std::printf("{\"peer\": \"ggml\", \"cpu_lib\": \"%s\", \"buffer\": \"%s\", \"type\": \"%s\", \"hidden\": %lld, "
              "\"ffn\": %lld, \"experts\": %lld, \"k_used\": %d, \"threads\": %d, \"layers\": %d, \"results\": [",
              std::filesystem::path(g.cpu_path).filename().c_str(), buffer_name.c_str(), a.type.c_str(),
              (long long)a.hidden, (long long)a.ffn, (long long)a.experts, k, a.threads, a.layers);
  std::mt19937 rng(1);
  bool first = true;
  for (int64_t n : a.tokens) {
    GgmlContext* ctx = g.init({size_t(32) << 20, nullptr, true});  // graphs live here too
    GgmlTensor* x = g.new_tensor_3d(ctx, kGgmlF32, a.hidden, 1, n);
    GgmlTensor* ids = g.new_tensor_2d(ctx, kGgmlI32, k, n);
    GgmlTensor* w = g.new_tensor_3d(ctx, kGgmlF32, 1, k, n);
    std::vector<GgmlGraph*> graphs;
    for (int l = 0; l < a.layers; ++l) {
      GgmlTensor* hg = g.mul_mat_id(ctx, wg[size_t(l)], x, ids);  // [ffn, k, n]
      GgmlTensor* hu = g.mul_mat_id(ctx, wu[size_t(l)], x, ids);
      GgmlTensor* h = g.mul(ctx, g.silu(ctx, hg), hu);
      GgmlTensor* y = g.mul(ctx, g.mul_mat_id(ctx, wd[size_t(l)], h, ids), w);  // [hidden, k, n]
      graphs.push_back(g.new_graph(ctx));
      g.build_forward_expand(graphs.back(), y);
    }
    GgmlBuffer* buf = g.alloc_ctx_tensors(ctx, backend);
    if (!buf) die("activation buffer allocation failed");
    std::vector<float> xv(size_t(n * a.hidden)), wv(size_t(n * k), 1.0f / float(k));
    std::normal_distribution<float> normal;
    for (auto& v : xv) v = normal(rng);
    std::vector<int32_t> idv;
    std::set<int32_t> active;
    for (int64_t t = 0; t < n; ++t) {  // k distinct experts per token
      std::vector<int32_t> all(size_t(a.experts));
      for (int32_t e = 0; e < int32_t(a.experts); ++e) all[size_t(e)] = e;
      std::shuffle(all.begin(), all.end(), rng);
      for (int j = 0; j < k; ++j) idv.push_back(all[size_t(j)]), active.insert(all[size_t(j)]);
    }
    g.tensor_set(x, xv.data(), 0, xv.size() * sizeof(float));
    g.tensor_set(ids, idv.data(), 0, idv.size() * sizeof(int32_t));
    g.tensor_set(w, wv.data(), 0, wv.size() * sizeof(float));
    for (GgmlGraph* graph : graphs)
      if (g.graph_compute(backend, graph) != 0) die("graph compute failed");  // warm-up
    int iters = 0;
    double elapsed = 0;
    const auto t0 = std::chrono::steady_clock::now();
    do {
      g.graph_compute(backend, graphs[size_t(iters) % graphs.size()]);
      ++iters;
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } while (elapsed < a.seconds || iters < 2);
    const double s = elapsed / iters;
    std::printf("%s\n  {\"tokens\": %lld, \"active_experts\": %zu, \"ms_per_forward\": %.3f, \"tokens_per_s\": %.1f, "
                "\"weight_gb_per_s\": %.2f}",
                first ? "" : ",", (long long)n, active.size(), s * 1e3, double(n) / s,
                active_bytes * double(active.size()) / s / 1e9);
    std::fflush(stdout);
    first = false;
    g.buffer_free(buf);
    g.free_ctx(ctx);
  }
  std::printf("\n]}\n");
  g.buffer_free(wbuf);
  g.free_ctx(wctx);
  g.backend_free(backend);
  return 0;
}
