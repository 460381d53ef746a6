#!/bin/bash
# One call on a GPU device machine: GPU unit tests and generated-model checks, kernel timings,
# then decode-step timings of a DeepSeek-V2-Lite-shaped model (whole model, routed experts on
# the CPU engine) and of V3-shaped layers at several context lengths. Run from the repo root
# with DIR (default .device-gpu/) packed by bench/gpu/device_pack.sh (carry=["DIR"]); results go
# to $OUT (default ./device-out). With DIR/bin/tandem-before present, its decode steps are timed
# too (baseline; TANDEM_BENCH_NO_PROFILE=1 asks it for wall times without timestamps when it
# knows the variable). SKIP_KERNELS=1 leaves out bench_gpu_kernels; TEST_FILTER narrows test_gpu.
#   bench/gpu/device_run.sh [DIR]
set -uo pipefail
dir=${1:-.device-gpu}
out=${OUT:-device-out}
mkdir -p "$out"
export LD_LIBRARY_PATH=$PWD/$dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
bin=$PWD/$dir/bin
log=$out/gpu_device_run.log
contexts=${CONTEXTS:-"512 4096 16384"}
say() { echo "== $*" | tee -a "$log"; }
tmp=${MODEL_DIR:-$(mktemp -d)}

say "machine"
{ nvidia-smi --query-gpu=name,memory.total,clocks.max.memory --format=csv 2>&1; nproc; } | tee -a "$log"
"$bin/tandem" gpus 2>&1 | tee -a "$log"

say "checks: GPU unit tests"
"$bin/test_gpu" --gtest_brief=1 --gtest_filter="${TEST_FILTER:-*}" 2>&1 | tee "$out/test_gpu.txt" | grep -E "FAILED|PASSED|tests from" | tee -a "$log"
say "checks: generated models, GPU path vs reference"
"$bin/generated_models_test" --gtest_brief=1 --gtest_filter="*Gpu*" 2>&1 | tee "$out/generated.txt" | grep -E "FAILED|PASSED|worst" | tee -a "$log"

if [ -z "${SKIP_KERNELS:-}" ]; then
  say "kernels (Vulkan timestamps)"
  timeout 120 "$bin/bench_gpu_kernels" 0 2>&1 | grep -v '^  ' | tee -a "$log"
fi

say "generate models"
( time timeout ${GEN_LIMIT:-150} "$bin/tandem" generate --preset v2-lite --type q4_K --out "$tmp/v2lite.gguf" ) >"$out/gen_v2lite.txt" 2>&1 ||
  say "v2-lite generate failed: $(tail -2 "$out/gen_v2lite.txt")"
( time timeout ${GEN_LIMIT:-150} "$bin/tandem" generate --preset v3 --layers 4 --type q4_K --out "$tmp/v3x4.gguf" ) >"$out/gen_v3.txt" 2>&1 ||
  say "v3 generate failed: $(tail -2 "$out/gen_v3.txt")"
tail -3 "$out/gen_v2lite.txt" "$out/gen_v3.txt" | tee -a "$log"
ls -la "$tmp" | tee -a "$log"

if [ -x "$bin/tandem-before" ]; then
  for m in v2lite v3x4; do
    say "decode step before ($m): timestamps on, then off"
    timeout ${BENCH_LIMIT:-75} "$bin/tandem-before" bench decode --model "$tmp/$m.gguf" --context $contexts --steps 10 --profile 2>&1 |
      tee "$out/decode_${m}_before.txt" | grep -v '^  ' | tee -a "$log"
    TANDEM_BENCH_NO_PROFILE=1 timeout ${BENCH_LIMIT:-75} "$bin/tandem-before" bench decode --model "$tmp/$m.gguf" --context $contexts --steps 10 2>&1 |
      grep "decode step" | sed 's/^/no timestamps: /' | tee -a "$log"
  done
fi
say "decode step: V2-Lite shape (27 layers, experts on the CPU)"
timeout ${BENCH_LIMIT:-75} "$bin/tandem" bench decode --model "$tmp/v2lite.gguf" --context $contexts --steps 10 --profile 2>&1 |
  tee "$out/decode_v2lite.txt" | grep -v '^  ' | tee -a "$log"
say "decode step: V3 shape, 4 layers (3 dense + 1 MoE)"
timeout ${BENCH_LIMIT:-75} "$bin/tandem" bench decode --model "$tmp/v3x4.gguf" --context $contexts --steps 10 --profile 2>&1 |
  tee "$out/decode_v3.txt" | grep -v '^  ' | tee -a "$log"
say "done"
