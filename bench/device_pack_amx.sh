#!/bin/sh
# Packs tandem + the AMX/engine tests + libs into .device-amx/ (ignored), like bench/device_pack.sh.
set -eu
build=$1
dev=.device-amx
rm -rf $dev; mkdir -p $dev/bin $dev/lib
for p in tools/tandem tests/unit/experts/experts_amx_test tests/unit/experts/experts_engine_test tests/unit/experts/experts_kernels_test; do
  objcopy --strip-debug "$build/$p" "$dev/bin/$(basename $p)"
done
for b in $dev/bin/*; do ldd "$b"; done | awk '/=> \// {print $3}' | sort -u | while read -r lib; do
  case $(basename "$lib") in
    libc.so*|libm.so*|libstdc++.so*|libgcc_s.so*|ld-linux*|libpthread.so*|libdl.so*|librt.so*) ;;
    *) cp -L "$lib" $dev/lib/ ;;
  esac
done
du -sh $dev
