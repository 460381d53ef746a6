// llama.cpp's importance matrix (imatrix GGUF: `NAME.in_sum2` and `NAME.counts` per weight
// tensor NAME), read for the importance-aware quantizers (quantize_row's `importance`).
// in_sum2 holds the sum of squared activations of every input column, one row of them per
// matrix of a stacked tensor (experts, heads); counts how many activations went into each row
// (one count may serve them all). Untrusted input: shapes, types and values are checked.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace tandem {
class GgufFile;
}

namespace tandem::modelgen {

class ImportanceMatrix {
 public:
  // Throws Error naming the file and the problem (not GGUF, not an imatrix, a bad entry).
  static ImportanceMatrix load(const std::string& path);
  static ImportanceMatrix from_gguf(const GgufFile& file, const std::string& label);

  // Mean squared activation per input column of weight `name`, whose n_matrices matrices have
  // rows of row_length elements: n_matrices * row_length values, matrix by matrix; empty when
  // the file has no entry for it. Throws Error when the entry's size does not fit that shape.
  std::vector<float> for_tensor(const std::string& name, int64_t row_length, int64_t n_matrices) const;

  size_t size() const { return entries_.size(); }
  std::vector<std::string> names() const;

 private:
  struct Entry {
    std::vector<float> sum2;
    std::vector<float> counts;  // 1 or one per row of sum2
  };
  std::string label_;
  std::map<std::string, Entry> entries_;  // by weight tensor name
};

}  // namespace tandem::modelgen
