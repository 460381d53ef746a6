#!/bin/bash
# Tiled prefill GEMM on a GPU device machine, in one call.
#   here:   bench/gpu/device_gemm.sh pack build-gemm   (fills .device-gemm/, ignored by git)
#   device: bench/gpu/device_gemm.sh run               (carry .device-gemm; results under $OUT)
# GEMM_DEVICE_DIR names another folder (one per helper sharing the tree), e.g. .device-coopmat.
# run: the tiled-GEMM unit tests (cooperative-matrix path included), the GPU unit tests, the
# generated-model GPU checks, then bench_gpu_kernels --prefill (column loop vs tiled, switch-over
# column count, tile shapes).
set -uo pipefail
dev=${GEMM_DEVICE_DIR:-.device-gemm}
case ${1:?pack or run} in
pack)
  build=${2:?build dir}
  rm -rf $dev
  bench/pack_binaries.sh "$build" $dev tools/tandem tests/unit/gpu/test_gpu tests/unit/gpu/test_gpu_matmul_tiled \
    tests/integration/generated_models_test bench/gpu/bench_gpu_kernels
  du -sh $dev
  ;;
run)
  out=${OUT:-device-out}
  mkdir -p "$out"
  export LD_LIBRARY_PATH=$PWD/$dev/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  bin=$PWD/$dev/bin
  log=$out/gemm.log
  say() { echo "== $*" | tee -a "$log"; }
  say "machine"
  [ -x "$bin/tandem" ] && "$bin/tandem" gpus 2>&1 | tee -a "$log"
  say "tiled GEMM tests"
  timeout 120 "$bin/test_gpu_matmul_tiled" 2>&1 | tee "$out/tiled_test.txt" | grep -E "FAILED|PASSED|SKIPPED|Failure|error|tests from" | tee -a "$log"
  [ -x "$bin/test_gpu" ] && say "GPU unit tests"
  [ -x "$bin/test_gpu" ] && timeout 120 "$bin/test_gpu" --gtest_brief=1 2>&1 | tee "$out/test_gpu.txt" | grep -E "FAILED|PASSED|tests from|Failure" | tee -a "$log"
  [ -x "$bin/generated_models_test" ] && say "generated models, GPU path" &&
  timeout 150 "$bin/generated_models_test" --gtest_brief=1 --gtest_filter="*Gpu*" 2>&1 | tee "$out/generated.txt" | grep -E "FAILED|PASSED|worst" | tee -a "$log"
  say "prefill GEMM timings"
  timeout ${BENCH_LIMIT:-150} "$bin/bench_gpu_kernels" 0 --prefill 2>&1 | grep -v '^  ' | tee -a "$log"
  say "done"
  ;;
esac
