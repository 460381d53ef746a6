#include "tools/modelgen/deepseek2_generator.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <exception>
#include <map>
#include <tuple>
#include <memory>
#include <mutex>
#include <regex>
#include <thread>

#include "runtime/core/error.h"
#include "runtime/gguf/gguf_stream_writer.h"
#include "runtime/quant/quantize.h"
#include "tools/modelgen/deepseek2_metadata.h"
#include "tools/modelgen/deepseek2_tensor_plan.h"
#include "tools/modelgen/importance_matrix.h"
#include "tools/modelgen/random_weights.h"
#include "tools/modelgen/routing_skew.h"

namespace tandem::modelgen {

std::vector<std::string> shard_paths(const std::string& out_path, int n) {
  if (n <= 1) return {out_path};
  std::string prefix = out_path;
  std::smatch m;
  static const std::regex split_name(R"((.*)-\d{5}-of-\d{5}\.gguf)");
  if (std::regex_match(out_path, m, split_name)) {
    prefix = m[1].str();
  } else if (prefix.size() > 5 && prefix.compare(prefix.size() - 5, 5, ".gguf") == 0) {
    prefix.resize(prefix.size() - 5);
  }
  std::vector<std::string> out;
  for (int i = 1; i <= n; ++i) {
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, "-%05d-of-%05d.gguf", i, n);
    out.push_back(prefix + suffix);
  }
  return out;
}

