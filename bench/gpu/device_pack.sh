#!/bin/sh
# Packs what bench/gpu/device_run.sh needs into DIR (default .device-gpu/; ignored by git via
# .git/info/exclude, carried with the device call): tandem, test_gpu, generated_models_test and
# bench_gpu_kernels of BUILD, plus the shared libraries they load that a bare machine lacks.
# A tandem built from another tree can ride along as DIR/bin/tandem-before (BEFORE=path/to/tandem):
# device_run.sh then times decode steps with both.
#   bench/gpu/device_pack.sh build-gpu2
#   BEFORE=/tmp/base/build/tools/tandem bench/gpu/device_pack.sh build-hybrid .device-hybrid
set -eu
build=${1:?build dir}
dev=${2:-.device-gpu}
rm -rf "$dev"
bench/pack_binaries.sh "$build" "$dev" tools/tandem tests/unit/gpu/test_gpu tests/integration/generated_models_test \
  bench/gpu/bench_gpu_kernels
if [ -n "${BEFORE:-}" ]; then objcopy --strip-debug "$BEFORE" "$dev/bin/tandem-before"; fi
du -sh "$dev"
