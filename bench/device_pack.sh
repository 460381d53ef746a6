#!/bin/sh
# Packs what bench/device_run.sh needs into DIR (default .device/; ignored by git, carried with
# the device call): the tandem binary and experts test/bench programs of BUILD, the shared
# libraries they load that a bare Ubuntu 24.04 lacks, and llama.cpp's prebuilt CPU libraries for
# the peer.
#   bench/device_pack.sh build-xperf [DIR]
set -eu
build=${1:?build dir}
dev=${2:-.device}
bench/pack_binaries.sh "$build" "$dev" tools/tandem tests/unit/experts/experts_kernels_test \
  tests/unit/experts/experts_engine_test tests/unit/experts/experts_repacked_test bench/experts/bench_moe_engine \
  bench/peer/ggml_moe_peer
# llama.cpp CPU libraries: the base and the variants an AVX-512 Xeon may pick.
src=$(bench/peer/fetch_llama_cpp.sh /tmp/tandem-llama-cpp)
mkdir -p $dev/llama-cpp
for f in libggml-base.so libggml-cpu-sapphirerapids.so libggml-cpu-icelake.so libggml-cpu-skylakex.so \
         libggml-cpu-zen4.so libggml-cpu-haswell.so; do
  cp "$src/$f" $dev/llama-cpp/
done
du -sh $dev
