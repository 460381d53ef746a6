// `tandem inspect FILE`: what a GGUF holds: architecture, hyper-parameters, tensors by type and
// by kind (the name without its blk.N. prefix) with the bits per weight each kind is stored in.
#include <cctype>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "runtime/gguf/gguf_file.h"
#include "tools/command_registry.h"

namespace tandem::tools {
namespace {

struct InspectOptions {
  std::string path;
  bool tensors = false;
  bool metadata = false;
};

std::string human_bytes(uint64_t b) {
  char buf[32];
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  std::snprintf(buf, sizeof buf, "%.2f %s", v, units[u]);
  return buf;
}

// "blk.12.ffn_down_exps.weight" -> "ffn_down_exps.weight"; names outside blocks stay whole.
std::string tensor_kind(const std::string& name) {
  if (name.compare(0, 4, "blk.") != 0) return name;
  size_t i = 4;
  while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i]))) ++i;
  return i > 4 && i < name.size() && name[i] == '.' ? name.substr(i + 1) : name;
}

std::string bits_per_weight(uint64_t bytes, uint64_t elements) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g bpw", elements ? 8.0 * double(bytes) / double(elements) : 0.0);
  return buf;
}

void run_inspect(const InspectOptions& o) {
  auto f = GgufFile::open(o.path);
  const std::string arch = f->get_string_opt("general.architecture").value_or("(none)");
  std::printf("file:          %s\n", o.path.c_str());
  std::printf("gguf version:  %u, %d shard(s), alignment %llu\n", f->version(), f->shard_count(),
              (unsigned long long)f->alignment());
  std::printf("architecture:  %s\n", arch.c_str());
  if (auto name = f->get_string_opt("general.name")) std::printf("name:          %s\n", name->c_str());
  // Key hyper-parameters: every scalar key of the architecture's namespace.
  const std::string prefix = arch + ".";
  for (const auto& [k, v] : f->metadata()) {
    const bool arch_key = k.compare(0, prefix.size(), prefix) == 0;
    if (!o.metadata && (!arch_key || v.as_array())) continue;
    std::printf("  %-44s %s\n", k.c_str(), gguf_value_summary(v).c_str());
  }
  struct Totals {
    int tensors = 0;
    uint64_t bytes = 0, elements = 0;
    std::set<std::string> types;
  };
  std::map<std::string, Totals> by_type, by_kind;
  for (const auto& t : f->tensors()) {
    const std::string type(ggml_type_name(t.type));
    for (Totals* e : {&by_type[type], &by_kind[tensor_kind(t.name)]}) {
      e->tensors++;
      e->bytes += t.nbytes;
      e->elements += uint64_t(t.elements());
      e->types.insert(type);
    }
  }
  std::printf("tensors:       %zu, %s in all\n", f->tensors().size(), human_bytes(f->total_tensor_bytes()).c_str());
  for (const auto& [type, e] : by_type)
    std::printf("  %-8s %6d tensors  %-12s %s\n", type.c_str(), e.tensors, human_bytes(e.bytes).c_str(),
                bits_per_weight(e.bytes, e.elements).c_str());
  std::printf("by kind:\n");
  for (const auto& [kind, e] : by_kind) {
    std::string types;
    for (const auto& t : e.types) types += (types.empty() ? "" : ",") + t;
    std::printf("  %-32s %4d x %-20s %-12s %s\n", kind.c_str(), e.tensors, types.c_str(), human_bytes(e.bytes).c_str(),
                bits_per_weight(e.bytes, e.elements).c_str());
  }
  for (const auto& t : f->tensors()) {
    const auto& info = ggml_type_info(t.type);
    if (!info.can_compute)
      std::printf("warning: tensor %s uses type %s, which tandem cannot compute yet\n", t.name.c_str(),
                  std::string(info.name).c_str());
  }
  if (o.tensors) {
    std::printf("%-48s %-8s %-28s %14s %12s\n", "name", "type", "shape", "offset", "bytes");
    for (const auto& t : f->tensors()) {
      std::string shape;
      for (size_t i = 0; i < t.shape.size(); ++i) shape += (i ? " x " : "") + std::to_string(t.shape[i]);
      std::printf("%-48s %-8s %-28s %14llu %12llu%s\n", t.name.c_str(), std::string(ggml_type_name(t.type)).c_str(),
                  shape.c_str(), (unsigned long long)t.offset, (unsigned long long)t.nbytes,
                  f->shard_count() > 1 ? (" shard " + std::to_string(t.shard + 1)).c_str() : "");
    }
  }
}

void setup_inspect(CLI::App& root) {
  auto opts = std::make_shared<InspectOptions>();
  auto* cmd = root.add_subcommand("inspect", "Show a GGUF file's architecture, hyper-parameters and tensors");
  cmd->add_option("file", opts->path, "GGUF file (the first shard of a split model)")->required();
  cmd->add_flag("--tensors", opts->tensors, "List every tensor: name, type, shape, offset, bytes");
  cmd->add_flag("--metadata", opts->metadata, "Print every metadata key, arrays summarised");
  cmd->callback([opts] { run_inspect(*opts); });
}

TANDEM_COMMAND(setup_inspect);

}  // namespace
}  // namespace tandem::tools
