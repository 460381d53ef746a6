#!/bin/bash
# MLA attention on a GPU device machine, one call: the MLA unit tests, the generated-model GPU
# checks, then bench_gpu_kernels --mla (per-head vs grouped kernel at contexts 512/4096/16384,
# prefill chunks). Pack first (here):   bench/gpu/device_mla.sh pack BUILD
# then run on the device with carry=[".device-mla"]:   bench/gpu/device_mla.sh run
set -uo pipefail
dev=.device-mla
if [ "${1:-}" = pack ]; then
  build=${2:?build dir}
  rm -rf $dev
  bench/pack_binaries.sh "$build" $dev tests/unit/gpu/test_gpu tests/integration/generated_models_test \
    bench/gpu/bench_gpu_kernels
  du -sh $dev
  exit 0
fi
out=${OUT:-device-out}
mkdir -p "$out"
export LD_LIBRARY_PATH=$PWD/$dev/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
log=$out/mla.log
say() { echo "== $*" | tee -a "$log"; }
say "MLA unit tests"
timeout 120 $dev/bin/test_gpu --gtest_brief=1 --gtest_filter='*Mla*:*LatentKv*' 2>&1 | tail -15 | tee -a "$log"
say "generated models, GPU path"
timeout 90 $dev/bin/generated_models_test --gtest_brief=1 --gtest_filter='*Gpu*' 2>&1 | grep -E "FAILED|PASSED|worst" | tee -a "$log"
say "MLA kernels"
timeout 150 $dev/bin/bench_gpu_kernels 0 --mla 2>&1 | tee -a "$log"
say "done"