namespace {

// Contiguous runs of tensors of about equal bytes, one per shard, none empty.
std::vector<size_t> shard_starts(const std::vector<PlannedTensor>& plan, int shards) {
  if (size_t(shards) > plan.size())
    fail("cannot split ", plan.size(), " tensors into ", shards, " shards");
  uint64_t total = 0;
  for (const auto& t : plan) total += t.info.nbytes();
  std::vector<size_t> starts = {0};
  uint64_t acc = 0;
  for (size_t i = 0; i < plan.size() && int(starts.size()) < shards; ++i) {
    acc += plan[i].info.nbytes();
    const size_t left = plan.size() - (i + 1);
    const size_t shards_left = size_t(shards) - starts.size();
    if (left == shards_left || (left > 0 && acc * uint64_t(shards) >= total * starts.size()))
      starts.push_back(i + 1);
  }
  return starts;
}

struct Chunk {
  size_t tensor;       // index in the plan (or in the pools)
  int64_t first_row;
  int64_t rows;
};

struct BlockPool {
  PlannedTensor source;  // one row per block
  uint64_t block_bytes = 0;
  std::vector<uint8_t> bytes;
};

// Per-thread buffers, reused across tasks.
struct Scratch {
  std::vector<float> values;
  std::vector<uint8_t> bytes;
};

// Runs task(i, scratch) for i in [0, n) on n_threads threads; rethrows the first error.
void run_parallel(int n_threads, size_t n, const std::function<void(size_t, Scratch&)>& task) {
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&] {
    Scratch scratch;
    try {
      for (size_t i = next++; i < n; i = next++) task(i, scratch);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      next = n;  // stop the others
    }
  };
  std::vector<std::thread> pool;
  for (int i = 1; i < n_threads && size_t(i) < n; ++i) pool.emplace_back(worker);
  worker();
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace

GeneratedModel generate_deepseek2(const Deepseek2Options& o, const std::string& out_path,
                                  const GenerationProgress& progress) {
  validate(o);
  Deepseek2Metadata meta = deepseek2_metadata(o);
  const std::vector<PlannedTensor> plan = deepseek2_tensor_plan(o, meta.vocab);
  const std::vector<size_t> starts = shard_starts(plan, o.shards);
  const std::vector<std::string> paths = shard_paths(out_path, o.shards);

  // One streaming writer per shard; tensor i of the plan is tensor (i - start) of its shard.
  std::vector<std::unique_ptr<GgufStreamWriter>> writers;
  std::vector<size_t> shard_of(plan.size());
  for (size_t s = 0; s < starts.size(); ++s) {
    const size_t end = s + 1 < starts.size() ? starts[s + 1] : plan.size();
    std::vector<GgufTensorInfo> infos;
    for (size_t i = starts[s]; i < end; ++i) {
      infos.push_back(plan[i].info);
      shard_of[i] = s;
    }
    GgufMetadata kv;
    if (s == 0) kv = meta.kv;
    if (o.shards > 1) {
      kv.emplace_back("split.no", GgufValue{GgufValueType::U16, GgufValueType::U8, uint64_t(s)});
      kv.emplace_back("split.count", GgufValue{GgufValueType::U16, GgufValueType::U8, uint64_t(o.shards)});
      kv.emplace_back("split.tensors.count", GgufValue::i32(int32_t(plan.size())));
    }
    writers.push_back(std::make_unique<GgufStreamWriter>(paths[s], std::move(kv), std::move(infos)));
  }

  if (o.header_only) {
    GeneratedModel out;
    out.paths = paths;
    out.tensor_count = plan.size();
    for (const auto& t : plan) out.tensor_bytes += t.info.nbytes();
    for (auto& w : writers) {
      w->finish();
      out.file_bytes += w->file_size();
    }
    return out;
  }

  // Importance per input column (matrix by matrix) of the tensors the imatrix covers whose type
  // uses it; empty for the rest.
  std::vector<std::vector<float>> importance(plan.size());
  if (!o.imatrix.empty()) {
    const ImportanceMatrix im = ImportanceMatrix::load(o.imatrix);
    for (size_t i = 0; i < plan.size(); ++i) {
      const auto& info = plan[i].info;
      if (!quantize_uses_importance(info.type) || info.shape.size() < 2) continue;
      int64_t n_matrices = 1;
      for (size_t d = 2; d < info.shape.size(); ++d) n_matrices *= info.shape[d];
      importance[i] = im.for_tensor(info.name, info.shape[0], n_matrices);
    }
  }

  // Block pools for big models (see Deepseek2Options::block_pool), one per (type, init, scale).
  int64_t block_elements = 0;
  for (const auto& t : plan)
    if (ggml_type_info(t.info.type).block_size > 1) block_elements += int64_t(t.info.nbytes() /
        ggml_type_info(t.info.type).type_size * ggml_type_info(t.info.type).block_size);
  const int64_t pool_blocks = o.block_pool >= 0 ? o.block_pool : (block_elements > (int64_t(1) << 28) ? 16384 : 0);
  std::vector<BlockPool> pools;
  std::vector<int> pool_of(plan.size(), -1);
  if (pool_blocks > 0) {
    std::map<std::tuple<uint32_t, int, float>, int> index;
    for (size_t i = 0; i < plan.size(); ++i) {
      const PlannedTensor& t = plan[i];
      const auto& info = ggml_type_info(t.info.type);
      if (info.block_size == 1 || !importance[i].empty()) continue;
      const auto key = std::make_tuple(uint32_t(t.info.type), int(t.init), t.scale);
      auto [it, fresh] = index.emplace(key, int(pools.size()));
      if (fresh) {
        BlockPool p;
        p.source = {{"block-pool/" + std::string(info.name) + "/" + std::to_string(t.scale) + "/" +
                         std::to_string(int(t.init)),
                     t.info.type, {int64_t(info.block_size), pool_blocks}},
                    t.init, t.scale};
        p.block_bytes = info.type_size;
        p.bytes.resize(size_t(pool_blocks) * info.type_size);
        pools.push_back(std::move(p));
      }
      pool_of[i] = it->second;
    }
  }

  const int n_threads =
      o.threads > 0 ? o.threads : std::max(1, int(std::thread::hardware_concurrency()));

  // Pools first: chunks of 256 blocks, quantized block by block.
  std::vector<Chunk> pool_chunks;
  for (size_t p = 0; p < pools.size(); ++p)
    for (int64_t b = 0; b < pool_blocks; b += 256) pool_chunks.push_back({p, b, std::min<int64_t>(256, pool_blocks - b)});
  run_parallel(n_threads, pool_chunks.size(), [&](size_t c, Scratch& scratch) {
    std::vector<float>& values = scratch.values;
    const Chunk& ch = pool_chunks[c];
    BlockPool& p = pools[ch.tensor];
    const int64_t n = p.source.info.shape[0];
    values.resize(size_t(ch.rows * n));
    fill_weights(p.source, o.seed, ch.first_row, ch.rows, values.data());
    for (int64_t r = 0; r < ch.rows; ++r)
      quantize_row(p.source.info.type, values.data() + r * n, p.bytes.data() + uint64_t(ch.first_row + r) * p.block_bytes, n);
  });

  // Chunks of about a million elements: small enough to bound memory per thread, large enough
  // to keep the threads busy on big tensors.
  constexpr int64_t kChunkElements = int64_t(1) << 20;
  std::vector<Chunk> chunks;
  uint64_t total_bytes = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    const auto& info = plan[i].info;
    int64_t rows = 1;
    for (size_t d = 1; d < info.shape.size(); ++d) rows *= info.shape[d];
    const int64_t per = std::max<int64_t>(1, kChunkElements / std::max<int64_t>(1, info.shape[0]));
    for (int64_t r = 0; r < rows; r += per) chunks.push_back({i, r, std::min(per, rows - r)});
    total_bytes += info.nbytes();
  }
  // Biggest tensors first so that the tail of the run is many small chunks, not one big one.
  std::stable_sort(chunks.begin(), chunks.end(), [&](const Chunk& a, const Chunk& b) {
    return a.rows * plan[a.tensor].info.shape[0] > b.rows * plan[b.tensor].info.shape[0];
  });

