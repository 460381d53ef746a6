#!/bin/sh
# Packs programs of a build for a bare device machine (no compilers, no packages): each program
# stripped of debug info into DIR/bin, the shared libraries ldd lists for them (all but glibc and
# libstdc++, which any Ubuntu has) into DIR/lib, and the Vulkan loader, which tandem dlopen()s so
# ldd does not list it. The device scripts under bench/ call this; DIR is what a call carries.
#   bench/pack_binaries.sh BUILD DIR tools/tandem tests/unit/gpu/test_gpu ...
set -eu
build=${1:?build dir}
dev=${2:?pack dir}
shift 2
mkdir -p "$dev/bin" "$dev/lib"
for p in "$@"; do
  if [ -f "$build/$p" ]; then objcopy --strip-debug "$build/$p" "$dev/bin/$(basename "$p")"
  else echo "pack_binaries: $build/$p not built, skipped" >&2; fi
done
for b in "$dev"/bin/*; do ldd "$b"; done | awk '/=> \// {print $3}' | sort -u | while read -r lib; do
  case $(basename "$lib") in
    libc.so*|libm.so*|libstdc++.so*|libgcc_s.so*|ld-linux*|libpthread.so*|libdl.so*|librt.so*) ;;
    *) cp -L "$lib" "$dev/lib/" ;;
  esac
done
vulkan=$(ldconfig -p | awk '/libvulkan.so.1 / {print $NF; exit}')
if [ -n "$vulkan" ]; then cp -L "$vulkan" "$dev/lib/"; fi
