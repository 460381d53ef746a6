#!/bin/sh
# Builds llama.cpp's llama-bench for the CPU in minutes instead of compiling all of llama.cpp:
# only llama-bench's own two files are compiled, from the source that node-llama-cpp VERSION
# bundles (llama/gitRelease.bundle, a git bundle), and linked against the prebuilt shared
# libraries of the same release (@node-llama-cpp/linux-x64: libllama, libllama-common, libggml).
# Only one CPU variant is kept beside the binary (default cooperlake: AVX-512 + VNNI + BF16, no
# AMX, whose path crashes on the device machines), so ggml's loader cannot pick another.
# Nothing of it is committed: everything goes to DIR (default .device/llama-bench-cpu).
#   bench/peer/build_llama_bench.sh [DIR]  ->  DIR/bin/llama-bench -m FILE -ngl 0 ...
set -eu
dir=${1:-.device/llama-bench-cpu}
version=${NODE_LLAMA_CPP_VERSION:-3.22.1}
variant=${LLAMA_CPU_VARIANT:-cooperlake}
mkdir -p "$dir" && dir=$(cd "$dir" && pwd)
cd "$dir"
if [ ! -d src ]; then
  npm pack --silent "node-llama-cpp@$version" >/dev/null
  tar xzf node-llama-cpp-"$version".tgz package/llama/gitRelease.bundle
  git clone -q package/llama/gitRelease.bundle src
fi
if [ ! -d libs ]; then
  npm pack --silent "@node-llama-cpp/linux-x64@$version" >/dev/null
  mkdir libs && tar xzf node-llama-cpp-linux-x64-"$version".tgz -C libs --strip-components=3 package/bins/linux-x64
fi
mkdir -p bin
for f in libggml-base.so libggml.v0.5.0.so libllama.v0.5.0.so libllama-common.so "libggml-cpu-$variant.so"; do
  cp "libs/$f" bin/
done
s=src
g++ -O2 -DNDEBUG -std=c++17 -I$s/include -I$s/ggml/include -I$s/common -I$s/vendor -I$s/tools/llama-bench \
  $s/tools/llama-bench/llama-bench.cpp $s/tools/llama-bench/main.cpp -o bin/llama-bench -Lbin \
  -l:libllama-common.so -l:libllama.v0.5.0.so -l:libggml.v0.5.0.so -l:libggml-base.so -Wl,-rpath,'$ORIGIN' -pthread
echo "$dir/bin/llama-bench"