  std::atomic<uint64_t> done{0};
  std::mutex progress_mutex;
  run_parallel(n_threads, chunks.size(), [&](size_t c, Scratch& scratch) {
    std::vector<float>& values = scratch.values;
    const Chunk& ch = chunks[c];
    const PlannedTensor& t = plan[ch.tensor];
    const int64_t n = t.info.shape[0];
    const uint64_t row_bytes = ggml_row_bytes(t.info.type, uint64_t(n));
    std::vector<uint8_t>& bytes = scratch.bytes;
    bytes.resize(size_t(uint64_t(ch.rows) * row_bytes));
    if (pool_of[ch.tensor] >= 0) {
      const BlockPool& p = pools[size_t(pool_of[ch.tensor])];
      fill_from_block_pool(t, o.seed, ch.first_row, ch.rows, p.bytes.data(), pool_blocks, p.block_bytes, bytes.data());
    } else {
      values.resize(size_t(ch.rows * n));
      fill_weights(t, o.seed, ch.first_row, ch.rows, values.data());
      if (const int64_t layer = o.route_skew > 0 ? router_tensor_layer(t.info.name) : -1; layer >= 0)
        for (int64_t r = 0; r < ch.rows; ++r) {  // row r of the router: expert first_row + r
          const float f = router_row_scale(o, layer, ch.first_row + r);
          for (int64_t i = 0; i < n; ++i) values[size_t(r * n + i)] *= f;
        }
      if (const int64_t layer = o.route_skew > 0 ? routing_bias_tensor_layer(t.info.name) : -1; layer >= 0)
        for (int64_t i = 0; i < n; ++i) values[size_t(i)] += routing_bias_offset(o, layer, i);  // one row: expert i
      const std::vector<float>& imp = importance[ch.tensor];
      const int64_t rows_per_matrix = t.info.shape.size() > 1 ? t.info.shape[1] : 1;
      for (int64_t r = 0; r < ch.rows; ++r) {
        const float* w = imp.empty() ? nullptr : imp.data() + (ch.first_row + r) / rows_per_matrix * n;
        quantize_row(t.info.type, values.data() + r * n, bytes.data() + uint64_t(r) * row_bytes, n, w);
      }
    }
    const size_t s = shard_of[ch.tensor];
    writers[s]->write(ch.tensor - starts[s], uint64_t(ch.first_row) * row_bytes, bytes.data(), bytes.size());
    const uint64_t d = done += bytes.size();
    if (progress) {
      std::lock_guard<std::mutex> lock(progress_mutex);
      progress(d, total_bytes);
    }
  });

  GeneratedModel out;
  out.paths = paths;
  out.tensor_count = plan.size();
  out.tensor_bytes = total_bytes;
  for (auto& w : writers) {
    w->finish();
    out.file_bytes += w->file_size();
  }
  return out;
}

}  // namespace tandem::modelgen
