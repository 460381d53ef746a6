#!/bin/sh
# Packs tandem + the AMX/engine tests + libs into .device-amx/ (ignored), like bench/device_pack.sh.
set -eu
build=$1
dev=.device-amx
rm -rf $dev
bench/pack_binaries.sh "$build" $dev tools/tandem tests/unit/experts/experts_amx_test \
  tests/unit/experts/experts_engine_test tests/unit/experts/experts_kernels_test
du -sh $dev
