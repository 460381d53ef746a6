#include "runtime/engine/model_loader.h"

#include "runtime/core/error.h"
#include "runtime/core/knobs.h"
#include "runtime/engine/cpu_routed_experts.h"
#include "runtime/model/deepseek2/deepseek2_cpu.h"
#include "runtime/model/deepseek2/deepseek2_hybrid.h"
#include "runtime/model/deepseek2/deepseek2_reference.h"

namespace tandem {

LoadedModel load_model(const std::string& path, const ModelLoadOptions& options) {
  LoadedModel m;
  m.file = GgufFile::open(path);
  uint64_t tensor_bytes = 0;
  for (const auto& t : m.file->tensors()) tensor_bytes += t.nbytes;
  LoadMeter meter(options.progress, tensor_bytes);
  meter.add("mapping", 0);
  const std::string arch = m.file->get_string_opt("general.architecture").value_or("");
  if (arch != "deepseek2")
    fail(path, ": architecture '", arch, "' is not supported (supported: deepseek2)");
  m.weights = std::make_unique<Deepseek2Weights>(Deepseek2Weights::from_gguf(*m.file));
  m.tokenizer = std::make_unique<Tokenizer>(Tokenizer::from_gguf(*m.file));
  if (options.sequences < 1) fail("sequence slots: ", options.sequences, " (at least 1)");
  if (!options.gpu_experts.empty() && options.path != ComputePath::Gpu)
    fail("routed experts placed on a GPU need the GPU path (--gpu N)");
  std::shared_ptr<RoutedExperts> experts;  // null: reference experts
  std::string path_note = " [reference]";
  if (options.path != ComputePath::Reference) {
    meter.add("preparing experts", 0);  // the header and tokenizer are read: bytes start now
    MoeEngineOptions eo;
    if (options.threads > 0) eo.threads_per_node = options.threads;
    eo.reserved_cores = options.reserved_cores;
    eo.release_mapped_sources = knobs::flag("TANDEM_RELEASE_MAPPED");
    eo.replicate_experts = options.replicate_experts;
    // Pools planned on TANDEM_SYNTHETIC_TOPOLOGY's nodes when set (tests of NUMA plans).
    if (auto topo = knobs::text("TANDEM_SYNTHETIC_TOPOLOGY")) eo.synthetic_topology = *topo;
    eo.repack_for_prefill = options.repack_for_prefill;  // the experts are views of the GGUF mmap
    eo.on_load_bytes = meter.adder();
    auto cpu = std::make_shared<CpuRoutedExperts>(Deepseek2Reference::expert_layers(*m.weights), eo,
                                                  options.gpu_experts, options.expert_nodes);
    path_note = " [cpu experts: " + std::string(experts::cpu_isa_name(cpu->engine().isa())) + ", " +
                           std::to_string(cpu->engine().total_threads()) + " threads]";
    experts = std::move(cpu);
  }
  if (options.path == ComputePath::Gpu) {
    Deepseek2HybridOptions ho;
    ho.gpu_index = options.gpu_index;
    ho.max_context = options.max_context;
    ho.sequences = options.sequences;
    ho.kv_type = options.kv_type;
    ho.profile = options.profile;
    ho.gpu_experts = options.gpu_experts;
    ho.attention_device = options.attention_device;
    ho.ffn_device = options.ffn_device;
    ho.output_device = options.output_device;
    ho.cpu_threads = options.threads;
    ho.release_mapped_uploads = knobs::flag("TANDEM_RELEASE_MAPPED");  // the weights are views of the GGUF mmap
    ho.on_load_bytes = meter.adder();
    auto hybrid = std::make_unique<Deepseek2Hybrid>(*m.weights, experts, ho);
    path_note += " [gpu " + std::to_string(options.gpu_index) + ": " + hybrid->device_name() + ", " +
                 gpu::kv_cache_type_name(options.kv_type) + " KV cache";
    if (options.sequences > 1)  // what N slots of max_context rows cost on the GPUs
      path_note += ", " + std::to_string(options.sequences) + " sequences x " + std::to_string(options.max_context) +
                   " rows = " + std::to_string((hybrid->kv_cache_bytes() + (1u << 20) - 1) >> 20) + " MiB";
    path_note += "]";
    m.batched = hybrid.get();
    m.lm = std::move(hybrid);
  } else if (options.path == ComputePath::Cpu) {
    Deepseek2CpuOptions co;
    co.threads = options.threads;
    co.isa = static_cast<const CpuRoutedExperts&>(*experts).engine().isa();
    co.sequences = options.sequences;
    co.max_context = options.max_context;
    co.release_mapped_weights = knobs::flag("TANDEM_RELEASE_MAPPED");  // views of the GGUF mmap
    auto cpu = std::make_unique<Deepseek2Cpu>(*m.weights, experts, co);
    path_note += " [cpu pass: " + std::to_string(cpu->threads()) + " threads]";
    m.batched = cpu.get();
    m.lm = std::move(cpu);
  } else {
    auto ref = std::make_unique<Deepseek2Reference>(*m.weights, experts, options.sequences, options.max_context);
    m.batched = ref.get();
    m.lm = std::move(ref);
  }
  m.description = m.weights->hp.describe() + path_note;
  meter.finish();
  return m;
}

}  // namespace tandem
