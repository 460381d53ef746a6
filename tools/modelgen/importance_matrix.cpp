#include "tools/modelgen/importance_matrix.h"

#include <cmath>
#include <cstring>
#include <string_view>

#include "runtime/core/error.h"
#include "runtime/gguf/gguf_file.h"

namespace tandem::modelgen {
namespace {

constexpr std::string_view kSum2 = ".in_sum2";
constexpr std::string_view kCounts = ".counts";

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The values of an F32 tensor, each finite and >= 0.
std::vector<float> nonnegative_floats(const GgufTensor& t, const std::string& label) {
  if (t.type != GgmlType::F32)
    fail(label, ": tensor ", t.name, " has type ", ggml_type_name(t.type), "; an imatrix holds f32");
  std::vector<float> v(static_cast<size_t>(t.elements()));
  if (!v.empty()) std::memcpy(v.data(), t.data, v.size() * sizeof(float));
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]) || v[i] < 0.0f)
      fail(label, ": tensor ", t.name, " value ", i, " is ", v[i], "; expected a finite value >= 0");
  return v;
}

}  // namespace

ImportanceMatrix ImportanceMatrix::load(const std::string& path) {
  const auto f = GgufFile::open(path);
  return from_gguf(*f, path);
}

ImportanceMatrix ImportanceMatrix::from_gguf(const GgufFile& file, const std::string& label) {
  if (const auto type = file.get_string_opt("general.type"); type && *type != "imatrix")
    fail(label, ": general.type is '", *type, "', not 'imatrix': not an importance matrix file");
  ImportanceMatrix m;
  m.label_ = label;
  for (const GgufTensor& t : file.tensors()) {
    if (ends_with(t.name, kCounts)) {
      const std::string weight = t.name.substr(0, t.name.size() - kCounts.size());
      if (!file.find_tensor(weight + std::string(kSum2)))
        fail(label, ": ", t.name, " has no ", weight, kSum2, " beside it");
      continue;
    }
    if (!ends_with(t.name, kSum2))
      fail(label, ": tensor ", t.name, " is neither NAME", kSum2, " nor NAME", kCounts, " (not an imatrix?)");
    const std::string weight = t.name.substr(0, t.name.size() - kSum2.size());
    const GgufTensor* counts = file.find_tensor(weight + std::string(kCounts));
    if (!counts) fail(label, ": ", t.name, " has no ", weight, kCounts, " beside it");
    if (t.shape.empty() || t.shape.size() > 2 || t.shape[0] <= 0)
      fail(label, ": ", t.name, " must be 1-D or 2-D (columns x matrices) with columns > 0");
    Entry e{nonnegative_floats(t, label), nonnegative_floats(*counts, label)};
    const int64_t rows = t.shape.size() == 2 ? t.shape[1] : 1;
    if (e.counts.size() != 1 && int64_t(e.counts.size()) != rows)
      fail(label, ": ", counts->name, " has ", e.counts.size(), " counts for the ", rows, " rows of ", t.name,
           "; expected 1 or ", rows);
    m.entries_.emplace(weight, std::move(e));
  }
  if (m.entries_.empty()) fail(label, ": no NAME", kSum2, " tensors: not an importance matrix file");
  return m;
}

std::vector<float> ImportanceMatrix::for_tensor(const std::string& name, int64_t row_length,
                                                int64_t n_matrices) const {
  const auto it = entries_.find(name);
  if (it == entries_.end()) return {};
  const Entry& e = it->second;
  if (row_length <= 0 || n_matrices <= 0 || int64_t(e.sum2.size()) != row_length * n_matrices)
    fail(label_, ": ", name, kSum2, " has ", e.sum2.size(), " values; the weight has ", n_matrices,
         " matrices with rows of ", row_length, " (", row_length * n_matrices, " values)");
  // Rows of counts: one per sum2 row; sum2 rows are matrices unless one count covers them all.
  const size_t per_count = e.counts.size() == 1 ? e.sum2.size() : e.sum2.size() / e.counts.size();
  std::vector<float> out(e.sum2.size());
  for (size_t i = 0; i < out.size(); ++i) {
    const float c = e.counts[i / per_count];
    out[i] = c > 0.0f ? e.sum2[i] / c : 0.0f;
    if (!std::isfinite(out[i]))  // a huge sum over a tiny count
      fail(label_, ": ", name, kSum2, " value ", i, " over its count overflows (", e.sum2[i], " / ", c, ")");
  }
  return out;
}

std::vector<std::string> ImportanceMatrix::names() const {
  std::vector<std::string> out;
  for (const auto& [name, e] : entries_) out.push_back(name);
  return out;
}

}  // namespace tandem::modelgen
