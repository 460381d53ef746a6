// Writes a random deepseek2 GGUF (one file or a split set) from Deepseek2Options. Tensor data is
// generated, quantized and written in row chunks by a pool of threads, straight to disk.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tools/modelgen/deepseek2_options.h"

namespace tandem::modelgen {

struct GeneratedModel {
  std::vector<std::string> paths;  // the file, or every shard in order (open paths[0])
  size_t tensor_count = 0;
  uint64_t tensor_bytes = 0;
  uint64_t file_bytes = 0;
};

// Progress: bytes of tensor data written so far, of total. Called from one thread at a time.
using GenerationProgress = std::function<void(uint64_t done, uint64_t total)>;

// out_path: the file to write. With o.shards > 1, shards are named PREFIX-0000i-of-0000N.gguf
// where PREFIX is out_path without ".gguf" (or without its -00001-of-0000N.gguf suffix).
GeneratedModel generate_deepseek2(const Deepseek2Options& o, const std::string& out_path,
                                  const GenerationProgress& progress = {});

// The shard file names generate_deepseek2 uses for out_path and n shards.
std::vector<std::string> shard_paths(const std::string& out_path, int n);

}  // namespace tandem::modelgen
