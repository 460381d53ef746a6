#!/bin/sh
# Packs what bench/gpu/device_run.sh needs into .device-gpu/ (ignored by git via
# .git/info/exclude, carried with the device call): tandem, test_gpu, generated_models_test and
# bench_gpu_kernels of BUILD, plus the shared libraries they load that a bare machine lacks.
#   bench/gpu/device_pack.sh build-gpu2
set -eu
build=${1:?build dir}
dev=.device-gpu
rm -rf $dev
mkdir -p $dev/bin $dev/lib
for p in tools/tandem tests/unit/gpu/test_gpu tests/integration/generated_models_test bench/gpu/bench_gpu_kernels; do
  objcopy --strip-debug "$build/$p" "$dev/bin/$(basename $p)"
done
for b in $dev/bin/*; do ldd "$b"; done | awk '/=> \// {print $3}' | sort -u | while read -r lib; do
  case $(basename "$lib") in
    libc.so*|libm.so*|libstdc++.so*|libgcc_s.so*|ld-linux*|libpthread.so*|libdl.so*|librt.so*) ;;
    *) cp -L "$lib" $dev/lib/ ;;
  esac
done
# The Vulkan loader is dlopen()ed, so ldd does not list it.
cp -L "$(ldconfig -p | awk '/libvulkan.so.1 / {print $NF; exit}')" $dev/lib/
du -sh $dev
